//! ClickHouse: the client, the numbered migrations in `schema/`, and readiness checks.
//!
//! Migrations are embedded in the binary (so `tally migrate` needs no source tree), applied in
//! order, recorded in `schema_migrations`, and idempotent (`IF NOT EXISTS` everywhere). The SQL
//! is written to run on ClickHouse 18.16 (the server Debian ships) and on current ClickHouse;
//! the test suite executes every file on both.

use clickhouse::Client;
use serde::Deserialize;

use secrecy::ExposeSecret;

use crate::config::ClickHouseConfig;
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
        sql: include_str!("../schema/0001_events.sql"),
    },
    Migration {
        version: 2,
        name: "0002_salts.sql",
        sql: include_str!("../schema/0002_salts.sql"),
    },
    Migration {
        version: 3,
        name: "0003_events_source.sql",
        sql: include_str!("../schema/0003_events_source.sql"),
    },
    Migration {
        version: 4,
        name: "0004_rollups.sql",
        sql: include_str!("../schema/0004_rollups.sql"),
    },
    Migration {
        version: 5,
        name: "0005_events_micros.sql",
        sql: include_str!("../schema/0005_events_micros.sql"),
    },
    Migration {
        version: 6,
        name: "0006_visits.sql",
        sql: include_str!("../schema/0006_visits.sql"),
    },
];

pub fn latest_version() -> u32 {
    MIGRATIONS.last().map(|m| m.version).unwrap_or(0)
}

/// A client bound to the configured database. Validation is off because ClickHouse 18.16
/// lacks the `RowBinaryWithNamesAndTypes` format it relies on; the row types mirror the schema.
pub fn client(config: &ClickHouseConfig) -> Client {
    server_client(config).with_database(&config.database)
}

/// A client not bound to a database (for `CREATE DATABASE`).
fn server_client(config: &ClickHouseConfig) -> Client {
    let mut c = Client::default()
        .with_url(&config.url)
        .with_user(&config.user)
        .with_validation(false);
    let password = config.password.expose_secret();
    if !password.is_empty() {
        c = c.with_password(password);
    }
    c
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

/// Applies every migration not yet recorded. Returns the names applied now.
pub async fn migrate(config: &ClickHouseConfig) -> Result<Vec<&'static str>, Error> {
    let db = &config.database;
    let server = server_client(config);
    server
        .query(&format!("CREATE DATABASE IF NOT EXISTS {db}"))
        .execute()
        .await?;
    server
        .query(&format!(
            "CREATE TABLE IF NOT EXISTS {db}.schema_migrations \
             (version UInt32, name String, applied_at DateTime('UTC')) \
             ENGINE = MergeTree ORDER BY version"
        ))
        .execute()
        .await?;
    let client = client(config);
    let applied = applied_versions(&client).await?;
    let mut done = Vec::new();
    for m in MIGRATIONS.iter().filter(|m| !applied.contains(&m.version)) {
        for stmt in statements(&m.sql.replace("{db}", db)) {
            client
                .query(&stmt)
                .execute()
                .await
                .map_err(|e| Error::Migration {
                    name: m.name.to_string(),
                    message: e.to_string(),
                })?;
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
        tracing::info!(migration = m.name, "applied migration");
        done.push(m.name);
    }
    Ok(done)
}

async fn applied_versions(client: &Client) -> Result<Vec<u32>, Error> {
    let rows: Vec<VersionRow> = client
        .query("SELECT DISTINCT version FROM schema_migrations")
        .fetch_all()
        .await?;
    Ok(rows.into_iter().map(|r| r.version).collect())
}

/// Ready means: ClickHouse answers and every migration this binary knows is applied.
pub async fn is_ready(client: &Client) -> bool {
    match applied_versions(client).await {
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
pub async fn recently_seen(client: &Client, since: i64) -> Result<Vec<(u64, i64)>, Error> {
    let since = u32::try_from(since.max(0)).unwrap_or(u32::MAX);
    let rows: Vec<SeenRow> = client
        .query("SELECT visitor, toUInt32(max(ts)) AS last FROM events WHERE ts >= toDateTime(?, 'UTC') GROUP BY visitor")
        .bind(since)
        .fetch_all()
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
    client: &Client,
    days: u32,
    per_site: u32,
) -> Result<Vec<(String, String)>, Error> {
    let rows: Vec<SitePath> = client
        .query(
            "SELECT site, path FROM events WHERE ts >= now() - ? * 86400 \
             GROUP BY site, path ORDER BY site, count() DESC LIMIT ? BY site",
        )
        .bind(days)
        .bind(per_site)
        .fetch_all()
        .await?;
    Ok(rows.into_iter().map(|r| (r.site, r.path)).collect())
}

/// The version of one computation of derived rows (visits, rollups): its start second in the
/// high half, so a recomputation wins over what it replaces, and random bits in the low half, so
/// concurrent computations differ. Readers take the highest version marked done.
pub fn new_version() -> Result<u64, Error> {
    use rand::TryRng;
    let now = u64::try_from(jiff::Timestamp::now().as_second()).unwrap_or(0);
    let random = rand::rngs::SysRng
        .try_next_u32()
        .map_err(|e| Error::Config(format!("operating system RNG failed: {e}")))?;
    Ok((now << 32) | u64::from(random))
}

#[cfg(test)]
mod tests {
    use super::*;

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
