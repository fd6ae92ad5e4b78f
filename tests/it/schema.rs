//! The schema runs on current ClickHouse too: every migration file executed in chDB (26.x).

use std::process::Command;

use tally::event_counts;
use tally::goals::{Goal, GoalKind};
use tally::rollup::sql::{
    days_with_visits, mark_days, rolled_since, rollup_day, slices_done_since, stored_since,
    unstored_hours,
};
use tally::stats::sql::conversions::{Conversions, GoalRule};
use tally::stats::sql::rollups::{
    page_seconds, rolled_days, rollup_durations, rollup_grouped, Slice,
};
use tally::stats::sql::units::{
    pages_ready, prefilter, recent_pageviews, tail_carry, tail_reaches_period, tail_start,
};
use tally::stats::sql::visits::{
    count_events, durations, first_event, grouped, grouped_with_total, groups_in, Components,
    Percentiles,
};
use tally::stats::sql::{Scope, ScopeValues, Sql, TailByHour};
use tally::stats::{Dimension, Filter, Op};
use tally::visits::sql as visit_sql;

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
    let catalogue = catalogue("{db}");
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

/// One query per dimension and per filter kind, for checking the SQL on current ClickHouse.
/// The report scope the SQL checks use: `a.example`, Sunday 29 March 2026 in Amsterdam.
pub fn example_scope(database: &str) -> Scope<'_> {
    Scope::literal(ScopeValues {
        database,
        site: "a.example",
        tz: "Europe/Amsterdam",
        from: "2026-03-28T23:00:00Z".parse().unwrap(),
        to: "2026-03-29T22:00:00Z".parse().unwrap(),
        timeout_seconds: 1800,
        bounce_ms: 10_000,
        first_date: "2026-03-29".parse().unwrap(),
        stored_visits: true,
    })
}

fn catalogue(database: &str) -> Vec<(String, String)> {
    let from: jiff::Timestamp = "2026-03-28T23:00:00Z".parse().unwrap();
    let to: jiff::Timestamp = "2026-03-29T22:00:00Z".parse().unwrap();
    let scope = example_scope(database);
    let leaf = |op, dimension, value: &str| Filter::Leaf {
        op,
        dimension,
        values: vec![value.to_string()],
        case_sensitive: true,
    };
    let mut out = vec![(
        "aggregate".to_string(),
        grouped(
            &scope,
            &[],
            &[],
            Percentiles::Values {
                time_on_page_median: true,
            },
        ),
    )];
    // A conversion report's scope: a page goal with a wildcard, an event goal, one property.
    let mut conversion_scope = scope.clone();
    conversion_scope.conversions = Some(Conversions {
        goals: [
            Goal {
                name: "Visit /afval*".into(),
                kind: GoalKind::Page("/afval*".into()),
            },
            Goal {
                name: "Download".into(),
                kind: GoalKind::Event("Download".into()),
            },
        ]
        .iter()
        .map(GoalRule::of)
        .collect(),
        prop_keys: vec!["plan".into()],
    });
    for d in Dimension::ALL.into_iter().chain([Dimension::Prop(0)]) {
        let scope = if d.is_conversion() {
            &conversion_scope
        } else {
            &scope
        };
        out.push((
            d.name().to_string(),
            grouped(
                scope,
                &[d],
                &[],
                Percentiles::Histograms {
                    durations: true,
                    page_seconds: true,
                    components: Components::ALL,
                    one_shard: false,
                },
            ),
        ));
    }
    let filters = vec![
        leaf(Op::Is, Dimension::Country, "NL"),
        leaf(Op::ContainsNot, Dimension::Page, "/admin"),
        leaf(Op::Matches, Dimension::Hostname, "^a\\."),
        // Page filters without a lambda: `has` and the search in the joined pages.
        Filter::Or(vec![
            leaf(Op::Is, Dimension::Page, "/b"),
            Filter::Leaf {
                op: Op::Contains,
                dimension: Dimension::Page,
                values: vec!["/B".into()],
                case_sensitive: false,
            },
        ]),
        Filter::Not(Box::new(Filter::Or(vec![
            leaf(Op::IsNot, Dimension::Source, "Direct / None"),
            Filter::Leaf {
                op: Op::Contains,
                dimension: Dimension::UtmCampaign,
                values: vec!["Spring".into(), "fall".into()],
                case_sensitive: false,
            },
        ]))),
    ];
    let day: jiff::civil::Date = "2026-03-29".parse().unwrap();
    let now: jiff::Timestamp = "2026-03-30T12:00:00Z".parse().unwrap();
    let slice = visit_sql::Slice {
        database,
        site: "a.example",
        tz: "Europe/Amsterdam",
        timeout_seconds: 1800,
        bounce_ms: 10_000,
        pageview_props: false,
        hour: "2026-03-29T08:00:00Z".parse().unwrap(),
        hours: 3,
        part: (0, 1),
        carry: None,
    };
    out.push(("store visits".into(), visit_sql::store(&slice, 1)));
    // Reading the open visits the batch before left (migration 0011), and leaving its own; a
    // site that allow-lists props, so its pageviews' are kept.
    let carried = visit_sql::Slice {
        carry: Some(visit_sql::Carry {
            slice: "2026-03-29T07:00:00Z".parse().unwrap(),
            version: 1,
        }),
        part: (1, 3),
        pageview_props: true,
        ..slice
    };
    out.push((
        "store visits, carried".into(),
        visit_sql::store(&carried, 2),
    ));
    out.push(("write the carry".into(), visit_sql::write_carry(&slice, 1)));
    out.push((
        "write the carry, carried".into(),
        visit_sql::write_carry(&carried, 2),
    ));
    out.push((
        "events by hour since".into(),
        visit_sql::by_hour_since(database),
    ));
    // One range of the visitor hash of three (both bounds), as a busy batch is stored.
    let part = visit_sql::Slice {
        part: (1, 3),
        ..slice
    };
    out.push((
        "store visits, one visitor range".into(),
        visit_sql::store(&part, 1),
    ));
    out.push((
        "mark visits".into(),
        format!(
            "INSERT INTO {database}.visit_slices (site, slice, version, done, at, events, visits, first_start) \
             VALUES ('a.example', toDateTime('2026-03-29 08:00:00', 'UTC'), 1, 1, now(), 3, 1, toDateTime('2026-03-29 08:00:00', 'UTC'))"
        ),
    ));
    // Counted per minute from the view's table after the mark, from raw events before it.
    let since = from + jiff::SignedDuration::from_hours(1);
    out.push(("counted since".into(), event_counts::mark(database)));
    out.push((
        "minute counts".into(),
        event_counts::per_minute(database, "a.example", from, now, since),
    ));
    out.push((
        "markers".into(),
        visit_sql::markers(database, "a.example", from),
    ));
    out.push(("stored".into(), visit_sql::stored(&slice, 1)));
    // The copy by page: of a computation (version 1), and of slices stored before it existed.
    let range = slice.read_range();
    for (i, copy) in visit_sql::copy_pages(
        database,
        "a.example",
        range,
        &visit_sql::version_rows(&slice, 1),
        1,
    )
    .into_iter()
    .enumerate()
    {
        out.push((format!("copy by page {i}"), copy));
    }
    out.push((
        "uncopied slices".into(),
        visit_sql::uncopied(database, "a.example"),
    ));
    let uncopied = [visit_sql::Uncopied {
        slice: 1_774_771_200,
        version: 1,
        first_start: 1_774_771_200,
    }];
    for (i, copy) in visit_sql::copy_pages(
        database,
        "a.example",
        range,
        &visit_sql::slice_versions(&uncopied),
        2,
    )
    .into_iter()
    .enumerate()
    {
        out.push((format!("backfill copy by page {i}"), copy));
    }
    out.push((
        "mark copied".into(),
        visit_sql::mark_copied(database, "a.example", &uncopied, 2),
    ));
    out.push(("realtime".into(), recent_pageviews(&scope, &[])));
    // The median time on page of the rows shown: one dimension, then two.
    for dims in [
        vec![Dimension::Page],
        vec![Dimension::Country, Dimension::Page],
    ] {
        let shown: Vec<Vec<String>> = [["NL", "/"], ["DE", "/b"]]
            .iter()
            .map(|v| v[2 - dims.len()..].iter().map(|s| s.to_string()).collect())
            .collect();
        let mut shown_scope = scope.clone();
        shown_scope.units_where = Some(groups_in(&scope, &dims, &shown));
        out.push((
            "medians of the rows shown".into(),
            grouped(
                &shown_scope,
                &dims,
                &[],
                Percentiles::Histograms {
                    durations: false,
                    page_seconds: true,
                    components: Components(0).with(6),
                    one_shard: true,
                },
            ),
        ));
    }
    out.push((
        "count events".into(),
        count_events(database, "a.example", from, to),
    ));
    out.push(("first event".into(), first_event(database, "a.example")));
    out.push((
        "unstored hours".into(),
        unstored_hours(
            database,
            "a.example",
            from + jiff::SignedDuration::from_hours(1),
        ),
    ));
    out.push((
        "slices done since".into(),
        slices_done_since(database, "a.example", from),
    ));
    out.push((
        "rolled since".into(),
        rolled_since(database, "a.example", day),
    ));
    out.push(("stored since".into(), stored_since(database, "a.example")));
    for (i, statement) in rollup_day(&scope, day, 1, now).into_iter().enumerate() {
        out.push((format!("rollup statement {i}"), statement));
    }
    out.push((
        "mark days".into(),
        mark_days(database, "a.example", &[day], 2, now),
    ));
    out.push((
        "rolled days".into(),
        rolled_days(database, "a.example", day, day),
    ));
    out.push((
        "days with visits".into(),
        days_with_visits(database, "a.example", "Europe/Amsterdam", from, to),
    ));
    out.push(("durations".into(), durations(&scope, &filters)));
    out.push((
        "rollup durations".into(),
        rollup_durations(database, "a.example", day, day),
    ));
    let shown = [vec!["/".to_string()], vec!["/a".to_string()]];
    for (dims, only) in [
        (vec![], None),
        (vec![Dimension::Page], None),
        (vec![Dimension::Page], Some(&shown[..])),
    ] {
        let sql = page_seconds(database, "a.example", day, day, &dims, only).expect("kept");
        out.push((format!("rollup page seconds {dims:?} {only:?}"), sql));
    }
    for dims in [
        vec![],
        vec![Dimension::Page],
        vec![Dimension::Week],
        vec![Dimension::Hour],
        vec![Dimension::Weekday, Dimension::HourOfDay],
    ] {
        let sql = rollup_grouped(database, "a.example", day, day, &dims, None).expect("rolled up");
        out.push((format!("rollup read {dims:?}"), sql));
    }
    let slice = Slice {
        dimension: Dimension::Country,
        value: "NL",
    };
    for dims in [vec![], vec![Dimension::Day], vec![Dimension::Country]] {
        let sql = rollup_grouped(database, "a.example", day, day, &dims, Some(slice))
            .expect("one value's rows");
        out.push((format!("rollup read {dims:?}, country is NL"), sql));
    }
    let raw_scope = Scope {
        stored_visits: false,
        ..scope.clone()
    };
    out.push((
        "raw visits (visits.store = false)".to_string(),
        grouped(
            &raw_scope,
            &[Dimension::Page],
            &filters,
            Percentiles::Histograms {
                durations: true,
                page_seconds: false,
                components: Components::ALL,
                one_shard: false,
            },
        ),
    ));
    // A period without an open tail: the report aggregates the `visits` table itself, with a
    // page filter on visit rows (`pages`) and only some components.
    let stored_scope = Scope {
        open_tail: false,
        ..scope.clone()
    };
    out.push((
        "stored visits only".to_string(),
        grouped(
            &stored_scope,
            &[Dimension::Source, Dimension::Day],
            &filters,
            Percentiles::Histograms {
                durations: true,
                page_seconds: true,
                components: Components(0).with(1).with(3),
                one_shard: true,
            },
        ),
    ));
    // Every component, with the percentiles computed in the query (one shard).
    let every_component = Percentiles::Histograms {
        durations: true,
        page_seconds: true,
        components: Components::ALL,
        one_shard: true,
    };
    // Read by page: a positive page filter of each form of key, grouped by page and not, and
    // the check that every slice has its copy.
    let by_page_scope = Scope {
        by_page: true,
        ..stored_scope.clone()
    };
    out.push(("pages ready".into(), pages_ready(&by_page_scope)));
    for (name, key) in [
        ("is", leaf(Op::Is, Dimension::Page, "/b")),
        ("contains", leaf(Op::Contains, Dimension::Page, "b")),
        ("wildcard", leaf(Op::Is, Dimension::Page, "/b*")),
        ("matches", leaf(Op::Matches, Dimension::Page, "^/b$")),
    ] {
        let mut keyed = filters.clone();
        keyed.push(key);
        for dims in [vec![], vec![Dimension::Page]] {
            out.push((
                format!("by page, {name}, {dims:?}"),
                grouped_with_total(&by_page_scope, &dims, &keyed, every_component),
            ));
        }
        out.push((
            format!("prefilter by page, {name}"),
            prefilter(
                &by_page_scope,
                &keyed,
                &format!("tally_by_page_{name}"),
                1000,
            ),
        ));
    }
    // With the total of a percentage in the same pass: the open tail, stored visits only, and
    // over a long period (visitors counted per local day, each day's total merged).
    let long_scope = Scope {
        period_days: tally::stats::sql::visits::BY_DAY_FROM_DAYS,
        ..by_page_scope.clone()
    };
    let contains = {
        let mut keyed = filters.clone();
        keyed.push(leaf(Op::Contains, Dimension::Page, "b"));
        keyed
    };
    out.push((
        "grouped with its total, per day".to_string(),
        grouped_with_total(
            &long_scope,
            &[Dimension::Country],
            &contains,
            Percentiles::Histograms {
                durations: false,
                page_seconds: false,
                components: Components(0).with(1).with(0).with(2),
                one_shard: true,
            },
        ),
    ));
    out.push((
        "grouped without a total, per day".to_string(),
        grouped(
            &Scope {
                period_days: tally::stats::sql::visits::BY_DAY_WITHOUT_TOTAL_FROM_DAYS,
                ..stored_scope.clone()
            },
            &[Dimension::Device],
            &filters,
            Percentiles::Histograms {
                durations: false,
                page_seconds: false,
                components: Components(0).with(1).with(2),
                one_shard: true,
            },
        ),
    ));
    for (name, s) in [
        ("with the open tail", &scope),
        ("stored visits only", &stored_scope),
    ] {
        out.push((
            format!("grouped with its total, {name}"),
            grouped_with_total(
                s,
                &[Dimension::Country],
                &filters,
                Percentiles::Histograms {
                    durations: false,
                    page_seconds: false,
                    components: Components(0).with(1),
                    one_shard: true,
                },
            ),
        ));
    }
    // The open tail's first hour, whether it can be read by the hour, and a report reading it
    // from `events_by_hour` and the carry (and without a carry: its hours alone).
    out.push(("the open tail's first hour".to_string(), tail_start(&scope)));
    let tail_scope = Scope {
        tail_from: Some(Sql::fixed("toDateTime(1774778400, 'UTC')")),
        ..scope.clone()
    };
    out.push((
        "whether the open tail reads by the hour".to_string(),
        tail_carry(&tail_scope),
    ));
    for (name, carry) in [
        (
            "and the carry",
            Some((Sql::fixed("toDateTime(1774774800, 'UTC')"), 7)),
        ),
        ("alone", None),
    ] {
        let by_hour = Scope {
            tail_by_hour: Some(TailByHour { carry }),
            ..tail_scope.clone()
        };
        out.push((
            format!("grouped with the open tail read by the hour {name}"),
            grouped(&by_hour, &[Dimension::Page], &filters, every_component),
        ));
        let after = Scope {
            tail_after_period: true,
            ..by_hour
        };
        out.push((
            format!("a tail read by the hour {name} reaching back into the period"),
            tail_reaches_period(&after),
        ));
    }
    // A dashboard page's prefiltered rows: the temporary table filled from stored visits and
    // from the open tail, and a panel's report reading it.
    out.push((
        "prefilter from stored visits".to_string(),
        prefilter(&stored_scope, &filters, "tally_prefiltered", 200_000),
    ));
    out.push((
        "prefilter with the open tail".to_string(),
        prefilter(&scope, &filters, "tally_prefiltered_tail", 200_000),
    ));
    let table_scope = Scope {
        units_table: Some("tally_prefiltered".into()),
        ..scope.clone()
    };
    out.push((
        "report over the prefiltered table".to_string(),
        grouped(&table_scope, &[Dimension::Page], &filters, every_component),
    ));
    out.push((
        "filters".to_string(),
        grouped(
            &scope,
            &[Dimension::Weekday, Dimension::HourOfDay],
            &filters,
            Percentiles::Values {
                time_on_page_median: true,
            },
        ),
    ));
    // A conversion report with goal and property filters next to the others.
    let mut conversion_filters = filters.clone();
    conversion_filters.push(leaf(Op::Contains, Dimension::Goal, "afval"));
    conversion_filters.push(leaf(Op::IsNot, Dimension::Prop(0), "free"));
    out.push((
        "conversion filters".to_string(),
        grouped(
            &conversion_scope,
            &[Dimension::Goal, Dimension::Source],
            &conversion_filters,
            Percentiles::Values {
                time_on_page_median: false,
            },
        ),
    ));
    out
}
