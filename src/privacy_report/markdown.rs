//! The privacy report written for people: Markdown, in the order a privacy officer reads it
//! (what is weaker than the defaults first), in the language of `tr` (headings, table heads and
//! sentences are `privacy.md.*` messages; the report's own texts come in that language too, see
//! `build`). Names from the configuration (sites, settings, tables, columns) are not translated.

use super::Report;
use crate::i18n::Tr;
use crate::retention;

/// A Markdown table row of `cells`.
fn row(cells: &[String]) -> String {
    format!("| {} |", cells.join(" | "))
}

/// A Markdown table head: the columns (message keys) and the line under them.
fn head(tr: &Tr, columns: &[&str]) -> [String; 2] {
    let names: Vec<String> = columns
        .iter()
        .map(|c| tr.t(&format!("privacy.md.column.{c}")))
        .collect();
    [row(&names), row(&vec!["---".to_string(); columns.len()])]
}

/// The report for people, in `tr`'s language.
pub fn markdown(r: &Report, tr: &Tr) -> String {
    let mut s = String::new();
    let mut line = |l: String| {
        s.push_str(&l);
        s.push('\n');
    };
    let yes_no = |b: bool| tr.t(if b { "privacy.md.yes" } else { "privacy.md.no" });
    let or_none = |s: &str| {
        if s.is_empty() {
            tr.t("privacy.md.none")
        } else {
            s.to_string()
        }
    };
    line(format!("# {}", tr.t("privacy.md.title")));
    line(String::new());
    line(tr.f(
        "privacy.md.generated",
        &[
            ("time", &r.generated_at),
            ("version", &env!("CARGO_PKG_VERSION")),
        ],
    ));
    line(String::new());
    line(format!("## {}", tr.t("privacy.md.weaker")));
    line(String::new());
    if r.weaker_than_defaults.is_empty() {
        line(tr.t("privacy.md.weaker_none"));
    }
    for w in &r.weaker_than_defaults {
        line(format!("- **{w}**"));
    }
    line(String::new());
    line(format!("## {}", tr.t("privacy.md.sites")));
    line(String::new());
    for l in head(
        tr,
        &[
            "site",
            "aliases",
            "time_zone",
            "custom_properties",
            "public",
        ],
    ) {
        line(l);
    }
    for site in &r.sites {
        line(row(&[
            site.domain.clone(),
            or_none(&site.aliases.join(", ")),
            site.time_zone.clone(),
            or_none(&site.stored_custom_properties.join(", ")),
            yes_no(site.stats_public),
        ]));
    }
    line(String::new());
    // The sites' excluded page patterns, then their included ones, where a site has any.
    let mut path_lines = 0;
    for (key, included) in [
        ("privacy.md.excluded", false),
        ("privacy.md.included", true),
    ] {
        for site in &r.sites {
            let paths = if included {
                &site.included_paths
            } else {
                &site.excluded_paths
            };
            if !paths.is_empty() {
                let patterns = paths.join(", ");
                line(format!(
                    "- {}",
                    tr.f(key, &[("site", &site.domain), ("patterns", &patterns)])
                ));
                path_lines += 1;
            }
        }
    }
    let with_goals = r.sites.iter().filter(|s| !s.goals.is_empty());
    for site in with_goals.clone() {
        line(format!(
            "- {}",
            tr.f(
                "privacy.md.goals",
                &[("site", &site.domain), ("goals", &site.goals.join("; "))],
            )
        ));
    }
    for p in &r.builtin_event_properties {
        line(format!("- {}", tr.f("privacy.md.builtin", &[("value", p)])));
    }
    if path_lines + with_goals.count() + r.builtin_event_properties.len() > 0 {
        line(String::new());
    }
    if let Some(a) = &r.aggregate_only {
        line(format!("## {}", tr.t("privacy.md.aggregate")));
        line(String::new());
        line(format!(
            "- {}",
            tr.f(
                "privacy.md.aggregate_stored",
                &[("what", &a.stored_instead)]
            )
        ));
        line(format!("- {}", tr.t("privacy.md.aggregate_no_hash")));
        line(format!(
            "- {}",
            tr.f(
                "privacy.md.aggregate_lost",
                &[
                    ("metrics", &a.unavailable_metrics.join(", ")),
                    ("dimensions", &a.unavailable_dimensions.join(", ")),
                    ("other", &a.unavailable_other),
                ],
            )
        ));
        line(String::new());
    } else {
        line(format!("## {}", tr.t("privacy.md.stored")));
        line(String::new());
        for l in head(tr, &["field", "what", "from", "reduced_to", "kept"]) {
            line(l);
        }
    }
    for f in &r.stored_fields {
        line(row(&[
            format!("`{}`", f.column),
            f.what.clone(),
            f.from.clone(),
            f.reduction.clone(),
            f.kept.clone(),
        ]));
    }
    line(String::new());
    line(format!("## {}", tr.t("privacy.md.never")));
    line(String::new());
    for n in &r.never_stored {
        line(format!("- {n}"));
    }
    line(String::new());
    line(format!("## {}", tr.t("privacy.md.hash")));
    line(String::new());
    match &r.visitor_hash {
        None => line(tr.t("privacy.md.hash_none")),
        Some(h) => {
            let item = |key: &str, args: &[crate::i18n::Arg<'_>]| format!("- {}", tr.f(key, args));
            line(item(
                "privacy.md.hash_algorithm",
                &[("algorithm", &h.algorithm), ("inputs", &h.inputs)],
            ));
            line(item(
                "privacy.md.hash_salt",
                &[("salt", &h.salt), ("rotates", &h.salt_rotates)],
            ));
            line(item(
                "privacy.md.hash_deleted",
                &[("when", &h.previous_salt_deleted)],
            ));
            line(item(
                "privacy.md.hash_stored",
                &[("where", &h.salt_stored_in)],
            ));
            line(match h.current_salt_age_seconds {
                Some(a) => item(
                    "privacy.md.hash_age",
                    &[("h", &(a / 3600)), ("m", &((a % 3600) / 60))],
                ),
                None => item("privacy.md.hash_age_none", &[]),
            });
            line(item("privacy.md.hash_unlinkable", &[]));
        }
    }
    line(String::new());
    line(format!("## {}", tr.t("privacy.md.retention")));
    line(String::new());
    for l in head(tr, &["table", "holds", "visitor_hash", "kept"]) {
        line(l);
    }
    for t in &r.retention {
        line(row(&[
            format!("`{}`", t.table),
            t.holds.clone(),
            yes_no(t.visitor_hash),
            t.kept.clone(),
        ]));
    }
    line(String::new());
    line(format!("## {}", tr.t("privacy.md.location")));
    line(String::new());
    for (key, value) in [
        ("privacy.md.granularity", &r.location.granularity),
        ("privacy.md.database", &r.location.database),
        ("privacy.md.ip_address", &r.location.ip_address),
        ("privacy.md.rate_limit", &r.location.rate_limit),
        (
            "privacy.md.proxies",
            &or_none(&r.trusted_proxies.join(", ")),
        ),
    ] {
        line(format!("- {}", tr.f(key, &[("value", value)])));
    }
    line(String::new());
    line(format!("## {}", tr.t("privacy.md.dnt")));
    line(String::new());
    line(format!(
        "- `DNT: 1`: {}",
        tr.f("privacy.md.sentence", &[("value", &r.do_not_track.dnt)])
    ));
    line(format!(
        "- `Sec-GPC: 1`: {}",
        tr.f("privacy.md.sentence", &[("value", &r.do_not_track.gpc)])
    ));
    line(format!(
        "- {}",
        tr.f("privacy.md.bots", &[("value", &r.bots)])
    ));
    line(String::new());
    line(format!("## {}", tr.t("privacy.md.storage")));
    line(String::new());
    match &r.storage.cluster {
        None => line(format!(
            "- {}",
            tr.f(
                "privacy.md.clickhouse",
                &[
                    ("host", &r.storage.clickhouse_host),
                    ("database", &r.storage.database),
                ],
            )
        )),
        Some(c) => {
            line(format!(
                "- {}",
                tr.f(
                    "privacy.md.clickhouse_cluster",
                    &[("database", &r.storage.database)],
                )
            ));
            super::cluster::markdown(c).into_iter().for_each(&mut line);
        }
    }
    line(format!(
        "- {}",
        tr.f(
            "privacy.md.access",
            &[
                ("tokens", &or_none(&r.access.api_tokens.join(", "))),
                ("sites", &or_none(&r.access.public_sites.join(", "))),
            ],
        )
    ));
    line(format!(
        "- {}",
        tr.f(
            "privacy.md.retention_job",
            &[("minutes", &(retention::INTERVAL.as_secs() / 60))],
        )
    ));
    s
}
