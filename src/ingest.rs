//! Ingest: one beacon plus its request metadata in, zero or more anonymous event rows out.
//!
//! This is where identifiers die. The client IP and the user agent are read here, turned into a
//! visitor hash, a country and coarse classes, and not passed on; the page URL and referrer are
//! reduced (`page_url`) before anything is queued. Nothing here logs request data.

use std::net::IpAddr;
use std::sync::Arc;

use hyper::header::HeaderName;
use hyper::HeaderMap;
use jiff::Timestamp;

use crate::beacon::{bounded, Beacon, Kind};
use crate::clock::Clock;
use crate::config::{Config, SiteConfig};
use crate::error::Rejection;
use crate::event::{screen_class, EventRow};
use crate::geo::CountryDb;
use crate::metrics::{Metrics, Reason};
use crate::page_url::{reduce_page, reduce_referrer, truncate_chars};
use crate::trusted_proxy::TrustedProxies;
use crate::user_agent::Classifier;
use crate::visitor::Visitors;
use crate::writer::Queue;

/// Longest engaged time accepted for one page, in ms (a day); longer values are clamped.
pub const MAX_ENGAGED_MS: f64 = 86_400_000.0;
/// Longest stored custom property value, in characters.
pub const MAX_PROP_VALUE_CHARS: usize = 200;

/// What became of a beacon that was not refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Queued this many events (one per site named in the beacon).
    Stored(usize),
    /// Judged a bot: answered 202, not stored.
    Bot,
    /// The browser asked not to be tracked (DNT / GPC, when honoured): answered 202, not read.
    NotTracked,
    /// The page is in its site's `exclude_paths`: answered 202, not stored, counted.
    Excluded,
}

/// The request facts ingest needs besides the body.
pub struct RequestMeta<'a> {
    pub peer: IpAddr,
    pub headers: &'a HeaderMap,
}

pub struct Ingest {
    pub sites: Vec<SiteConfig>,
    query_allowlist: Vec<String>,
    honor_dnt: bool,
    honor_gpc: bool,
    /// `privacy.aggregate_only`: no visitor hash; `visitor` carries the entry flag instead.
    aggregate_only: bool,
    max_event_name_chars: usize,
    proxies: TrustedProxies,
    classifier: Classifier,
    countries: CountryDb,
    pub visitors: Visitors,
    pub clock: Arc<dyn Clock>,
    pub metrics: Arc<Metrics>,
    queue: Queue,
    /// For loading the cross-midnight carry set.
    client: clickhouse::Client,
    rate_limit: crate::rate_limit::RateLimit,
    pub paths: crate::path_budget::PathBudget,
    carry_loading: tokio::sync::Mutex<()>,
}

impl Ingest {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        config: &Config,
        countries: CountryDb,
        visitors: Visitors,
        clock: Arc<dyn Clock>,
        metrics: Arc<Metrics>,
        queue: Queue,
        client: clickhouse::Client,
    ) -> Self {
        Self {
            sites: config.sites.clone(),
            query_allowlist: config.privacy.query_allowlist.clone(),
            honor_dnt: config.privacy.honor_dnt,
            honor_gpc: config.privacy.honor_gpc,
            aggregate_only: config.privacy.aggregate_only,
            max_event_name_chars: config.ingest.max_event_name_chars,
            proxies: config.server.trusted_proxies.clone(),
            classifier: Classifier::new(),
            countries,
            visitors,
            clock,
            metrics,
            queue,
            client,
            carry_loading: tokio::sync::Mutex::new(()),
            rate_limit: crate::rate_limit::RateLimit::new(config.ingest.rate_limit_per_minute),
            paths: crate::path_budget::PathBudget::new(config.ingest.max_new_paths_per_hour),
        }
    }

    /// Whether beacons can be taken without loss (see `writer::Queue::accepting`).
    pub fn accepting(&self) -> bool {
        self.queue.accepting()
    }

    /// The request carries a do-not-track signal that the config honours.
    fn not_tracked(&self, headers: &hyper::HeaderMap) -> bool {
        // Names as constants: a lookup by `&str` parses the name on every request.
        const DNT: HeaderName = HeaderName::from_static("dnt");
        const GPC: HeaderName = HeaderName::from_static("sec-gpc");
        let set = |name: &HeaderName| {
            headers
                .get(name)
                .is_some_and(|v| v.as_bytes().trim_ascii() == b"1")
        };
        (self.honor_dnt && set(&DNT)) || (self.honor_gpc && set(&GPC))
    }

    /// How old today's salt is (never the salt itself), for the privacy report.
    pub fn salt_age(&self, now: Timestamp) -> Option<jiff::SignedDuration> {
        self.visitors.book.current_age(now)
    }

    /// `database_type` of the loaded country database, for the privacy report.
    pub fn country_database_type(&self) -> Option<String> {
        self.countries
            .is_loaded()
            .then(|| self.countries.database_type.clone())
    }

    /// The site whose host list contains `host`.
    pub fn site_for_host(&self, host: &str) -> Option<&SiteConfig> {
        self.sites
            .iter()
            .find(|s| s.hosts.iter().any(|h| h.eq_ignore_ascii_case(host)))
    }

    /// Handles one beacon body. Errors are reasons for a 4xx (or 503 when the queue is full).
    pub async fn accept(&self, body: &[u8], meta: RequestMeta<'_>) -> Result<Outcome, Rejection> {
        // Checked before the body is even parsed: nothing of such a request is looked at.
        if self.not_tracked(meta.headers) {
            self.metrics.not_tracked.inc();
            return Ok(Outcome::NotTracked);
        }
        let user_agent = meta
            .headers
            .get(hyper::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let ip = self.proxies.client_ip(meta.peer, meta.headers);
        let now = self.clock.now();
        // Before any parsing: a flood costs a hash and a map lookup per beacon.
        if !self.rate_limit.allow(ip, user_agent, now) {
            return Err(Rejection::RateLimited);
        }
        let beacon = Beacon::parse(body)?;
        let name = beacon.name.as_deref().map(str::trim).unwrap_or("");
        let url = beacon.url.as_deref().map(str::trim).unwrap_or("");
        if name.is_empty() || url.is_empty() {
            return Err(Rejection::MissingField);
        }
        let page = reduce_page(url, &self.query_allowlist, beacon.hash_mode())?;

        // The site: Plausible's `domain` (comma-separated for several sites), else the page host.
        let mut sites: Vec<&SiteConfig> = match beacon.domain.as_deref().map(str::trim) {
            Some(d) if !d.is_empty() => d
                .split(',')
                .filter_map(|d| self.site_for_host(d.trim()))
                .collect(),
            _ => self.site_for_host(&page.host).into_iter().collect(),
        };
        if sites.is_empty() {
            return Err(Rejection::UnknownSite);
        }
        if crate::exclusions::drop_excluded(&mut sites, url, &self.metrics) {
            return Ok(Outcome::Excluded);
        }

        let classes = match self.classifier.inspect(user_agent, meta.headers) {
            Ok(classes) => classes,
            Err(reason) => {
                let reason = reason.label();
                self.metrics.bots.get_or_create(&Reason { reason }).inc();
                return Ok(Outcome::Bot);
            }
        };

        let engaged_ms = bounded(beacon.engaged_ms, MAX_ENGAGED_MS)?.unwrap_or(0.0) as u32;
        let scroll_depth = bounded(beacon.scroll_depth, 100.0)?.unwrap_or(0.0) as u8;
        let screen = screen_class(bounded(beacon.screen_width, 100_000.0)?);
        let props = beacon.props_pairs()?;
        let kind = beacon.kind();
        let mut name = name.to_string();
        truncate_chars(&mut name, self.max_event_name_chars);

        if !self.aggregate_only {
            self.ensure_carry(now).await;
        }
        let country = self
            .countries
            .country(ip)
            .map(|c| String::from_utf8_lossy(&c).into_owned())
            .unwrap_or_default();
        let ts = u32::try_from(now.as_second()).unwrap_or(0);
        let micros = u32::try_from(now.subsec_microsecond()).unwrap_or(0);
        let query = page.query_string();

        if self.queue.capacity() < sites.len() {
            return Err(Rejection::Overloaded);
        }
        for site in &sites {
            let visitor = if self.aggregate_only {
                // No hash at all: only whether the pageview came from outside the site.
                let internal =
                    crate::page_url::referrer_is_internal(beacon.referrer.as_deref(), &site.hosts);
                if internal {
                    0
                } else {
                    crate::aggregate::ENTRY
                }
            } else {
                // No salt means storage was never reached and no local salt could be made.
                self.visitors
                    .id(&site.domain, ip, user_agent, now)
                    .ok_or(Rejection::Overloaded)?
            };
            let (mut props_keys, mut props_values) = props
                .iter()
                .filter(|(k, _)| kind == Kind::Custom && site.props_allowlist.contains(k))
                .map(|(k, v)| {
                    let mut v = v.clone();
                    truncate_chars(&mut v, MAX_PROP_VALUE_CHARS);
                    (k.clone(), v)
                })
                .unzip();
            crate::builtin_events::add_props(
                &name,
                &props,
                site,
                &self.query_allowlist,
                &mut props_keys,
                &mut props_values,
            );
            let referrer_host =
                reduce_referrer(beacon.referrer.as_deref(), &site.hosts).unwrap_or_default();
            let row = EventRow {
                site: site.domain.clone(),
                ts,
                micros,
                visitor,
                name: name.clone(),
                host: page.host.clone(),
                path: {
                    let path = site.rules.apply(&page.path);
                    if self.paths.admit(&site.domain, &path, now) {
                        path.into_owned()
                    } else {
                        self.metrics.paths_capped.inc();
                        crate::path_budget::OTHER.to_string()
                    }
                },
                query: query.clone(),
                utm_source: page.param("utm_source").to_string(),
                utm_medium: page.param("utm_medium").to_string(),
                utm_campaign: page.param("utm_campaign").to_string(),
                utm_content: page.param("utm_content").to_string(),
                utm_term: page.param("utm_term").to_string(),
                source: crate::source::source(
                    crate::source::tag(crate::source::TAG_PARAMS.map(|p| page.param(p))),
                    &referrer_host,
                ),
                referrer_host: referrer_host.clone(),
                country: country.clone(),
                device: classes.device.into(),
                browser: classes.browser.clone(),
                os: classes.os.clone(),
                screen: screen.into(),
                engaged_ms: if kind == Kind::Engagement {
                    engaged_ms
                } else {
                    0
                },
                scroll_depth,
                interactive: u8::from(beacon.interactive != Some(false)),
                props_keys,
                props_values,
                event_id: rand::random(),
            };
            self.queue.push(row)?;
            self.metrics.events_accepted.inc();
        }
        Ok(Outcome::Stored(sites.len()))
    }

    /// Within the grace after midnight, makes sure the set of visitors seen just before it is
    /// loaded from storage (once per midnight; concurrent beacons wait for the one load).
    async fn ensure_carry(&self, now: Timestamp) {
        let Some(midnight) = self.visitors.carry_needed(now) else {
            return;
        };
        let _guard = self.carry_loading.lock().await;
        if self.visitors.carry_needed(now).is_none() {
            return;
        }
        self.refresh_carry(midnight).await;
    }

    /// Reloads the carry set for `midnight` from ClickHouse. On failure the set stays as it
    /// is, so visits across midnight may split; that is logged, nothing else is affected.
    pub async fn refresh_carry(&self, midnight: Timestamp) {
        let since = midnight.as_second() - self.visitors.book.grace().as_secs() as i64;
        match crate::storage::recently_seen(&self.client, since).await {
            Ok(seen) => self.visitors.load_carry(midnight, seen),
            Err(e) => {
                tracing::warn!(error = %e, "could not load visitors seen before midnight");
                self.visitors.load_carry(midnight, std::iter::empty());
            }
        }
    }
}
