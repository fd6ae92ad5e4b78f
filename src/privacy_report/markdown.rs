//! The privacy report written for people: Markdown, in the order a privacy officer reads it
//! (what is weaker than the defaults first).

use super::Report;
use crate::retention;

/// The report for people.
pub fn markdown(r: &Report) -> String {
    let mut s = String::new();
    let mut line = |l: String| {
        s.push_str(&l);
        s.push('\n');
    };
    line("# Privacy report".into());
    line(String::new());
    line(format!(
        "Generated {} from the running configuration by tally {}.",
        r.generated_at,
        env!("CARGO_PKG_VERSION")
    ));
    line(String::new());
    line("## Settings that collect or keep more than the defaults".into());
    line(String::new());
    if r.weaker_than_defaults.is_empty() {
        line("None: every privacy setting is at its default or stricter.".into());
    }
    for w in &r.weaker_than_defaults {
        line(format!("- **{w}**"));
    }
    line(String::new());
    line("## Sites".into());
    line(String::new());
    line(
        "| site | also answers for | time zone | custom properties stored | stats public |".into(),
    );
    line("| --- | --- | --- | --- | --- |".into());
    for site in &r.sites {
        line(format!(
            "| {} | {} | {} | {} | {} |",
            site.domain,
            or_none(&site.aliases.join(", ")),
            site.time_zone,
            or_none(&site.stored_custom_properties.join(", ")),
            if site.stats_public { "yes" } else { "no" }
        ));
    }
    line(String::new());
    let excluding = r.sites.iter().filter(|s| !s.excluded_paths.is_empty());
    for site in excluding.clone() {
        line(format!("- {}: nothing is stored for pages matching {} (their beacons are answered 202 and only counted; the tracker's `data-exclude` sends none).", site.domain, site.excluded_paths.join(", ")));
    }
    for p in &r.builtin_event_properties {
        line(format!("- Built-in event {p}."));
    }
    if excluding.count() + r.builtin_event_properties.len() > 0 {
        line(String::new());
    }
    if let Some(a) = &r.aggregate_only {
        line("## Aggregate-only mode".into());
        line(String::new());
        line(format!("- Stored: {}.", a.stored_instead));
        line("- No visitor hash is computed; no salt is made or kept.".into());
        line(format!(
            "- Reports no longer available: metrics {}; dimensions {}; {}.",
            a.unavailable_metrics.join(", "),
            a.unavailable_dimensions.join(", "),
            a.unavailable_other
        ));
        line(String::new());
    } else {
        line("## What is stored per event".into());
        line(String::new());
        line("| field | what | from | reduced to | kept |".into());
        line("| --- | --- | --- | --- | --- |".into());
    }
    for f in &r.stored_fields {
        line(format!(
            "| `{}` | {} | {} | {} | {} |",
            f.column, f.what, f.from, f.reduction, f.kept
        ));
    }
    line(String::new());
    line("## Never stored".into());
    line(String::new());
    for n in &r.never_stored {
        line(format!("- {n}"));
    }
    line(String::new());
    line("## Visitor hash".into());
    line(String::new());
    match &r.visitor_hash {
        None => {
            line("None: aggregate-only mode computes no visitor hash and makes no salt.".into())
        }
        Some(h) => {
            line(format!("- Algorithm: {}, over {}.", h.algorithm, h.inputs));
            line(format!("- Salt: {}; rotates {}.", h.salt, h.salt_rotates));
            line(format!(
                "- Previous salt deleted: {}.",
                h.previous_salt_deleted
            ));
            line(format!("- Salts stored in: {}.", h.salt_stored_in));
            line(match h.current_salt_age_seconds {
                Some(a) => format!(
                    "- Today's salt was created {}h {}m ago (the salt itself is never shown).",
                    a / 3600,
                    (a % 3600) / 60
                ),
                None => "- Today's salt: not created yet.".into(),
            });
            line("- The same person gets a different hash on every site and every day, so visits cannot be linked across sites or days.".into());
        }
    }
    line(String::new());
    line("## Retention".into());
    line(String::new());
    line("| table | holds | visitor hash | kept |".into());
    line("| --- | --- | --- | --- |".into());
    for t in &r.retention {
        line(format!(
            "| `{}` | {} | {} | {} |",
            t.table,
            t.holds,
            if t.visitor_hash { "yes" } else { "no" },
            t.kept
        ));
    }
    line(String::new());
    line("## Location".into());
    line(String::new());
    line(format!("- Granularity: {}.", r.location.granularity));
    line(format!("- Database: {}.", r.location.database));
    line(format!("- IP address: {}.", r.location.ip_address));
    line(format!("- Rate limit: {}.", r.location.rate_limit));
    line(format!(
        "- Forwarded client addresses are believed only from: {}.",
        or_none(&r.trusted_proxies.join(", "))
    ));
    line(String::new());
    line("## Do Not Track and Global Privacy Control".into());
    line(String::new());
    line(format!("- `DNT: 1`: {}.", r.do_not_track.dnt));
    line(format!("- `Sec-GPC: 1`: {}.", r.do_not_track.gpc));
    line(format!("- Bots: {}.", r.bots));
    line(String::new());
    line("## Where the data lives".into());
    line(String::new());
    line(format!(
        "- ClickHouse at `{}`, database `{}` (credentials not shown).",
        r.storage.clickhouse_host, r.storage.database
    ));
    line(format!(
        "- Stats API tokens: {}; sites readable without a token: {}.",
        or_none(&r.access.api_tokens.join(", ")),
        or_none(&r.access.public_sites.join(", "))
    ));
    line(format!(
        "- Retention job: every {} minutes in each collector.",
        retention::INTERVAL.as_secs() / 60
    ));
    s
}

fn or_none(s: &str) -> String {
    if s.is_empty() {
        "none".into()
    } else {
        s.to_string()
    }
}
