//! Retention (issue 6): partitions are deleted when they reach their age, each deletion is
//! listed, logged and counted; `--dry-run` deletes nothing; younger data is untouched.

use jiff::{Timestamp, ToSpan};

use crate::support::*;

fn tally(args: &[&str], config: &std::path::Path) -> String {
    tally_succeeds(args, config)
}

#[tokio::test]
async fn expired_partitions_are_dropped_logged_and_counted() {
    let setup = Setup::new("retention").with("[retention]\nraw_days = 30\nrollup_months = 25\n");
    let config = setup.config_path();
    tally(&["migrate"], &config);
    let db = &setup.db;
    let now = Timestamp::now();
    let days_ago = |d: i64| (now - (d * 24).hours()).as_second();
    // Raw events 40 and 31 days old (expired) and 10 days old (kept); 2 rows in the oldest day.
    let mut rows = Vec::new();
    for (age, n) in [(40, 2), (31, 1), (10, 3)] {
        for i in 0..n {
            rows.push(format!(
                "('www.example.org', {}, {i}, 'pageview', '/')",
                days_ago(age)
            ));
        }
    }
    ch(&format!(
        "INSERT INTO {db}.events (site, ts, visitor, name, path) VALUES {}",
        rows.join(", ")
    ))
    .await;
    // Open visits carried by a slice 29 days old (kept) whose events are 31 days old: they go
    // with their own day's raw events, not their slice's.
    ch(&format!(
        "INSERT INTO {db}.visit_carry (site, slice, version, ts, visitor, name, path) VALUES \
         ('www.example.org', toStartOfHour(toDateTime({})), 1, {}, 7, 'pageview', '/')",
        days_ago(29),
        days_ago(31)
    ))
    .await;
    // Rollups 30 months old (expired) and 2 months old (kept).
    let month_ago = |m: i64| {
        now.to_zoned(jiff::tz::TimeZone::UTC)
            .date()
            .checked_sub(m.months())
            .unwrap()
            .to_string()
    };
    ch(&format!(
        "INSERT INTO {db}.rollup_daily (site, day, dimension, value, pageviews, version) VALUES \
         ('www.example.org', '{}', '', '', 5, 1), ('www.example.org', '{}', '', '', 7, 1)",
        month_ago(30),
        month_ago(2)
    ))
    .await;

    let dry = tally(&["retention", "--dry-run"], &config);
    // Two days of raw events, their per-minute counts (migration 0010), their copy ordered by
    // the hour and the carried day (migration 0011) and a month of rollups.
    assert!(dry.contains("8 partition(s) would drop"), "{dry}");
    assert!(dry.contains(".visit_carry partition"), "{dry}");
    assert!(
        dry.contains(".events partition") && dry.contains("(2 rows)"),
        "{dry}"
    );
    assert!(dry.contains(".rollup_daily partition"), "{dry}");
    assert_eq!(
        ch_count(&format!("SELECT count() FROM {db}.events")).await,
        6,
        "dry run deletes nothing"
    );

    let run = tally(&["retention"], &config);
    assert!(run.contains("8 partition(s) dropped"), "{run}");
    assert!(
        run.contains("retention: partition dropped table=\"events\" partition=20")
            && run.contains("rows=2"),
        "each drop is logged with table, partition and rows:\n{run}"
    );
    assert_eq!(
        ch_count(&format!("SELECT count() FROM {db}.events")).await,
        3
    );
    assert_eq!(
        ch_count(&format!(
            "SELECT min(ts) >= toDateTime({}) FROM {db}.events",
            days_ago(11)
        ))
        .await,
        1,
        "only the 10-day-old events are left"
    );
    assert_eq!(
        ch_count(&format!(
            "SELECT sum(n) FROM {db}.events_minutes WHERE site = 'www.example.org'"
        ))
        .await,
        3,
        "the events' per-minute counts go with them"
    );
    assert_eq!(
        ch_count(&format!(
            "SELECT count() FROM {db}.events_by_hour WHERE site = 'www.example.org'"
        ))
        .await,
        3,
        "and their copy ordered by the hour"
    );
    assert_eq!(
        ch_count(&format!("SELECT count() FROM {db}.visit_carry")).await,
        0,
        "and the carried events of their day"
    );
    assert_eq!(
        ch_count(&format!("SELECT sum(pageviews) FROM {db}.rollup_daily")).await,
        7,
        "the 2-month-old rollup is left"
    );
    let again = tally(&["retention", "--dry-run"], &config);
    assert!(again.contains("0 partition(s) would drop"), "{again}");

    // The server runs the job at start and exposes what it did.
    ch(&format!(
        "INSERT INTO {db}.events (site, ts, visitor, name, path) VALUES ('www.example.org', {}, 9, 'pageview', '/')",
        days_ago(45)
    ))
    .await;
    let t = setup.start().await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let m = t.metrics().await;
        if metric(
            &m,
            "tally_retention_partitions_dropped_total{table=\"events\"}",
        ) == 1.0
        {
            assert_eq!(
                metric(&m, "tally_retention_rows_dropped_total{table=\"events\"}"),
                1.0
            );
            assert!(metric(&m, "tally_retention_last_run_timestamp_seconds") > 0.0);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no retention run seen:\n{m}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}
