//! ClickHouse's schema: the numbered migrations in `schema/`, applied on every server, and the
//! reads of raw events the collector needs at start (carry set, known paths).
//!
//! Migrations are embedded in the binary (so `tally migrate` needs no source tree), applied in
//! order, recorded in `schema_migrations` on each server, and idempotent. The SQL is written to
//! run on ClickHouse 18.16 (the server Debian ships) and on current ClickHouse; the test suite
//! executes every file on both.
//!
//! Any number of collectors may migrate at the same moment: a column or table that a concurrent
//! migration (or, on a cluster, another replica) created first counts as done. On a cluster,
//! tally applies each migration on every server itself rather than with `ON CLUSTER`: that needs
//! no distributed DDL queue (whose tasks wait for every host, so one replica down blocks the
//! whole fleet's start and a queued task runs again later), reports each server's failure
//! precisely, and behaves the same on 18.16 and current ClickHouse. `ddl` says what a
//! statement becomes on a cluster; `layout` checks the servers are the cluster the config names.

pub mod ddl;
pub mod layout;

use clickhouse::Client;
use serde::Deserialize;

use crate::clickhouse_code as code;
use crate::cluster::{Cluster, Server, Shard};
use crate::error::Error;

/// A migration: version, file name, SQL with `{db}` standing for the database name.
pub struct Migration {
    pub version: u32,
    pub name: &'static str,
    pub sql: &'static str,
}

/// Every migration, in order. Adding a file to `schema/` means adding it here.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "0001_events.sql",
        sql: include_str!("../../schema/0001_events.sql"),
    },
    Migration {
        version: 2,
        name: "0002_salts.sql",
        sql: include_str!("../../schema/0002_salts.sql"),
    },
    Migration {
        version: 3,
        name: "0003_events_source.sql",
        sql: include_str!("../../schema/0003_events_source.sql"),
    },
    Migration {
        version: 4,
        name: "0004_rollups.sql",
        sql: include_str!("../../schema/0004_rollups.sql"),
    },
    Migration {
        version: 5,
        name: "0005_events_micros.sql",
        sql: include_str!("../../schema/0005_events_micros.sql"),
    },
    Migration {
        version: 6,
        name: "0006_visits.sql",
        sql: include_str!("../../schema/0006_visits.sql"),
    },
    Migration {
        version: 7,
        name: "0007_rollup_pairs.sql",
        sql: include_str!("../../schema/0007_rollup_pairs.sql"),
    },
    Migration {
        version: 8,
        name: "0008_rollup_page_seconds.sql",
        sql: include_str!("../../schema/0008_rollup_page_seconds.sql"),
    },
    Migration {
        version: 9,
        name: "0009_visit_pages.sql",
        sql: include_str!("../../schema/0009_visit_pages.sql"),
    },
    Migration {
        version: 10,
        name: "0010_events_minutes.sql",
        sql: include_str!("../../schema/0010_events_minutes.sql"),
    },
    Migration {
        version: 11,
        name: "0011_visit_carry.sql",
        sql: include_str!("../../schema/0011_visit_carry.sql"),
    },
    Migration {
        version: 12,
        name: "0012_dashboard_sessions.sql",
        sql: include_str!("../../schema/0012_dashboard_sessions.sql"),
    },
    Migration {
        version: 13,
        name: "0013_rollup_daily_batch.sql",
        sql: include_str!("../../schema/0013_rollup_daily_batch.sql"),
    },
];

pub fn latest_version() -> u32 {
    MIGRATIONS.last().map(|m| m.version).unwrap_or(0)
}

/// Splits a migration file into statements: `;` at a line end closes one; `--` lines are comments.
pub fn statements(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in sql.lines() {
        if line.trim_start().starts_with("--") {
            continue;
        }
        current.push_str(line);
        current.push('\n');
        if line.trim_end().ends_with(';') {
            let stmt = current.trim().trim_end_matches(';').trim().to_string();
            if !stmt.is_empty() {
                out.push(stmt);
            }
            current.clear();
        }
    }
    let rest = current.trim();
    if !rest.is_empty() {
        out.push(rest.to_string());
    }
    out
}

#[derive(clickhouse::Row, Deserialize)]
struct VersionRow {
    version: u32,
}

#[derive(clickhouse::Row, serde::Serialize)]
struct MigrationRecord<'a> {
    version: u32,
    name: &'a str,
    applied_at: u32,
}

/// What `migrate` did on each server.
#[derive(Debug, Default)]
pub struct Migrated {
    /// Per server (its URL), the migrations applied now.
    pub applied: Vec<(String, Vec<&'static str>)>,
    /// Servers that did not answer (cluster mode: skipped while each shard has another).
    pub unreachable: Vec<String>,
}

/// Applies every migration not yet recorded, on every server. On a cluster, a server that does
/// not answer is skipped (and migrated when it is back, see [`migrate_server`]) as long as
/// every shard has a replica that was migrated; otherwise this fails.
pub async fn migrate(cluster: &Cluster) -> Result<Migrated, Error> {
    if cluster.is_cluster() {
        layout::check(cluster).await?;
    }
    let mut out = Migrated::default();
    for shard in &cluster.shards {
        let mut migrated = 0;
        for server in &shard.replicas {
            match migrate_server(cluster, shard, server).await {
                Ok(names) => {
                    migrated += 1;
                    out.applied.push((server.url.clone(), names));
                }
                Err(e) if cluster.is_cluster() && is_unreachable(&e) => {
                    tracing::warn!(server = %server.url, error = %e, "server not migrated: it does not answer");
                    out.unreachable.push(server.url.clone());
                }
                Err(e) => return Err(e),
            }
        }
        if migrated == 0 {
            return Err(Error::Migration {
                name: "(all)".into(),
                message: format!(
                    "no server of shard {} answers: {}",
                    shard.index + 1,
                    shard
                        .replicas
                        .iter()
                        .map(|s| s.url.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                unreachable: true,
            });
        }
    }
    Ok(out)
}

fn is_unreachable(e: &Error) -> bool {
    match e {
        Error::ClickHouse(e) => code::of(e).is_none(),
        Error::Migration { unreachable, .. } => *unreachable,
        _ => false,
    }
}

/// Applies the migrations `server` lacks. `shard` is its shard (a replica created after its
/// table changed takes the table's current columns from another replica).
pub async fn migrate_server(
    cluster: &Cluster,
    shard: &Shard,
    server: &Server,
) -> Result<Vec<&'static str>, Error> {
    let db = &cluster.database;
    tolerate(
        server
            .admin()
            .query(&format!("CREATE DATABASE IF NOT EXISTS {db}"))
            .execute()
            .await,
        &[code::DATABASE_ALREADY_EXISTS],
    )?;
    // Each server records what it has: on a cluster, migrations are applied server by server.
    tolerate(
        server
            .admin()
            .query(&format!(
                "CREATE TABLE IF NOT EXISTS {db}.schema_migrations \
                 (version UInt32, name String, applied_at DateTime('UTC')) \
                 ENGINE = MergeTree ORDER BY version"
            ))
            .execute()
            .await,
        &[code::TABLE_ALREADY_EXISTS],
    )?;
    let client = server.client();
    let applied = applied_versions(client).await?;
    let target = cluster.name.as_deref().map(|name| ddl::Target {
        database: db,
        cluster: name,
        zookeeper_path: &cluster.zookeeper_path,
    });
    let mut done = Vec::new();
    for m in MIGRATIONS.iter().filter(|m| !applied.contains(&m.version)) {
        let failed = |message: String, unreachable: bool| Error::Migration {
            name: m.name.to_string(),
            message,
            unreachable,
        };
        for stmt in statements(&m.sql.replace("{db}", db)) {
            for step in ddl::steps(&stmt, db, target.as_ref()).map_err(|e| failed(e, false))? {
                run_step(shard, server, &step, db)
                    .await
                    .map_err(|e| failed(e.to_string(), code::of(&e).is_none()))?;
            }
        }
        let mut insert = client
            .insert::<MigrationRecord>("schema_migrations")
            .await?;
        insert
            .write(&MigrationRecord {
                version: m.version,
                name: m.name,
                applied_at: u32::try_from(jiff::Timestamp::now().as_second()).unwrap_or(0),
            })
            .await?;
        insert.end().await?;
        tracing::info!(migration = m.name, server = %server.url, "applied migration");
        done.push(m.name);
    }
    Ok(done)
}

/// `result`, with the listed error codes counting as success.
fn tolerate(
    result: Result<(), clickhouse::error::Error>,
    codes: &[u32],
) -> Result<(), clickhouse::error::Error> {
    match result {
        Err(e) if code::of(&e).is_some_and(|c| codes.contains(&c)) => Ok(()),
        other => other,
    }
}

/// Runs one step; what a concurrent migration or another replica did first counts as done.
async fn run_step(
    shard: &Shard,
    server: &Server,
    step: &ddl::Step,
    db: &str,
) -> Result<(), clickhouse::error::Error> {
    let result = server.client().query(&step.sql).execute().await;
    match step.kind {
        // The column is there: added by a concurrent migration, or by another replica's ALTER
        // (a replicated ALTER changes every replica); 18.16 says so with ILLEGAL_COLUMN,
        // current servers with DUPLICATE_COLUMN. UNFINISHED: done here; replicas that are away
        // now do it when they are back.
        ddl::Kind::AddColumn => tolerate(
            result,
            &[
                code::ILLEGAL_COLUMN,
                code::DUPLICATE_COLUMN,
                code::UNFINISHED,
            ],
        ),
        ddl::Kind::Create { replicated } => {
            match result {
                Err(e) if replicated && code::of(&e) == Some(code::INCOMPATIBLE_COLUMNS) => {
                    // The table changed (a later migration, run by another collector) before
                    // this replica was created: it must be created as the table is now.
                    let table = step.table.as_deref().unwrap_or_default();
                    create_like_replica(shard, server, db, table).await
                }
                other => tolerate(
                    other,
                    &[code::TABLE_ALREADY_EXISTS, code::REPLICA_IS_ALREADY_EXIST],
                ),
            }
        }
        // `IF NOT EXISTS` makes a concurrent migration's view harmless; an insert is data.
        ddl::Kind::View | ddl::Kind::Insert | ddl::Kind::Other => result,
    }
}

/// Creates `table` on `server` with the statement another replica of the shard has it by (the
/// `{shard}` and `{replica}` macros stay unexpanded in it, so it fits this server too).
async fn create_like_replica(
    shard: &Shard,
    server: &Server,
    db: &str,
    table: &str,
) -> Result<(), clickhouse::error::Error> {
    let mut last = None;
    for peer in shard.replicas.iter().filter(|p| p.url != server.url) {
        let shown = peer
            .client()
            .query(&format!("SHOW CREATE TABLE {db}.{table}"))
            .fetch_one::<String>()
            .await;
        match shown {
            Ok(create) => {
                let sql = create.replacen("CREATE TABLE ", "CREATE TABLE IF NOT EXISTS ", 1);
                tracing::info!(server = %server.url, table, from = %peer.url, "creating replica as the table is now");
                return tolerate(
                    server.client().query(&sql).execute().await,
                    &[code::TABLE_ALREADY_EXISTS, code::REPLICA_IS_ALREADY_EXIST],
                );
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        clickhouse::error::Error::Custom(format!(
            "{db}.{table}: its columns differ from the shard's and no other replica has it"
        ))
    }))
}

async fn applied_versions(client: &Client) -> Result<Vec<u32>, Error> {
    let rows: Vec<VersionRow> = client
        .query("SELECT DISTINCT version FROM schema_migrations")
        .fetch_all()
        .await?;
    Ok(rows.into_iter().map(|r| r.version).collect())
}

/// Whether `server` has every migration this binary knows.
pub async fn is_migrated(server: &Server) -> bool {
    match applied_versions(server.client()).await {
        Ok(v) => MIGRATIONS.iter().all(|m| v.contains(&m.version)),
        Err(_) => false,
    }
}

#[derive(clickhouse::Row, Deserialize)]
struct SeenRow {
    visitor: u64,
    last: u32,
}

/// Visitor ids with their last event time since `since` (unix seconds): the carry set that
/// lets a visit run across the salt rotation (see `visitor`).
/// Every shard's events are read (on a cluster, through `events_all`).
pub async fn recently_seen(cluster: &Cluster, since: i64) -> Result<Vec<(u64, i64)>, Error> {
    let since = u32::try_from(since.max(0)).unwrap_or(u32::MAX);
    let sql = format!(
        "SELECT visitor, toUInt32(max(ts)) AS last FROM {} \
         WHERE ts >= toDateTime(?, 'UTC') GROUP BY visitor",
        cluster.events_everywhere()
    );
    let rows: Vec<SeenRow> = cluster
        .run_anywhere(|c| {
            let sql = &sql;
            async move { c.query(sql).bind(since).fetch_all().await }
        })
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.visitor, i64::from(r.last)))
        .collect())
}

#[derive(clickhouse::Row, Deserialize)]
struct SitePath {
    site: String,
    path: String,
}

/// The most visited paths per site over the last `days` days (at most `per_site` each), so
/// that the new-path budget does not count a site's existing pages as new after a restart.
pub async fn recent_paths(
    cluster: &Cluster,
    days: u32,
    per_site: u32,
) -> Result<Vec<(String, String)>, Error> {
    let sql = format!(
        "SELECT site, path FROM {} WHERE ts >= now() - ? * 86400 \
         GROUP BY site, path ORDER BY site, count() DESC LIMIT ? BY site",
        cluster.events_everywhere()
    );
    let rows: Vec<SitePath> = cluster
        .run_anywhere(|c| {
            let sql = &sql;
            async move { c.query(sql).bind(days).bind(per_site).fetch_all().await }
        })
        .await?;
    Ok(rows.into_iter().map(|r| (r.site, r.path)).collect())
}

/// Longest [`sync_replica`] waits for one table.
pub const SYNC_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Waits until this replica has what the other replicas of its shard had written when it was
/// called (`SYSTEM SYNC REPLICA`), table by table, at most [`SYNC_TIMEOUT`] each. Cluster mode
/// only. Returns whether every table caught up.
pub async fn sync_replica(client: &Client, tables: &[&str]) -> bool {
    let mut all = true;
    for table in tables {
        let sync = client
            .query(&format!("SYSTEM SYNC REPLICA {table}"))
            .with_setting("receive_timeout", SYNC_TIMEOUT.as_secs().to_string())
            .execute();
        let caught_up = matches!(tokio::time::timeout(SYNC_TIMEOUT, sync).await, Ok(Ok(())));
        if !caught_up {
            tracing::warn!(table, "replica did not catch up with its shard in time");
            all = false;
        }
    }
    all
}

/// The version of one computation of derived rows (visits, rollups): its start second in the
/// high half and its millisecond next, so a recomputation wins over what it replaces even
/// within the same second, then 22 random bits, so concurrent computations differ. Readers
/// take the highest version marked done. (Until 2026-12 the low half was random alone: two
/// computations of a day in one second then won at random, and a redo right after a
/// computation could lose to it; the high half is unchanged, so older versions still order.)
pub fn new_version() -> Result<u64, Error> {
    use rand::TryRng;
    let now = jiff::Timestamp::now();
    let seconds = u64::try_from(now.as_second()).unwrap_or(0);
    let millisecond = u64::try_from(now.subsec_millisecond()).unwrap_or(0);
    let random = rand::rngs::SysRng
        .try_next_u32()
        .map_err(|e| Error::Config(format!("operating system RNG failed: {e}")))?;
    Ok((seconds << 32) | (millisecond << 22) | u64::from(random >> 10))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_later_computation_has_a_higher_version_within_the_same_second() {
        for _ in 0..20 {
            let first = new_version().unwrap();
            std::thread::sleep(std::time::Duration::from_millis(2));
            let later = new_version().unwrap();
            assert!(later > first, "{later:#x} after {first:#x}");
            // The start second stays in the high half.
            let second = jiff::Timestamp::now().as_second() as u64;
            assert!((second - 2..=second).contains(&(later >> 32)));
        }
    }

    #[test]
    fn splits_statements_and_skips_comments() {
        let s = statements("-- a comment; not a statement\nCREATE TABLE a (x UInt8)\nENGINE = Memory;\n\nSELECT 1;\n");
        assert_eq!(
            s,
            vec!["CREATE TABLE a (x UInt8)\nENGINE = Memory", "SELECT 1"]
        );
    }

    #[test]
    fn migrations_are_numbered_in_order_and_match_their_files() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version as usize, i + 1);
            assert!(m.name.starts_with(&format!("{:04}_", m.version)));
            assert!(!statements(m.sql).is_empty());
        }
        let files: Vec<_> = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/schema"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".sql"))
            .collect();
        assert_eq!(
            files.len(),
            MIGRATIONS.len(),
            "every schema file is listed in MIGRATIONS"
        );
    }
}
