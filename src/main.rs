//! The `tally` binary: parses the command line, sets up logging, and hands over to the library.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tally::cluster::Cluster;
use tally::config::{Config, LogFormat};

#[derive(Parser)]
#[command(
    name = "tally",
    version,
    about = "Website analytics that are anonymous by construction"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Migrate the schema, then collect beacons until SIGTERM or SIGINT.
    Serve {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Apply pending schema migrations and exit.
    Migrate {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Parse and validate a config file and open its country database; print the effective
    /// settings as TOML (secrets shown as "(hidden)").
    CheckConfig { config: PathBuf },
    /// Store every ended visit not yet stored, and compute again those that changed (the server
    /// also does this every minute); after an upgrade this backfills from the raw events kept,
    /// and copies visits stored before migration 0009 into the table ordered by page.
    Visits {
        #[arg(long, short)]
        config: PathBuf,
        /// Most hours stored by one ClickHouse statement (1-24): fewer take less memory in
        /// ClickHouse and more CPU in total (BENCHMARKS.md, "Storing visits").
        #[arg(long, default_value_t = tally::visits::MAX_BATCH_HOURS,
              value_parser = clap::value_parser!(u32).range(1..=24))]
        batch_hours: u32,
        /// Most raw events of their own one ClickHouse statement stores: busier hours are
        /// stored by several statements, each for a range of visitors (ClickHouse holds a
        /// statement's events in memory: about 100 MiB plus 650 bytes per event read).
        #[arg(long, default_value_t = tally::visits::BATCH_EVENTS,
              value_parser = clap::value_parser!(u64).range(1..))]
        batch_events: u64,
    },
    /// Roll up every complete day not yet rolled up (the server also does this every 5 minutes).
    Rollup {
        #[arg(long, short)]
        config: PathBuf,
        /// Compute these days again even if rolled up: `--redo 2026-03-01 2026-03-31`.
        #[arg(long, num_args = 2, value_names = ["FIRST", "LAST"])]
        redo: Option<Vec<jiff::civil::Date>>,
    },
    /// Delete raw events and rollups that reached their retention age (serve does it hourly).
    Retention {
        #[arg(long, short)]
        config: PathBuf,
        /// Only list what would be deleted.
        #[arg(long)]
        dry_run: bool,
    },
    /// List the dashboard's live login sessions (user, login, last use), or end them: a user's
    /// (`--end NAME`) or everyone's (`--end-all`), at every collector.
    Sessions {
        #[arg(long, short)]
        config: PathBuf,
        /// End the sessions of this user.
        #[arg(long, value_name = "NAME", conflicts_with = "end_all")]
        end: Option<String>,
        /// End every session.
        #[arg(long)]
        end_all: bool,
    },
    /// Print what the configuration collects, drops and keeps, and for how long.
    PrivacyReport {
        #[arg(long, short)]
        config: PathBuf,
        /// `markdown` (for people) or `json` (for machines).
        #[arg(long, default_value = "markdown", value_parser = ["markdown", "json"])]
        format: String,
        /// Language of the Markdown report: `en`, `nl` or `fr` (JSON is always English).
        #[arg(long, default_value = "en", value_parser = ["en", "nl", "fr"])]
        lang: String,
    },
    /// Hash a dashboard password read from standard input; prints the config lines for the user.
    HashPassword {
        /// The user name to log in with.
        name: String,
    },
    /// Make a read-only share link for one site's dashboard; prints the secret once, and the
    /// config lines that enable it.
    ShareLink {
        /// The site (its `domain`).
        site: String,
    },
    /// Make a new stats API token; prints it once, and the config lines that accept it.
    Token {
        /// Who will hold the token (shown in the config).
        name: String,
    },
    /// Print the Grafana dashboard (`dashboards/tally-overview.json`), its SQL written by the
    /// report engine.
    GrafanaDashboard,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let path = match &cli.command {
        Command::Serve { config }
        | Command::Migrate { config }
        | Command::CheckConfig { config }
        | Command::Visits { config, .. }
        | Command::Rollup { config, .. }
        | Command::Retention { config, .. }
        | Command::Sessions { config, .. }
        | Command::PrivacyReport { config, .. } => config,
        Command::HashPassword { name } => {
            let mut password = String::new();
            std::io::stdin()
                .read_line(&mut password)
                .context("reading the password from standard input")?;
            let toml =
                tally::credentials::user_lines(name, password.trim_end_matches(['\r', '\n']))?;
            println!("add to the config:\n{toml}");
            return Ok(());
        }
        Command::ShareLink { site } => {
            let (secret, toml) = tally::credentials::new_share_link(site);
            println!("share link (shown once): /share/{secret}\n\nadd to the config:\n{toml}");
            return Ok(());
        }
        Command::Token { name } => {
            let (token, toml) = tally::credentials::new_api_token(name);
            println!(
                "token (shown once; give it to {name}):\n  {token}\n\nadd to the config:\n{toml}"
            );
            return Ok(());
        }
        Command::GrafanaDashboard => {
            print!("{}", tally::grafana::overview_json()?);
            return Ok(());
        }
    };
    // The config is read and validated before anything else happens.
    let config = Config::load(path).with_context(|| format!("config {}", path.display()))?;
    init_logging(config.server.log_format);
    // A panic message can quote the value that caused it (a header, a URL): only where it
    // happened is logged, so no request data reaches the log even through a bug.
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        tracing::error!(%location, "internal error (panic); its message is withheld");
    }));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::CheckConfig { .. } => {
            let countries = match &config.privacy.country_database {
                Some(path) => check_country_database(path)?,
                None => "none (country is always empty)".into(),
            };
            print!("{}", tally::config::effective_toml(&config)?);
            // Comments, so that the output stays a TOML document.
            println!("\n# country database: {countries}");
            println!("# config ok: {} site(s)", config.sites.len());
            Ok(())
        }
        Command::Migrate { .. } => runtime.block_on(async {
            let cluster = Cluster::new(&config.clickhouse);
            let migrated = tally::storage::migrate(&cluster).await?;
            for (server, applied) in &migrated.applied {
                println!(
                    "{server}: schema current ({} migration(s) applied now)",
                    applied.len()
                );
            }
            for server in &migrated.unreachable {
                println!(
                    "{server}: did not answer; migrated by the next collector that finds it up"
                );
            }
            Ok(())
        }),
        Command::Serve { .. } => runtime.block_on(serve(config)),
        Command::Visits {
            batch_hours,
            batch_events,
            ..
        } => runtime.block_on(async move {
            if config.privacy.aggregate_only {
                anyhow::bail!("privacy.aggregate_only is set: no visits are built");
            }
            let cluster = Arc::new(Cluster::new(&config.clickhouse));
            tally::storage::migrate(&cluster).await?;
            let job = tally::visits::VisitJob::new(
                &config,
                &cluster,
                Arc::new(tally::metrics::Metrics::new()),
            )
            .with_batch_hours(batch_hours)
            .with_batch_events(batch_events);
            let done = job
                .run_until_done(jiff::Timestamp::now(), |d| {
                    eprintln!("visits: {} of {} hour(s) stored", d.stored, d.to_store);
                    if d.to_copy > 0 {
                        eprintln!(
                            "visits: {} of {} hour(s) stored earlier copied by page",
                            d.copied, d.to_copy
                        );
                    }
                })
                .await?;
            println!("{} hour(s) of visits stored", done.stored);
            if done.copied > 0 {
                println!("{} hour(s) stored earlier copied by page", done.copied);
            }
            Ok(())
        }),
        Command::Rollup { .. } => runtime.block_on(async {
            if config.privacy.aggregate_only {
                // Its counts are written directly; a rollup of the (empty) events table would
                // mark days with a newer version and hide them.
                anyhow::bail!("privacy.aggregate_only is set: there are no raw events to roll up");
            }
            let cluster = Arc::new(Cluster::new(&config.clickhouse));
            tally::storage::migrate(&cluster).await?;
            let job = tally::rollup::RollupJob::new(
                &config,
                &cluster,
                Arc::new(tally::metrics::Metrics::new()),
            );
            let now = jiff::Timestamp::now();
            if let Command::Rollup {
                redo: Some(days), ..
            } = &cli.command
            {
                let n = job.redo(days[0], days[1], now).await?;
                println!("{n} site-day(s) computed again");
                return Ok(());
            }
            let mut total = 0;
            loop {
                // The time of each run: a day redone is judged against what changed until then.
                let now = jiff::Timestamp::now();
                let n = job.run_once(now, tally::rollup::MAX_DAYS_PER_RUN).await?;
                total += n;
                if n == 0 {
                    break;
                }
            }
            println!("{total} site-day(s) rolled up");
            Ok(())
        }),
        Command::Retention { dry_run, .. } => runtime.block_on(async {
            let cluster = Arc::new(Cluster::new(&config.clickhouse));
            tally::storage::migrate(&cluster).await?;
            let job = tally::retention::Retention::new(
                &config,
                cluster.clone(),
                Arc::new(tally::metrics::Metrics::new()),
            );
            let now = jiff::Timestamp::now();
            let list = if dry_run {
                job.expired(now).await?
            } else {
                job.run_once(now).await?
            };
            let verb = if dry_run { "would drop" } else { "dropped" };
            println!(
                "raw events kept {} days, rollups {} months",
                config.retention.raw_days, config.retention.rollup_months
            );
            for e in &list {
                let shard = if e.shard > 0 {
                    format!(" on shard {}", e.shard)
                } else {
                    String::new()
                };
                println!(
                    "{verb} {}.{} partition {}{shard} ({} rows)",
                    config.clickhouse.database, e.table, e.partition, e.rows
                );
            }
            println!("{} partition(s) {verb}", list.len());
            Ok(())
        }),
        Command::Sessions { end, end_all, .. } => runtime.block_on(async {
            let cluster = Arc::new(Cluster::new(&config.clickhouse));
            tally::storage::migrate(&cluster).await?;
            let store = tally::dashboard::SessionStore::ClickHouse(cluster);
            let hash_of = |user: &str| {
                config
                    .dashboard
                    .users
                    .iter()
                    .find(|u| u.name == user)
                    .and_then(|u| u.password_hash.as_ref())
                    .map(|h| secrecy::ExposeSecret::expose_secret(h).to_string())
            };
            let now = jiff::Timestamp::now();
            let mut live = store
                .live(
                    now,
                    config.dashboard.session_idle,
                    config.dashboard.session_max,
                    hash_of,
                )
                .await?;
            let time = |s: u32| {
                jiff::Timestamp::from_second(i64::from(s))
                    .map(|t| t.strftime("%Y-%m-%d %H:%M UTC").to_string())
                    .unwrap_or_default()
            };
            if end.is_some() || end_all {
                live.retain(|l| end_all || end.as_deref() == Some(l.session.user.as_str()));
                store.end(&live, now).await?;
            }
            let verb = if end.is_some() || end_all {
                "ended"
            } else {
                "live"
            };
            for l in &live {
                println!(
                    "{verb} {}  {}  logged in {}, last used {}",
                    &l.token_sha256[..8],
                    l.session.user,
                    time(l.session.created),
                    time(l.session.seen)
                );
            }
            println!("{} session(s) {verb}", live.len());
            Ok(())
        }),
        Command::PrivacyReport { format, lang, .. } => runtime.block_on(async {
            let live = tally::privacy_report::Live {
                salt_age_seconds: tally::salt::current_salt_age(
                    &config,
                    &Cluster::new(&config.clickhouse),
                )
                .await,
                last_retention_run: None,
                country_database_type: match &config.privacy.country_database {
                    Some(path) => Some(tally::geo::CountryDb::open(path)?.database_type),
                    None => None,
                },
            };
            let lang = match tally::i18n::Lang::parse(&lang) {
                Some(l) if format != "json" => l,
                _ => tally::i18n::Lang::En,
            };
            let tr = tally::i18n::tr(lang);
            let report = tally::privacy_report::build(&config, &live, jiff::Timestamp::now(), tr);
            if format == "json" {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", tally::privacy_report::markdown(&report, tr));
            }
            Ok(())
        }),
        Command::Token { .. }
        | Command::HashPassword { .. }
        | Command::ShareLink { .. }
        | Command::GrafanaDashboard => {
            unreachable!("handled before the config is read")
        }
    }
}

/// Public addresses every country database places (DNS resolvers and root servers, RIPE NCC),
/// IPv4 and IPv6: a file that places none of them holds no country records.
const PROBE_ADDRESSES: [&str; 6] = [
    "8.8.8.8",
    "1.1.1.1",
    "193.0.6.139",
    "198.41.0.4",
    "2001:4860:4860::8888",
    "2001:67c:2e8:22::c100:68b",
];

/// Opens the country database as `serve` does, and checks that it answers countries; returns
/// what it is. A file that is not one is an error that says so.
fn check_country_database(path: &std::path::Path) -> anyhow::Result<String> {
    let db = tally::geo::CountryDb::open(path).with_context(|| {
        format!(
            "privacy.country_database {} is not a MaxMind-format (.mmdb) database",
            path.display()
        )
    })?;
    let placed = PROBE_ADDRESSES
        .iter()
        .filter_map(|a| a.parse().ok())
        .filter(|ip| !db.country(*ip).is_empty())
        .count();
    if placed == 0 {
        anyhow::bail!(
            "privacy.country_database {} ({}) opens, but gives no country for any of {} well-known \
             public addresses: it is not a country database (country.iso_code or country_code)",
            path.display(),
            db.database_type,
            PROBE_ADDRESSES.len()
        );
    }
    Ok(format!("{} ({})", path.display(), db.database_type))
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let prepared = tally::prepare(&config, Arc::new(tally::clock::SystemClock))
        .await
        .context("preparing the collector")?;
    let listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .with_context(|| format!("binding {}", config.server.listen))?;
    let public = &config.server.public_url;
    tracing::info!(listen = %config.server.listen, tracker_gzip_bytes = prepared.app().tracker.gzipped_len(), "tally is collecting");
    for site in &config.sites {
        println!(
            "Paste into every page of {}:\n  <script defer data-domain=\"{}\" src=\"{}/t.js\"></script>",
            site.domain, site.domain, public
        );
    }
    tally::run(listener, prepared, shutdown_signal()).await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return ctrl_c.await.unwrap_or(()),
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TALLY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colour codes only for a person at a terminal, never in files or journals.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Human => builder.init(),
    }
}
