//! Realistic beacon traffic: whole HTTP/1.1 requests, built once from the real corpora and a seed.
//!
//! A pool of requests is made up front (so the load generator spends its CPU on sending, not on
//! building) as a sequence of visits: a visitor (real browser user agent from `user-agents.json`
//! or `top-user-agents.json`, an address spread over the allocated IPv4 and IPv6 space, sent as
//! `X-Forwarded-For`) views one to several pages of one of several sites, with an engagement
//! beacon after some of them; the first page of a visit has an external referrer or none, the
//! next ones the site itself. A share of visits are bots (`crawler-user-agents.json`) sending one
//! pageview. Page URLs come from templates: plain paths, paths with ids that the scrubber
//! replaces, query strings that are dropped, and `utm_` parameters that are kept. Same seed, same
//! pool, byte for byte.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;

use anyhow::{bail, Context};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{RngExt, SeedableRng};
use serde::Deserialize;

/// The sites of the benchmark, with their share of the traffic (percent).
pub const SITES: &[(&str, u32)] = &[
    ("www.gemeente-noord.example", 40),
    ("www.provincie-west.example", 25),
    ("werkenbij.example", 15),
    ("www.museum-oost.example", 12),
    ("docs.dienst-zuid.example", 8),
];

/// How the pool is made.
#[derive(Debug, Clone)]
pub struct TrafficConfig {
    pub seed: u64,
    /// Requests in the pool; the generator cycles through it.
    pub pool: usize,
    /// Share of visits that are bots (0–1).
    pub bot_share: f64,
    /// Chance of an engagement beacon after a pageview (0.25 gives ~80 % pageviews).
    pub engagement_share: f64,
    /// The `Host` header (the server's address).
    pub host: String,
}

/// One ready-to-send request and what it is, for the generator's own counts.
pub struct Request {
    pub bytes: Vec<u8>,
    pub bot: bool,
    pub engagement: bool,
}

/// What the pool holds, for the report.
#[derive(Debug, Default, serde::Serialize)]
pub struct PoolStats {
    pub requests: usize,
    pub pageviews: usize,
    pub engagements: usize,
    pub bots: usize,
    pub with_query: usize,
    pub with_utm: usize,
    pub ipv6: usize,
    pub distinct_user_agents: usize,
    pub mean_request_bytes: usize,
}

#[derive(Deserialize)]
struct UserAgentRow {
    #[serde(rename = "userAgent")]
    user_agent: String,
    #[serde(rename = "deviceCategory")]
    device_category: String,
}

#[derive(Deserialize)]
struct Crawler {
    #[serde(default)]
    instances: Vec<String>,
}

/// The user-agent corpora, as `scripts/testdata.sh` fetches them.
pub struct Corpora {
    /// (user agent, device category) of real browsers.
    browsers: Vec<(String, String)>,
    /// The top 100 browser user agents (most traffic comes from few agents).
    top: Vec<String>,
    bots: Vec<String>,
}

impl Corpora {
    pub fn load(dir: &Path) -> anyhow::Result<Self> {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read(&path)
                .with_context(|| format!("{} (fetch it with scripts/testdata.sh)", path.display()))
        };
        let rows: Vec<UserAgentRow> = serde_json::from_slice(&read("user-agents.json")?)?;
        let top: Vec<String> = serde_json::from_slice(&read("top-user-agents.json")?)?;
        let crawlers: Vec<Crawler> = serde_json::from_slice(&read("crawler-user-agents.json")?)?;
        let browsers: Vec<(String, String)> = rows
            .into_iter()
            .filter(|r| header_safe(&r.user_agent))
            .map(|r| (r.user_agent, r.device_category))
            .collect();
        let top: Vec<String> = top.into_iter().filter(|u| header_safe(u)).collect();
        let bots: Vec<String> = crawlers
            .into_iter()
            .flat_map(|c| c.instances)
            .filter(|u| header_safe(u))
            .collect();
        if browsers.is_empty() || top.is_empty() || bots.is_empty() {
            bail!("a user-agent corpus in {} is empty", dir.display());
        }
        Ok(Self {
            browsers,
            top,
            bots,
        })
    }
}

/// Printable ASCII only: what a header value may carry without escaping.
fn header_safe(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| (0x20..0x7f).contains(&b))
}

const WORDS: &[&str] = &[
    "afval",
    "parkeren",
    "paspoort",
    "verhuizen",
    "subsidie",
    "vergunning",
    "nieuws",
    "agenda",
    "werken",
    "vacature",
    "collectie",
    "tentoonstelling",
    "openingstijden",
    "tarieven",
    "zorg",
    "onderwijs",
    "wonen",
    "belasting",
    "melding",
    "klacht",
    "evenementen",
    "bestemmingsplan",
    "rijbewijs",
    "toeslagen",
    "energie",
    "duurzaamheid",
    "fiets",
    "bibliotheek",
    "sport",
    "api",
    "handleiding",
    "installatie",
    "overzicht",
    "contact",
    "over-ons",
    "raad",
    "verkiezingen",
];

const REFERRERS: &[(&str, u32)] = &[
    ("https://www.google.com/", 30),
    ("https://www.google.nl/", 10),
    ("https://www.bing.com/", 5),
    ("https://duckduckgo.com/", 3),
    ("https://www.ecosia.org/", 2),
    ("https://l.facebook.com/", 3),
    ("https://www.linkedin.com/", 2),
    ("https://t.co/", 1),
    ("https://nieuws.regio.example/artikel/12", 4),
];

/// A page URL of `site` (without scheme and host), and whether it has a query string / utm.
fn page_path(rng: &mut StdRng) -> (String, bool, bool) {
    let w = |rng: &mut StdRng| *WORDS.choose(rng).expect("words");
    let mut path = match rng.random_range(0..100) {
        0..10 => "/".to_string(),
        10..40 => format!("/{}", w(rng)),
        40..65 => format!("/{}/{}", w(rng), w(rng)),
        65..75 => format!(
            "/nieuws/2026/{:02}/{}-{}",
            rng.random_range(1..12),
            w(rng),
            w(rng)
        ),
        // Case and order numbers: the scrubber turns these into `:number`.
        75..83 => format!("/zaken/{}", rng.random_range(100_000..9_999_999)),
        83..88 => format!("/{}/{}/{}", w(rng), w(rng), rng.random_range(1..400)),
        _ => format!("/{}/{}-{}", w(rng), w(rng), w(rng)),
    };
    let mut query = false;
    let mut utm = false;
    match rng.random_range(0..100) {
        // Search and paging parameters: dropped by tally (not on the allow-list).
        0..12 => {
            query = true;
            write!(
                path,
                "?q={}+{}&page={}",
                w(rng),
                w(rng),
                rng.random_range(1..9)
            )
            .ok();
        }
        12..18 => {
            query = true;
            write!(path, "?page={}", rng.random_range(2..20)).ok();
        }
        // Campaign links: kept.
        18..26 => {
            query = true;
            utm = true;
            write!(
                path,
                "?utm_source=nieuwsbrief&utm_medium=email&utm_campaign={}-2026",
                w(rng)
            )
            .ok();
        }
        26..28 => {
            query = true;
            utm = true;
            write!(
                path,
                "?utm_source=linkedin&utm_medium=social&fbclid=IwAR{}",
                rng.random::<u64>()
            )
            .ok();
        }
        _ => {}
    }
    (path, query, utm)
}

/// An address from allocated, public space: no private, loopback, link-local, CGNAT, multicast
/// or reserved IPv4; IPv6 from the regional registries' large blocks.
fn client_address(rng: &mut StdRng, ipv6: bool) -> String {
    if ipv6 {
        let prefix: u16 = *[0x2001u16, 0x2400, 0x2600, 0x2800, 0x2a00, 0x2a02, 0x2c0f]
            .choose(rng)
            .expect("prefixes");
        let mut seg = [0u16; 8];
        seg[0] = prefix;
        seg[1] = if prefix == 0x2001 {
            // 2001::/16 holds special blocks at the start (Teredo, documentation 2001:db8).
            rng.random_range(0x0400..0x0fff)
        } else {
            rng.random()
        };
        for s in &mut seg[2..] {
            *s = rng.random();
        }
        return Ipv6Addr::from(seg).to_string();
    }
    loop {
        let ip = Ipv4Addr::from(rng.random::<u32>());
        let [a, b, ..] = ip.octets();
        let reserved = a == 0
            || a == 10
            || a == 127
            || a >= 224
            || (a == 100 && (64..128).contains(&b))
            || (a == 169 && b == 254)
            || (a == 172 && (16..32).contains(&b))
            || (a == 192 && b == 168)
            || (a == 198 && (18..20).contains(&b));
        if !reserved {
            return ip.to_string();
        }
    }
}

fn weighted<'a, T>(rng: &mut StdRng, items: &'a [(T, u32)]) -> &'a T {
    let total: u32 = items.iter().map(|(_, w)| w).sum();
    let mut pick = rng.random_range(0..total);
    for (item, w) in items {
        if pick < *w {
            return item;
        }
        pick -= w;
    }
    &items[items.len() - 1].0
}

fn json_string(s: &str) -> String {
    serde_json::to_string(s).expect("a string serializes")
}

struct Visitor {
    ip: String,
    user_agent: String,
    width: u32,
    bot: bool,
}

fn request(host: &str, site: &str, v: &Visitor, body: &str) -> Vec<u8> {
    let mut r = String::with_capacity(600 + body.len());
    // What Chromium sends for navigator.sendBeacon from a page of another origin.
    write!(
        r,
        "POST /api/event HTTP/1.1\r\nHost: {host}\r\nContent-Length: {}\r\n\
         Content-Type: text/plain;charset=UTF-8\r\nUser-Agent: {}\r\nAccept: */*\r\n\
         Origin: https://{site}\r\nReferer: https://{site}/\r\n\
         Sec-Fetch-Site: cross-site\r\nSec-Fetch-Mode: no-cors\r\nSec-Fetch-Dest: empty\r\n\
         Accept-Encoding: gzip, deflate, br, zstd\r\nAccept-Language: nl-NL,nl;q=0.9,en-US;q=0.8,en;q=0.7\r\n\
         X-Forwarded-For: {}\r\n\r\n{body}",
        body.len(),
        v.user_agent,
        v.ip
    )
    .expect("writing to a String");
    r.into_bytes()
}

/// Builds the pool.
pub fn pool(corpora: &Corpora, cfg: &TrafficConfig) -> (Vec<Request>, PoolStats) {
    let mut rng = StdRng::seed_from_u64(cfg.seed);
    let mut out = Vec::with_capacity(cfg.pool);
    let mut stats = PoolStats::default();
    let mut agents = std::collections::HashSet::new();
    while out.len() < cfg.pool {
        let bot = rng.random_bool(cfg.bot_share);
        let ipv6 = rng.random_bool(0.2);
        let visitor = if bot {
            Visitor {
                ip: client_address(&mut rng, ipv6),
                user_agent: corpora.bots.choose(&mut rng).expect("bots").clone(),
                width: 1024,
                bot: true,
            }
        } else {
            let (ua, device) = if rng.random_bool(0.5) {
                let ua = corpora.top.choose(&mut rng).expect("top");
                let device = if ua.contains("Mobile") {
                    "mobile"
                } else {
                    "desktop"
                };
                (ua.clone(), device.to_string())
            } else {
                corpora.browsers.choose(&mut rng).expect("browsers").clone()
            };
            let width = match device.as_str() {
                "mobile" => *[360u32, 390, 393, 412, 430].choose(&mut rng).expect("w"),
                "tablet" => *[768u32, 810, 820, 1024].choose(&mut rng).expect("w"),
                _ => *[1280u32, 1366, 1440, 1536, 1920, 2560]
                    .choose(&mut rng)
                    .expect("w"),
            };
            Visitor {
                ip: client_address(&mut rng, ipv6),
                user_agent: ua,
                width,
                bot: false,
            }
        };
        agents.insert(visitor.user_agent.clone());
        let site = *weighted(&mut rng, SITES);
        // Bots load one page; people 1–6 pages, half of the visits one.
        let pages = if bot {
            1
        } else {
            let mut n = 1;
            while n < 6 && rng.random_bool(0.5) {
                n += 1;
            }
            n
        };
        let mut referrer = if rng.random_bool(0.4) {
            None
        } else {
            Some(weighted(&mut rng, REFERRERS).to_string())
        };
        for _ in 0..pages {
            if out.len() >= cfg.pool {
                break;
            }
            let (path, query, utm) = page_path(&mut rng);
            let url = format!("https://{site}{path}");
            let r = referrer.as_deref().map_or("null".to_string(), json_string);
            let body = format!(
                r#"{{"n":"pageview","u":{},"d":"{site}","r":{r},"w":{}}}"#,
                json_string(&url),
                visitor.width
            );
            out.push(Request {
                bytes: request(&cfg.host, site, &visitor, &body),
                bot: visitor.bot,
                engagement: false,
            });
            stats.pageviews += 1;
            stats.with_query += usize::from(query);
            stats.with_utm += usize::from(utm);
            stats.ipv6 += usize::from(ipv6);
            stats.bots += usize::from(bot);
            if !bot && out.len() < cfg.pool && rng.random_bool(cfg.engagement_share) {
                let body = format!(
                    r#"{{"n":"engagement","u":{},"d":"{site}","e":{},"sd":{}}}"#,
                    json_string(&url),
                    rng.random_range(300..240_000),
                    rng.random_range(5..=100)
                );
                out.push(Request {
                    bytes: request(&cfg.host, site, &visitor, &body),
                    bot: false,
                    engagement: true,
                });
                stats.engagements += 1;
                stats.with_query += usize::from(query);
                stats.with_utm += usize::from(utm);
                stats.ipv6 += usize::from(ipv6);
            }
            referrer = Some(format!(
                "https://{site}{}",
                path.split('?').next().unwrap_or("/")
            ));
        }
    }
    stats.requests = out.len();
    stats.distinct_user_agents = agents.len();
    stats.mean_request_bytes = out.iter().map(|r| r.bytes.len()).sum::<usize>() / out.len().max(1);
    (out, stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corpora() -> Corpora {
        Corpora {
            browsers: vec![("Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0".into(), "desktop".into())],
            top: vec!["Mozilla/5.0 (iPhone; CPU iPhone OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1".into()],
            bots: vec!["Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)".into()],
        }
    }

    fn cfg(seed: u64) -> TrafficConfig {
        TrafficConfig {
            seed,
            pool: 2000,
            bot_share: 0.05,
            engagement_share: 0.25,
            host: "127.0.0.1:1".into(),
        }
    }

    #[test]
    fn same_seed_same_pool_and_the_mix_asked_for() {
        let (a, stats) = pool(&corpora(), &cfg(7));
        let (b, _) = pool(&corpora(), &cfg(7));
        let (c, _) = pool(&corpora(), &cfg(8));
        assert_eq!(a.len(), 2000);
        assert!(a.iter().zip(&b).all(|(x, y)| x.bytes == y.bytes));
        assert!(a.iter().zip(&c).any(|(x, y)| x.bytes != y.bytes));
        let engaged = stats.engagements as f64 / stats.requests as f64;
        assert!((0.12..0.28).contains(&engaged), "{engaged}");
        assert!(stats.bots > 0 && stats.with_utm > 0 && stats.with_query > stats.with_utm);
        assert!(stats.ipv6 > 0);
    }

    #[test]
    fn requests_are_complete_http_with_json_bodies() {
        let (p, _) = pool(&corpora(), &cfg(1));
        for r in p.iter().take(200) {
            let text = std::str::from_utf8(&r.bytes).unwrap();
            let (head, body) = text.split_once("\r\n\r\n").unwrap();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .unwrap()
                .parse()
                .unwrap();
            assert_eq!(len, body.len());
            let v: serde_json::Value = serde_json::from_str(body).unwrap();
            assert!(v["u"].as_str().unwrap().starts_with("https://"));
            let name = v["n"].as_str().unwrap();
            assert_eq!(name == "engagement", r.engagement);
            assert!(head.contains("X-Forwarded-For: "));
        }
    }

    #[test]
    fn addresses_avoid_private_space() {
        let mut rng = StdRng::seed_from_u64(3);
        for _ in 0..10_000 {
            let ip: std::net::IpAddr = client_address(&mut rng, false).parse().unwrap();
            let std::net::IpAddr::V4(v4) = ip else {
                panic!()
            };
            assert!(
                !v4.is_private() && !v4.is_loopback() && !v4.is_multicast() && !v4.is_link_local()
            );
        }
    }
}
