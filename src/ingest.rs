//! Ingest: one beacon plus its request metadata in, zero or more anonymous event rows out.
//!
//! This is where identifiers die. The client IP and the user agent are read here, turned into a
//! visitor hash, a country and coarse classes, and not passed on; the page URL and referrer are
//! reduced (`page_url`) before anything is queued. Nothing here logs request data.

use std::borrow::Cow;
use std::collections::HashMap;
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
use crate::fast_hash::ConfigText;
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
    /// Each site's domain as its rows share it (same order as `sites`).
    site_names: Vec<Arc<str>>,
    /// Every configured host in lower case → the first site naming it, and the host as rows
    /// share it.
    hosts: HashMap<String, (usize, Arc<str>), ConfigText>,
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
    /// For loading the cross-midnight carry set (from every shard).
    cluster: Arc<crate::cluster::Cluster>,
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
        cluster: Arc<crate::cluster::Cluster>,
    ) -> Self {
        let mut hosts = HashMap::default();
        for (i, site) in config.sites.iter().enumerate() {
            for host in &site.hosts {
                let host = host.to_ascii_lowercase();
                hosts
                    .entry(host.clone())
                    .or_insert_with(|| (i, Arc::from(host)));
            }
        }
        Self {
            sites: config.sites.clone(),
            site_names: config
                .sites
                .iter()
                .map(|s| Arc::from(s.domain.as_str()))
                .collect(),
            hosts,
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
            cluster,
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

    /// The site whose host list contains `host` (ASCII case ignored; the first such site).
    pub fn site_for_host(&self, host: &str) -> Option<&SiteConfig> {
        self.site_index(host).map(|i| &self.sites[i])
    }

    fn site_index(&self, host: &str) -> Option<usize> {
        self.host_entry(host).map(|(site, _)| *site)
    }

    /// A configured host's site and its shared text, whatever the host's case.
    fn host_entry(&self, host: &str) -> Option<&(usize, Arc<str>)> {
        let host = if host.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(host.to_ascii_lowercase())
        } else {
            Cow::Borrowed(host)
        };
        self.hosts.get(host.as_ref())
    }

    /// Handles one beacon body. Errors are reasons for a 4xx (or 503 when the queue is full).
    pub async fn accept(&self, body: &[u8], meta: RequestMeta<'_>) -> Result<Outcome, Rejection> {
        // Checked before the body is even parsed: nothing of such a request is looked at.
        if self.not_tracked(meta.headers) {
            self.metrics.not_tracked.inc();
            return Ok(Outcome::NotTracked);
        }
        let now = self.clock.now();
        // The one wait in ingest, and a rare one: within the grace after midnight, the set of
        // visitors seen before it is loaded once before the first hash. Boxed and done first, so
        // that the future of every other beacon holds nothing across an await (hyper moves it
        // several times per request: its size is copied each time).
        if !self.aggregate_only && self.visitors.carry_needed(now).is_some() {
            Box::pin(self.ensure_carry(now)).await;
        }
        self.accept_at(body, meta, now)
    }

    /// The rest of [`Ingest::accept`], at `now`; never waits.
    fn accept_at(
        &self,
        body: &[u8],
        meta: RequestMeta<'_>,
        now: Timestamp,
    ) -> Result<Outcome, Rejection> {
        let user_agent = meta
            .headers
            .get(hyper::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let ip = self.proxies.client_ip(meta.peer, meta.headers);
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
        let mut page = reduce_page(url, &self.query_allowlist, beacon.hash_mode())?;

        // The site: Plausible's `domain` (comma-separated for several sites), else the page host.
        // One site (nearly every beacon) needs no list.
        let several: Vec<usize>;
        let one: [usize; 1];
        // The page host's shared text when the one lookup below was of that very host (the
        // tracker's `domain` is the page's host nearly always): no second lookup for the row.
        let mut page_host: Option<&Arc<str>> = None;
        let sites: &[usize] = match beacon.domain.as_deref().map(str::trim) {
            Some(d) if d.contains(',') => {
                several = d
                    .split(',')
                    .filter_map(|d| self.site_index(d.trim()))
                    .collect();
                &several
            }
            Some(d) if !d.is_empty() => match self.host_entry(d) {
                Some((i, shared)) => {
                    if d == page.host {
                        page_host = Some(shared);
                    }
                    one = [*i];
                    &one
                }
                None => &[],
            },
            _ => match self.host_entry(&page.host) {
                Some((i, shared)) => {
                    page_host = Some(shared);
                    one = [*i];
                    &one
                }
                None => &[],
            },
        };
        if sites.is_empty() {
            return Err(Rejection::UnknownSite);
        }
        let kept: Vec<usize>;
        let sites: &[usize] =
            match crate::exclusions::not_excluded(&self.sites, sites, url, &self.metrics) {
                None => sites,
                Some(rest) if rest.is_empty() => return Ok(Outcome::Excluded),
                Some(rest) => {
                    kept = rest;
                    &kept
                }
            };

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
        let name = event_name(name, self.max_event_name_chars);

        // The closed sets as shared or static text: no copy per row.
        let country = self.countries.country(ip);
        let host = match page_host.or_else(|| self.hosts.get(page.host.as_str()).map(|(_, h)| h)) {
            Some(shared) => Arc::clone(shared),
            None => Arc::from(page.host.as_str()),
        };
        let ts = u32::try_from(now.as_second()).unwrap_or(0);
        let micros = u32::try_from(now.subsec_microsecond()).unwrap_or(0);
        let query = page.query_string();

        // All or nothing for a beacon of several sites; one row needs no look ahead: its push
        // refuses it when the queue is full (one lock of the queue per beacon, not two).
        if sites.len() > 1 && self.queue.capacity() < sites.len() {
            return Err(Rejection::Overloaded);
        }
        for (n, &index) in sites.iter().enumerate() {
            // The last (usually the only) row takes what the others copy.
            let last = n + 1 == sites.len();
            let site = &self.sites[index];
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
                // Pageviews keep theirs too (Plausible's pageview props: `event-KEY`
                // attributes, a manual pageview's props); an engagement never becomes a unit
                // row, and aggregate-only mode counts no props, so theirs would be kept (in
                // the spool, say) for nothing.
                .filter(|(k, _)| {
                    !self.aggregate_only
                        && kind != Kind::Engagement
                        && site.props_allowlist.contains(k)
                })
                .map(|(k, v)| {
                    // Scrubbed like an allow-listed query value (an e-mail address typed into
                    // a search box a site reports as a prop), then cut: cutting first could
                    // leave a piece the detectors no longer recognise.
                    let mut v = crate::scrub::scrub_value(v).into_owned();
                    truncate_chars(&mut v, MAX_PROP_VALUE_CHARS);
                    (k.clone(), v)
                })
                .unzip();
            if !self.aggregate_only {
                crate::builtin_events::add_props(
                    &name,
                    &props,
                    site,
                    &self.query_allowlist,
                    &mut props_keys,
                    &mut props_values,
                );
            }
            let referrer_host =
                reduce_referrer(beacon.referrer.as_deref(), &site.hosts).unwrap_or_default();
            let path = {
                let path = site.rules.apply(&page.path);
                if self.paths.admit(&site.domain, &path, now) {
                    match path {
                        Cow::Owned(rewritten) => rewritten,
                        // Unchanged (a borrow of all of it): the last row takes the page's own.
                        Cow::Borrowed(same) if last && same.len() == page.path.len() => {
                            std::mem::take(&mut page.path)
                        }
                        Cow::Borrowed(same) => same.to_string(),
                    }
                } else {
                    self.metrics.paths_capped.inc();
                    crate::path_budget::OTHER.to_string()
                }
            };
            let row = EventRow {
                site: Arc::clone(&self.site_names[index]),
                ts,
                micros,
                visitor,
                name: name.clone(),
                host: Arc::clone(&host),
                path,
                query: query.clone(),
                source: crate::source::source(
                    crate::source::tag(crate::source::TAG_PARAMS.map(|p| page.param(p))),
                    &referrer_host,
                ),
                utm_source: page.param_owned("utm_source", last),
                utm_medium: page.param_owned("utm_medium", last),
                utm_campaign: page.param_owned("utm_campaign", last),
                utm_content: page.param_owned("utm_content", last),
                utm_term: page.param_owned("utm_term", last),
                referrer_host,
                country: Cow::Borrowed(country),
                device: Cow::Borrowed(classes.device),
                browser: Arc::clone(&classes.browser),
                os: Arc::clone(&classes.os),
                screen: Cow::Borrowed(screen),
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
        match crate::storage::recently_seen(&self.cluster, since).await {
            Ok(seen) => self.visitors.load_carry(midnight, seen),
            Err(e) => {
                tracing::warn!(error = %e, "could not load visitors seen before midnight");
                self.visitors.load_carry(midnight, std::iter::empty());
            }
        }
    }
}

/// The stored event name: the beacon's, cut to `max` characters; the two kinds tally sends
/// itself are static text.
fn event_name(name: &str, max: usize) -> Cow<'static, str> {
    let cut = match name.char_indices().nth(max) {
        Some((end, _)) => &name[..end],
        None => name,
    };
    match cut {
        "pageview" => Cow::Borrowed("pageview"),
        "engagement" => Cow::Borrowed("engagement"),
        _ => Cow::Owned(cut.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_names_are_cut_then_shared_when_they_are_the_built_in_kinds() {
        assert!(matches!(
            event_name("pageview", 120),
            Cow::Borrowed("pageview")
        ));
        assert!(matches!(
            event_name("engagement", 10),
            Cow::Borrowed("engagement")
        ));
        // Cut first, as the stored value always was: a cut name is not the kind.
        assert_eq!(event_name("engagement", 6), "engage");
        assert_eq!(event_name("pageviews", 8), "pageview");
        assert_eq!(event_name("Signup", 120), "Signup");
        assert_eq!(event_name("ééé", 2), "éé");
        assert_eq!(event_name("", 5), "");
    }
}
