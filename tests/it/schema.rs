//! The schema runs on current ClickHouse too: every migration file executed in chDB (26.x).

use std::process::Command;

#[test]
fn schema_files_run_on_current_clickhouse() {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = Command::new("python3")
        .arg(format!("{root}/scripts/chdb_check.py"))
        .arg(format!("{root}/schema"))
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "chDB check failed:\n{stdout}\n{stderr}"
    );
    let files = std::fs::read_dir(format!("{root}/schema")).unwrap().count();
    let ok = stdout.lines().filter(|l| l.starts_with("ok ")).count();
    assert_eq!(
        ok, files,
        "every schema file ran on current ClickHouse:\n{stdout}"
    );
}

/// Every kind of stats query (each dimension, the filters, the medians) runs on current
/// ClickHouse too, over a few rows so that the functions execute rather than only parse.
#[test]
fn stats_queries_run_on_current_clickhouse() {
    let root = env!("CARGO_MANIFEST_DIR");
    let dir = tempfile::tempdir().unwrap();
    let mut sql = String::from(
        "INSERT INTO {db}.events (site, ts, visitor, name, host, path, engaged_ms, scroll_depth, \
         source, country, device, screen, event_id) VALUES \
         ('a.example', '2026-03-29 08:00:00', 1, 'pageview', 'a.example', '/', 0, 0, 'Google', 'NL', 'desktop', 'laptop', 1), \
         ('a.example', '2026-03-29 08:00:45', 1, 'engagement', 'a.example', '/', 45000, 60, '', 'NL', 'desktop', '', 2), \
         ('a.example', '2026-03-29 08:01:00', 1, 'pageview', 'a.example', '/b', 0, 0, '', 'NL', 'desktop', 'laptop', 3), \
         ('a.example', '2026-03-29 09:00:00', 2, 'pageview', 'a.example', '/', 0, 0, '', 'DE', 'mobile', '', 4);\n",
    );
    let catalogue = tally::stats::sql::catalogue("{db}");
    for (_, query) in &catalogue {
        sql.push_str(query);
        sql.push_str(";\n");
    }
    let file = dir.path().join("stats_queries.sql");
    std::fs::write(&file, sql).unwrap();
    let out = Command::new("python3")
        .arg(format!("{root}/scripts/chdb_check.py"))
        .arg(format!("{root}/schema"))
        .arg("--queries")
        .arg(&file)
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "stats SQL failed on current ClickHouse:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains(&format!("({} statements)", catalogue.len() + 1)),
        "every stats query ran:\n{stdout}"
    );
}
