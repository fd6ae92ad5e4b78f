//! What each statement of a migration becomes on a server: as written for one server, or, in
//! cluster mode, with replicated engines and the `Distributed` table over the shards' raw events.
//!
//! The files in `schema/` are written for one server (`ENGINE = MergeTree`), so that they stay
//! readable and run as they are on a single ClickHouse. In cluster mode:
//! - `CREATE TABLE` gets `ReplicatedMergeTree` with a ZooKeeper path per shard (`{shard}` is
//!   the server's macro), or one path for all servers for the tables every server must hold
//!   whole ([`EVERYWHERE`]: the salts, so that all collectors hash alike, and the dashboard's
//!   sessions, so that every collector knows who is logged in);
//! - creating `events` also creates `events_all`, `Distributed` over the cluster's `events`,
//!   sharded by the visitor hash, so that a visitor's events, and so each visit, are on one
//!   shard;
//! - an `ALTER TABLE events` is applied to `events_all` as well (a `Distributed` table has its
//!   own columns on every server);
//! - a materialized view and an `INSERT` run as written on every server: a view reads the
//!   server's own table, and what it writes is replicated within the shard.

use crate::cluster::EVENTS_ALL;

/// Tables held whole by every server of a cluster (one replication group for all).
pub const EVERYWHERE: &[&str] = &["salts", "dashboard_sessions"];

/// The engines a `CREATE TABLE` of `schema/` may name, each made replicated in cluster mode.
const ENGINES: [&str; 2] = ["ENGINE = MergeTree\n", "ENGINE = SummingMergeTree\n"];

/// The cluster a statement is prepared for.
pub struct Target<'a> {
    pub database: &'a str,
    pub cluster: &'a str,
    pub zookeeper_path: &'a str,
}

/// What a statement does, for how its errors are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `CREATE TABLE IF NOT EXISTS` of a table (`replicated`: with a replicated engine).
    Create { replicated: bool },
    /// `ALTER TABLE … ADD COLUMN`.
    AddColumn,
    /// `CREATE MATERIALIZED VIEW IF NOT EXISTS … TO …` (the view on one server's table).
    View,
    /// `INSERT INTO` a table.
    Insert,
    /// Anything else.
    Other,
}

/// One statement to run on a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub sql: String,
    /// The table it creates or alters (unqualified).
    pub table: Option<String>,
    pub kind: Kind,
}

/// The table (or view) a `CREATE TABLE IF NOT EXISTS db.t`, `CREATE MATERIALIZED VIEW IF NOT
/// EXISTS db.t`, `INSERT INTO db.t` or `ALTER TABLE db.t` statement names.
fn table_of(sql: &str, database: &str) -> Option<(Kind, String)> {
    let (kind, rest) = if let Some(r) = sql.strip_prefix("CREATE TABLE IF NOT EXISTS ") {
        (Kind::Create { replicated: false }, r)
    } else if let Some(r) = sql.strip_prefix("CREATE MATERIALIZED VIEW IF NOT EXISTS ") {
        (Kind::View, r)
    } else if let Some(r) = sql.strip_prefix("INSERT INTO ") {
        (Kind::Insert, r)
    } else if let Some(r) = sql.strip_prefix("ALTER TABLE ") {
        let kind = if sql.contains(" ADD COLUMN ") {
            Kind::AddColumn
        } else {
            Kind::Other
        };
        (kind, r)
    } else {
        return None;
    };
    let rest = rest.strip_prefix(database)?.strip_prefix('.')?;
    let end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(rest.len());
    Some((kind, rest[..end].to_string()))
}

/// The steps of one statement (its `{db}` already replaced) on one server; `cluster`: `None`
/// for a single server.
pub fn steps(sql: &str, database: &str, cluster: Option<&Target>) -> Result<Vec<Step>, String> {
    let Some((kind, table)) = table_of(sql, database) else {
        return Ok(vec![Step {
            sql: sql.to_string(),
            table: None,
            kind: Kind::Other,
        }]);
    };
    let Some(t) = cluster else {
        return Ok(vec![Step {
            sql: sql.to_string(),
            table: Some(table),
            kind,
        }]);
    };
    match kind {
        Kind::Create { .. } => {
            let Some(plain) = ENGINES.iter().find(|e| sql.matches(*e).count() == 1) else {
                let known: Vec<&str> = ENGINES.iter().map(|e| e.trim_end()).collect();
                return Err(format!(
                    "CREATE TABLE {table}: expected one of `{}` to make replicated",
                    known.join("`, `")
                ));
            };
            let group = if EVERYWHERE.contains(&table.as_str()) {
                "all"
            } else {
                "{shard}"
            };
            let engine = format!(
                "{}('{zk}/{group}/{db}.{table}', '{{replica}}')\n",
                plain
                    .trim_end()
                    .replacen("ENGINE = ", "ENGINE = Replicated", 1),
                zk = t.zookeeper_path,
                db = t.database,
            );
            let mut out = vec![Step {
                sql: sql.replacen(plain, &engine, 1),
                table: Some(table.clone()),
                kind: Kind::Create { replicated: true },
            }];
            if table == "events" {
                out.push(Step {
                    sql: format!(
                        "CREATE TABLE IF NOT EXISTS {db}.{EVENTS_ALL} AS {db}.events \
                         ENGINE = Distributed('{cluster}', '{db}', 'events', visitor)",
                        db = t.database,
                        cluster = t.cluster,
                    ),
                    table: Some(EVENTS_ALL.to_string()),
                    kind: Kind::Create { replicated: false },
                });
            }
            Ok(out)
        }
        Kind::AddColumn => {
            let mut out = vec![Step {
                sql: sql.to_string(),
                table: Some(table.clone()),
                kind,
            }];
            if table == "events" {
                let prefix = format!("ALTER TABLE {}.events ", t.database);
                out.push(Step {
                    sql: sql.replacen(
                        &prefix,
                        &format!("ALTER TABLE {}.{EVENTS_ALL} ", t.database),
                        1,
                    ),
                    table: Some(EVENTS_ALL.to_string()),
                    kind,
                });
            }
            Ok(out)
        }
        Kind::View | Kind::Insert => Ok(vec![Step {
            sql: sql.to_string(),
            table: Some(table),
            kind,
        }]),
        Kind::Other => Err(format!(
            "ALTER TABLE {table}: only ADD COLUMN is known to be safe on a cluster"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{statements, MIGRATIONS};

    const TARGET: Target = Target {
        database: "db",
        cluster: "c1",
        zookeeper_path: "/clickhouse/tables",
    };

    fn all_steps(cluster: Option<&Target>) -> Vec<Step> {
        MIGRATIONS
            .iter()
            .flat_map(|m| statements(&m.sql.replace("{db}", "db")))
            .flat_map(|s| steps(&s, "db", cluster).unwrap())
            .collect()
    }

    #[test]
    fn one_server_runs_the_files_as_written() {
        for step in all_steps(None) {
            assert!(!step.sql.contains("Replicated"), "{}", step.sql);
            assert!(step.table.is_some(), "every statement names its table");
        }
    }

    #[test]
    fn every_migration_has_a_cluster_form() {
        let steps = all_steps(Some(&TARGET));
        for step in &steps {
            if let Kind::Create { replicated: true } = step.kind {
                assert!(
                    step.sql
                        .contains("ENGINE = ReplicatedMergeTree('/clickhouse/tables/")
                        || step
                            .sql
                            .contains("ENGINE = ReplicatedSummingMergeTree('/clickhouse/tables/"),
                    "{}",
                    step.sql
                );
                assert!(!step.sql.contains("ENGINE = MergeTree"), "{}", step.sql);
                assert!(
                    !step.sql.contains("ENGINE = SummingMergeTree"),
                    "{}",
                    step.sql
                );
            }
        }
        let find = |table: &str| {
            steps
                .iter()
                .find(|s| {
                    s.table.as_deref() == Some(table) && matches!(s.kind, Kind::Create { .. })
                })
                .unwrap_or_else(|| panic!("{table} is created"))
                .sql
                .clone()
        };
        assert!(find("events")
            .contains("ReplicatedMergeTree('/clickhouse/tables/{shard}/db.events', '{replica}')"));
        assert!(find("visits").contains("'/clickhouse/tables/{shard}/db.visits'"));
        assert!(find("events_minutes").contains(
            "ENGINE = ReplicatedSummingMergeTree('/clickhouse/tables/{shard}/db.events_minutes', \
             '{replica}')"
        ));
        // The view counts the events of its own server's table, on every server.
        let view = steps.iter().find(|s| s.kind == Kind::View).expect("a view");
        assert_eq!(view.table.as_deref(), Some("events_minutes_mv"));
        assert!(view.sql.contains("TO db.events_minutes"), "{}", view.sql);
        assert!(view.sql.contains("FROM db.events "), "{}", view.sql);
        // The raw events again, ordered by the hour (migration 0011): per shard, fed by a view.
        assert!(find("events_by_hour").contains(
            "ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/db.events_by_hour', '{replica}')"
        ));
        assert!(find("visit_carry").contains(
            "ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/db.visit_carry', '{replica}')"
        ));
        assert!(steps.iter().any(|s| s.kind == Kind::View
            && s.table.as_deref() == Some("events_by_hour_mv")
            && s.sql.contains("TO db.events_by_hour")
            && s.sql.contains("FROM db.events")));
        // Every server holds every salt and every dashboard session: one replication group
        // each, no shard in the path.
        assert!(find("salts").contains("'/clickhouse/tables/all/db.salts', '{replica}'"));
        assert!(find("dashboard_sessions")
            .contains("'/clickhouse/tables/all/db.dashboard_sessions', '{replica}'"));
        assert_eq!(
            find("events_all"),
            "CREATE TABLE IF NOT EXISTS db.events_all AS db.events \
             ENGINE = Distributed('c1', 'db', 'events', visitor)"
        );
        // Each column added to events is added to events_all right after; columns of other
        // tables are added to them alone.
        let adds: Vec<&Step> = steps
            .iter()
            .filter(|s| {
                s.kind == Kind::AddColumn
                    && matches!(s.table.as_deref(), Some("events" | "events_all"))
            })
            .collect();
        let others: Vec<&Step> = steps
            .iter()
            .filter(|s| s.kind == Kind::AddColumn && !adds.contains(s))
            .collect();
        assert_eq!(
            others.iter().map(|s| s.sql.as_str()).collect::<Vec<_>>(),
            [
                "ALTER TABLE db.rollup_days ADD COLUMN pairs UInt8",
                "ALTER TABLE db.rollup_days ADD COLUMN page_seconds UInt8",
                "ALTER TABLE db.visit_slices ADD COLUMN pages UInt64",
                "ALTER TABLE db.visit_slices ADD COLUMN carry UInt8",
                "ALTER TABLE db.rollup_daily ADD COLUMN batch UInt64"
            ]
        );
        for pair in adds.chunks(2) {
            assert_eq!(pair[0].table.as_deref(), Some("events"));
            assert_eq!(pair[1].table.as_deref(), Some("events_all"));
            assert_eq!(
                pair[1].sql,
                pair[0].sql.replace("db.events ", "db.events_all ")
            );
        }
        assert!(!adds.is_empty());
    }

    #[test]
    fn statements_a_cluster_cannot_take_safely_are_refused() {
        assert!(steps("ALTER TABLE db.events DROP COLUMN x", "db", Some(&TARGET)).is_err());
        assert!(steps(
            "CREATE TABLE IF NOT EXISTS db.t (x UInt8) ENGINE = Memory",
            "db",
            Some(&TARGET)
        )
        .is_err());
    }
}
