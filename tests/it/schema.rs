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
