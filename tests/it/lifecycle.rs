//! Start, restart and shutdown: migrations are idempotent, a restart keeps the day's visitor ids,
//! two collectors on one database agree, and a graceful shutdown loses no accepted beacon.

use crate::support::*;

#[tokio::test]
async fn migrate_is_idempotent_and_recorded() {
    let setup = Setup::new("migrate");
    let config = setup.config_path();
    let all = tally::storage::MIGRATIONS.len();
    for expected in [
        format!("{all} migration(s) applied now"),
        "0 migration(s) applied now".to_string(),
    ] {
        let out = tally_command(&["migrate", "--config", &config.to_string_lossy()]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains(&expected));
    }
    let tables = ch(&format!(
        "SELECT name FROM system.tables WHERE database = '{}' ORDER BY name",
        setup.db
    ))
    .await;
    assert_eq!(
        tables.lines().collect::<Vec<_>>(),
        vec![
            "dashboard_sessions",
            "events",
            "events_by_hour",
            "events_by_hour_mv",
            "events_minutes",
            "events_minutes_mv",
            "rollup_daily",
            "rollup_days",
            "rollup_durations",
            "rollup_page_seconds",
            "rollup_pairs",
            "salts",
            "schema_migrations",
            "visit_carry",
            "visit_page_days",
            "visit_pages",
            "visit_slices",
            "visits"
        ]
    );
    assert_eq!(
        ch_count(&format!(
            "SELECT count() FROM {}.schema_migrations",
            setup.db
        ))
        .await,
        all as u64
    );
}

#[tokio::test]
async fn check_config_rejects_unknown_keys_and_bad_values() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "[server]\nlisten = \"127.0.0.1:1\"\nlisten_port = 5\n[[sites]]\ndomain = \"a.nl\"\n",
            "unknown field",
        ),
        (
            "[privacy]\nsalt_time_zone = \"Mars/Olympus\"\n[[sites]]\ndomain = \"a.nl\"\n",
            "unknown time zone",
        ),
        (
            "[server]\nlisten = \"127.0.0.1:1\"\n",
            "at least one [[sites]]",
        ),
        ("[[sites]]\ndomain = \"https://a.nl/\"\n", "bare host name"),
    ];
    for (text, expected) in cases {
        let p = dir.path().join("c.toml");
        std::fs::write(&p, text).unwrap();
        let out = tally_command(&["check-config", &p.to_string_lossy()]);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(expected), "expected {expected:?} in {err}");
    }
    let p = dir.path().join("ok.toml");
    std::fs::write(
        &p,
        "[clickhouse]\npassword = \"hunter2\"\n[[sites]]\ndomain = \"a.nl\"\n",
    )
    .unwrap();
    let out = tally_command(&["check-config", &p.to_string_lossy()]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("config ok") && !text.contains("hunter2"),
        "{text}"
    );
}

#[tokio::test]
async fn restart_keeps_visitor_id_and_graceful_shutdown_loses_nothing() {
    // A flush interval far longer than the test: only the shutdown drain can write these rows.
    let setup = Setup::new("restart").flush_ms(600_000);
    let t = setup.start().await;
    let n = 300u64;
    let mut tasks = Vec::new();
    for i in 0..n {
        let base = t.base.clone();
        tasks.push(tokio::spawn(async move {
            let body = format!(r#"{{"n":"pageview","u":"https://www.example.org/p/{i}"}}"#);
            reqwest::Client::new()
                .post(format!("{base}/api/event"))
                .header("user-agent", CHROME)
                .header("x-forwarded-for", format!("198.51.100.{}", i % 200))
                .body(body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut accepted = 0;
    for task in tasks {
        if task.await.unwrap() == 202 {
            accepted += 1;
        }
    }
    assert_eq!(accepted, n);
    assert_eq!(
        ch_count(&format!("SELECT count() FROM {}.events", setup.db)).await,
        0,
        "nothing flushed yet"
    );
    let (status, logs) = t.terminate();
    assert!(status.success(), "clean exit: {status}\n{logs}");
    assert!(logs.contains("writer drained"), "{logs}");
    assert_eq!(
        ch_count(&format!("SELECT count() FROM {}.events", setup.db)).await,
        n,
        "every 202 reached ClickHouse"
    );

    // Same day, new process: the same visitor gets the same id.
    let t = setup.start().await;
    assert_eq!(
        t.browser_beacon(
            r#"{"n":"pageview","u":"https://www.example.org/again"}"#,
            CHROME,
            "198.51.100.7"
        )
        .await,
        202
    );
    let (status, _) = t.terminate();
    assert!(status.success());
    let same = ch_count(&format!(
        "SELECT uniqExact(visitor) FROM {}.events WHERE path IN ('/p/7', '/again')",
        setup.db
    ))
    .await;
    assert_eq!(same, 1, "restart on the same day keeps the visitor id");
}

#[tokio::test]
async fn two_collectors_on_one_database_agree_on_visitor_ids() {
    let a = Setup::new("pair");
    let mut b = Setup::new("pair");
    b.db = a.db.clone();
    let ta = a.start().await;
    let tb = b.start().await;
    let body = r#"{"n":"pageview","u":"https://www.example.org/lb"}"#;
    assert_eq!(ta.browser_beacon(body, IPHONE, "193.0.6.139").await, 202);
    assert_eq!(tb.browser_beacon(body, IPHONE, "193.0.6.139").await, 202);
    assert_eq!(ta.wait_rows(2).await, 2);
    assert_eq!(
        ch_count(&format!("SELECT uniqExact(visitor) FROM {}.events", a.db)).await,
        1
    );
    // The second collector adopted the first one's salts rather than proposing its own.
    let per_day = ch(&format!(
        "SELECT day, count() FROM {}.salts GROUP BY day ORDER BY day FORMAT TSV",
        a.db
    ))
    .await;
    assert_eq!(per_day.lines().count(), 2, "today and tomorrow: {per_day}");
    assert!(per_day.lines().all(|l| l.ends_with("\t1")), "{per_day}");
    let _ = tb.terminate();
    let _ = ta.terminate();
}
