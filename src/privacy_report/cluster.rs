//! The privacy report's account of a ClickHouse cluster: which servers hold the data, and which
//! tables are split over the shards and which are copied to every server.

use serde::Serialize;

use crate::config::ClickHouseConfig;
use crate::storage::ddl::EVERYWHERE;

/// Where the data lives in cluster mode (`None` for one server).
#[derive(Serialize)]
pub struct ClusterReport {
    pub name: String,
    /// Each shard's replicas (server addresses; credentials are never part of them).
    pub shards: Vec<Vec<String>>,
    pub zookeeper_path: String,
    pub tables: Vec<Placement>,
}

#[derive(Serialize)]
pub struct Placement {
    pub table: &'static str,
    pub lives_on: &'static str,
}

/// The tables of the schema and where each is kept.
const SHARDED: [&str; 12] = [
    "events_minutes",
    "events_by_hour",
    "visit_carry",
    "visits",
    "visit_pages",
    "visit_page_days",
    "visit_slices",
    "rollup_daily",
    "rollup_durations",
    "rollup_pairs",
    "rollup_page_seconds",
    "rollup_days",
];

pub fn report(config: &ClickHouseConfig) -> Option<ClusterReport> {
    let cluster = config.cluster.as_ref()?;
    let mut tables = vec![
        Placement {
            table: "events",
            lives_on: "split over the shards by visitor hash (a visitor's events on one shard), \
                       each shard copied to its replicas; reached through events_all",
        },
        Placement {
            table: "schema_migrations",
            lives_on: "every server, its own list of applied schema migrations",
        },
    ];
    tables.extend(SHARDED.iter().map(|&table| Placement {
        table,
        lives_on: "each shard, computed from that shard's events, copied to its replicas",
    }));
    tables.extend(EVERYWHERE.iter().map(|&table| Placement {
        table,
        lives_on: "every server (one copy per server, deleted from every server on expiry)",
    }));
    Some(ClusterReport {
        name: cluster.name.clone(),
        shards: cluster.shards.clone(),
        zookeeper_path: cluster.zookeeper_path.clone(),
        tables,
    })
}

/// The Markdown lines of the cluster part of "Where the data lives".
pub fn markdown(c: &ClusterReport) -> Vec<String> {
    let mut lines = vec![format!(
        "- ClickHouse cluster `{}` ({} shard(s), replication coordinated by ZooKeeper under `{}`):",
        c.name,
        c.shards.len(),
        c.zookeeper_path
    )];
    for (i, replicas) in c.shards.iter().enumerate() {
        lines.push(format!(
            "  - shard {}: {}",
            i + 1,
            replicas
                .iter()
                .map(|r| format!("`{r}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    lines.push("- Tables in the cluster:".into());
    for t in &c.tables {
        lines.push(format!("  - `{}`: {}", t.table, t.lives_on));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_of_the_schema_is_placed_and_every_server_named() {
        let config = crate::Config::parse(
            "[clickhouse]\ncluster = \"c\"\nshards = [[\"http://a:8123\", \"http://b:8123\"], \
             [\"http://c:8123\"]]\n[[sites]]\ndomain = \"a.example\"\n",
        )
        .unwrap();
        let r = report(&config.clickhouse).expect("cluster mode");
        let mut placed: Vec<&str> = r.tables.iter().map(|t| t.table).collect();
        placed.sort_unstable();
        let mut created: Vec<String> = crate::storage::MIGRATIONS
            .iter()
            .flat_map(|m| crate::storage::statements(m.sql))
            .filter_map(|s| {
                s.strip_prefix("CREATE TABLE IF NOT EXISTS {db}.")
                    .map(|r| r.split_whitespace().next().unwrap().to_string())
            })
            .collect();
        created.push("schema_migrations".into());
        created.sort();
        assert_eq!(placed, created, "each table of schema/ is described");
        let text = markdown(&r).join("\n");
        for server in ["http://a:8123", "http://b:8123", "http://c:8123"] {
            assert!(text.contains(server), "{server} named:\n{text}");
        }
        let one = crate::Config::parse("[[sites]]\ndomain = \"a.example\"\n").unwrap();
        assert!(report(&one.clickhouse).is_none());
    }
}
