//! The dashboard's doors, against the real binary over real HTTP: no data without a login or a
//! share link, wrong passwords and the per-name throttle, session expiry, CSRF refusals, cookie
//! attributes, user and share-link scope, and that the numbers shown are the stats API's.
//! (What the pages look like and do in a browser: `tests/browser/dashboard.test.js`.)

use std::time::Duration;

use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use reqwest::redirect::Policy;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::reports::{config, load_events, post_query};
use crate::support::*;

pub const ALICE_PASSWORD: &str = "correct horse battery staple";
const BOB_PASSWORD: &str = "bob's long passphrase";
const SHARE_SECRET: &str = "share-secret-for-a-example-0123456789";
/// A custom period over the fixture's days (the reports fixture lies in March 2026).
const FIXTURE_VIEW: &str = "period=custom&from=2026-03-26&to=2026-03-31";

/// The config lines for a user, made by the real `tally hash-password` command.
pub fn user_lines(name: &str, password: &str) -> String {
    let out = tally_command_with_input(&["hash-password", name], password);
    assert!(
        out.status.success(),
        "hash-password: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains(password), "the password is not printed back");
    let lines = text
        .split_once("add to the config:\n")
        .expect("hash-password prints config lines")
        .1
        .to_string();
    assert!(lines.contains("password_hash = \"$argon2id$"), "{lines}");
    lines
}

/// alice sees every site, bob only b.example; a.example has a share link.
pub fn dashboard_config(extra: &str) -> String {
    format!(
        "{}\n[dashboard]\n{extra}\n{}\n{}sites = [\"b.example\"]\n\n[[dashboard.share_links]]\nsite = \"a.example\"\nsha256 = \"{}\"\nname = \"press\"\n",
        config(),
        user_lines("alice", ALICE_PASSWORD),
        user_lines("bob", BOB_PASSWORD).replace("# sites = [\"www.example.org\"]  # default: all sites\n", ""),
        hex::encode(Sha256::digest(SHARE_SECRET.as_bytes())),
    )
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
}

fn set_cookies(h: &HeaderMap) -> Vec<String> {
    h.get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect()
}

/// The value of cookie `name` among `Set-Cookie` headers.
fn cookie_value(cookies: &[String], name: &str) -> Option<String> {
    cookies.iter().find_map(|c| {
        c.split(';')
            .next()?
            .trim()
            .strip_prefix(&format!("{name}="))
            .map(str::to_string)
    })
}

pub fn hidden_field(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} field in:\n{html}"))
        + marker.len();
    html[start..][..html[start..].find('"').unwrap()].to_string()
}

/// A login form as a browser gets it: the CSRF nonce and its cookie.
async fn login_form(base: &str) -> (String, String) {
    let r = client().get(format!("{base}/login")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let nonce_cookie =
        cookie_value(&set_cookies(r.headers()), "tally_login").expect("nonce cookie");
    let html = r.text().await.unwrap();
    let field = hidden_field(&html, "csrf");
    assert_eq!(field, nonce_cookie, "double submit: form and cookie agree");
    (field, nonce_cookie)
}

pub struct Posted {
    pub status: u16,
    pub location: Option<String>,
    pub cookies: Vec<String>,
    pub body: String,
}

pub async fn post_form(
    base: &str,
    path: &str,
    cookie: Option<&str>,
    origin: Option<&str>,
    form: &[(&str, &str)],
) -> Posted {
    let mut req = client().post(format!("{base}{path}")).form(form);
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    if let Some(o) = origin {
        req = req.header("origin", o);
    }
    let r = req.send().await.unwrap();
    Posted {
        status: r.status().as_u16(),
        location: r
            .headers()
            .get(LOCATION)
            .map(|v| v.to_str().unwrap().to_string()),
        cookies: set_cookies(r.headers()),
        body: r.text().await.unwrap(),
    }
}

/// Logs in as a browser would; returns the session cookie (`tally_session=…`) and the
/// `Set-Cookie` line it came in.
pub async fn login(base: &str, name: &str, password: &str) -> (String, String) {
    let (csrf, nonce) = login_form(base).await;
    let p = post_form(
        base,
        "/login",
        Some(&format!("tally_login={nonce}")),
        Some(base),
        &[
            ("csrf", &csrf),
            ("name", name),
            ("password", password),
            ("next", "/dashboard/a.example?period=7d"),
        ],
    )
    .await;
    assert_eq!(p.status, 303, "login of {name}: {}", p.body);
    let line = p
        .cookies
        .iter()
        .find(|c| c.starts_with("tally_session="))
        .expect("a session cookie")
        .clone();
    let token = cookie_value(&p.cookies, "tally_session").unwrap();
    (format!("tally_session={token}"), line)
}

pub async fn get(base: &str, path: &str, cookie: Option<&str>) -> (u16, Option<String>, String) {
    let mut req = client().get(format!("{base}{path}"));
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let location = r
        .headers()
        .get(LOCATION)
        .map(|v| v.to_str().unwrap().to_string());
    (status, location, r.text().await.unwrap())
}

/// `data-value` of the headline number for `metric` in a dashboard page.
fn headline_value(html: &str, metric: &str) -> f64 {
    let marker = format!("data-metric=\"{metric}\"");
    let at = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {metric} headline in the page"));
    let rest = &html[at..];
    let v = rest.find("data-value=\"").unwrap() + "data-value=\"".len();
    rest[v..][..rest[v..].find('"').unwrap()].parse().unwrap()
}

#[tokio::test]
async fn no_data_without_a_login_or_a_share_link() {
    let setup = Setup::new("dash_noauth").with(&dashboard_config(""));
    let t = setup.start().await;
    load_events(&t.db).await;
    let base = &t.base;

    let (s, loc, _) = get(base, "/", None).await;
    assert_eq!((s, loc.as_deref()), (303, Some("/dashboard")));
    let (s, loc, _) = get(base, "/dashboard", None).await;
    assert_eq!((s, loc.as_deref()), (303, Some("/login")));
    let (s, loc, body) = get(base, &format!("/dashboard/a.example?{FIXTURE_VIEW}"), None).await;
    assert_eq!(s, 303);
    assert_eq!(
        loc.as_deref(),
        Some("/login?next=%2Fdashboard%2Fa.example%3Fperiod%3Dcustom%26from%3D2026-03-26%26to%3D2026-03-31")
    );
    assert!(body.is_empty());
    // The script's JSON endpoint too; and a forged or stale cookie is no login.
    let (s, _, body) = get(base, "/dashboard/a.example/realtime", None).await;
    assert_eq!(s, 401, "{body}");
    let forged = format!("tally_session={}", "ab".repeat(32));
    let (s, _, _) = get(
        base,
        &format!("/dashboard/a.example?{FIXTURE_VIEW}"),
        Some(&forged),
    )
    .await;
    assert_eq!(s, 303);
    // A share secret that is not configured, and the API without a token.
    let (s, _, body) = get(base, "/share/not-a-configured-secret", None).await;
    assert_eq!(s, 404);
    assert!(!body.contains("data-value"), "no numbers on the 404 page");
    let (s, _) = post_query(
        base,
        None,
        &json!({"site_id": "a.example", "metrics": ["visitors"], "date_range": "all"}),
    )
    .await;
    assert_eq!(s, 401);

    // The login page itself carries no numbers, and says nothing about the sites.
    let (s, _, body) = get(base, "/login", None).await;
    assert_eq!(s, 200);
    assert!(!body.contains("a.example") && !body.contains("data-value"));
    // Assets are public (no data in them) and cacheable under their version.
    let (s, _, css) = get(base, "/assets/dashboard.css", None).await;
    assert_eq!(s, 200);
    assert!(css.contains("--s1"));
}

#[tokio::test]
async fn wrong_password_throttle_and_the_cookie() {
    let setup = Setup::new("dash_login").with(&dashboard_config(""));
    let t = setup.start().await;
    load_events(&t.db).await;
    let base = &t.base;

    // Wrong password: 401, the form again, no session.
    let (csrf, nonce) = login_form(base).await;
    let p = post_form(
        base,
        "/login",
        Some(&format!("tally_login={nonce}")),
        Some(base),
        &[
            ("csrf", &csrf),
            ("name", "alice"),
            ("password", "Correct horse battery staple"),
        ],
    )
    .await;
    assert_eq!(p.status, 401);
    assert!(p.body.contains("Wrong name or password"));
    assert!(
        p.body.contains(r#"name="name" value="alice""#),
        "the name is kept"
    );
    assert!(!p.body.contains("Correct horse"), "the password is not");
    assert!(cookie_value(&p.cookies, "tally_session").is_none());
    // An unknown name gets the same answer.
    let p = post_form(
        base,
        "/login",
        Some(&format!("tally_login={nonce}")),
        Some(base),
        &[
            ("csrf", &csrf),
            ("name", "mallory"),
            ("password", ALICE_PASSWORD),
        ],
    )
    .await;
    assert_eq!(p.status, 401);
    assert!(p.body.contains("Wrong name or password"));

    // The right password: a session cookie with the promised attributes, and the way back to
    // where the user was going.
    let (csrf, nonce) = login_form(base).await;
    let p = post_form(
        base,
        "/login",
        Some(&format!("tally_login={nonce}")),
        Some(base),
        &[
            ("csrf", &csrf),
            ("name", "alice"),
            ("password", ALICE_PASSWORD),
            ("next", &format!("/dashboard/a.example?{FIXTURE_VIEW}")),
        ],
    )
    .await;
    assert_eq!(p.status, 303, "{}", p.body);
    assert_eq!(
        p.location.as_deref(),
        Some(&*format!("/dashboard/a.example?{FIXTURE_VIEW}"))
    );
    let line = p
        .cookies
        .iter()
        .find(|c| c.starts_with("tally_session="))
        .unwrap();
    let attrs: Vec<&str> = line.split(';').map(str::trim).collect();
    for a in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(attrs.contains(&a), "{a} in {line}");
    }
    assert!(!attrs.contains(&"Secure"), "plain http: no Secure ({line})");
    let token = cookie_value(&p.cookies, "tally_session").unwrap();
    assert_eq!(token.len(), 64, "256 random bits, hex");
    let session = format!("tally_session={token}");

    // Logged in: the page's numbers are the stats API's.
    let (s, _, html) = get(
        base,
        &format!("/dashboard/a.example?{FIXTURE_VIEW}"),
        Some(&session),
    )
    .await;
    assert_eq!(s, 200);
    let (_, api) = post_query(
        base,
        Some("fixture-token"),
        &json!({"site_id": "a.example", "metrics": ["visitors", "visits", "pageviews", "visit_duration_median", "bounce_rate"],
                "date_range": ["2026-03-26", "2026-03-31"]}),
    )
    .await;
    let api: Value = serde_json::from_str(&api).unwrap();
    let m = &api["results"][0]["metrics"];
    for (i, name) in [
        "visitors",
        "visits",
        "pageviews",
        "visit_duration_median",
        "bounce_rate",
    ]
    .iter()
    .enumerate()
    {
        assert_eq!(
            headline_value(&html, name),
            m[i].as_f64().unwrap(),
            "{name}: page vs API"
        );
    }
    assert!(
        m[0].as_f64().unwrap() > 0.0,
        "the fixture has visitors in the period"
    );

    // Five wrong passwords lock the name for a while, even for the right password; the other
    // user is not affected.
    for _ in 0..5 {
        let (csrf, nonce) = login_form(base).await;
        let p = post_form(
            base,
            "/login",
            Some(&format!("tally_login={nonce}")),
            Some(base),
            &[("csrf", &csrf), ("name", "alice"), ("password", "guess")],
        )
        .await;
        assert_eq!(p.status, 401);
    }
    let (csrf, nonce) = login_form(base).await;
    let r = client()
        .post(format!("{base}/login"))
        .header("cookie", format!("tally_login={nonce}"))
        .header("origin", base.as_str())
        .form(&[
            ("csrf", csrf.as_str()),
            ("name", "alice"),
            ("password", ALICE_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry > 0 && retry <= 15 * 60, "Retry-After {retry}");
    assert!(cookie_value(&set_cookies(r.headers()), "tally_session").is_none());
    login(base, "bob", BOB_PASSWORD).await;
    // The existing session is not ended by the lock.
    let (s, _, _) = get(base, "/dashboard/a.example", Some(&session)).await;
    assert_eq!(s, 200);

    // Nothing secret reached the log: passwords, the session token, the CSRF nonce.
    let logs = t.logs();
    for secret in [
        ALICE_PASSWORD,
        BOB_PASSWORD,
        "guess",
        token.as_str(),
        nonce.as_str(),
    ] {
        assert!(!logs.contains(secret), "{secret:?} in the log");
    }
    assert!(
        logs.contains("dashboard login"),
        "logins are logged (by user name)"
    );
}

#[tokio::test]
async fn csrf_and_cross_site_posts_are_refused() {
    let setup = Setup::new("dash_csrf").with(&dashboard_config(""));
    let t = setup.start().await;
    let base = &t.base;
    let (csrf, nonce) = login_form(base).await;
    let cookie = format!("tally_login={nonce}");
    let good = [
        ("csrf", csrf.as_str()),
        ("name", "alice"),
        ("password", ALICE_PASSWORD),
    ];

    // No token, a token without its cookie, a token from another form.
    let p = post_form(base, "/login", Some(&cookie), Some(base), &good[1..]).await;
    assert_eq!(p.status, 403);
    let p = post_form(base, "/login", None, Some(base), &good).await;
    assert_eq!(p.status, 403);
    let (_, other_nonce) = login_form(base).await;
    let p = post_form(
        base,
        "/login",
        Some(&format!("tally_login={other_nonce}")),
        Some(base),
        &good,
    )
    .await;
    assert_eq!(p.status, 403);
    // The right token, posted from another site, or without Origin and Referer.
    let p = post_form(
        base,
        "/login",
        Some(&cookie),
        Some("http://evil.example"),
        &good,
    )
    .await;
    assert_eq!(p.status, 403);
    assert!(cookie_value(&p.cookies, "tally_session").is_none());
    let p = post_form(base, "/login", Some(&cookie), None, &good).await;
    assert_eq!(p.status, 403);
    // A Referer from this server is enough when there is no Origin.
    let r = client()
        .post(format!("{base}/login"))
        .header("cookie", &cookie)
        .header("referer", format!("{base}/login"))
        .form(&good)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);

    // Logout needs the session's own token and our origin; a refused logout leaves the session.
    let (session, _) = login(base, "alice", ALICE_PASSWORD).await;
    let (_, _, html) = get(base, "/dashboard/a.example", Some(&session)).await;
    let logout_csrf = hidden_field(&html, "csrf");
    let p = post_form(
        base,
        "/logout",
        Some(&session),
        Some(base),
        &[("csrf", "wrong")],
    )
    .await;
    assert_eq!(p.status, 403);
    let p = post_form(
        base,
        "/logout",
        Some(&session),
        Some("http://evil.example"),
        &[("csrf", &logout_csrf)],
    )
    .await;
    assert_eq!(p.status, 403);
    let (s, _, _) = get(base, "/dashboard/a.example", Some(&session)).await;
    assert_eq!(s, 200, "still logged in after refused logouts");
    // GET does not log out.
    let (s, _, _) = get(base, "/logout", Some(&session)).await;
    assert_eq!(s, 405);
    let p = post_form(
        base,
        "/logout",
        Some(&session),
        Some(base),
        &[("csrf", &logout_csrf)],
    )
    .await;
    assert_eq!(p.status, 303);
    assert_eq!(p.location.as_deref(), Some("/login"));
    let cleared = p
        .cookies
        .iter()
        .find(|c| c.starts_with("tally_session="))
        .unwrap();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    let (s, loc, _) = get(base, "/dashboard/a.example", Some(&session)).await;
    assert_eq!(s, 303, "the old cookie no longer works");
    assert!(loc.unwrap().starts_with("/login"));
}

#[tokio::test]
async fn sessions_expire_when_idle_and_at_their_maximum_age() {
    let setup = Setup::new("dash_expiry").with(&dashboard_config(
        "session_idle_secs = 2\nsession_max_secs = 5",
    ));
    let t = setup.start().await;
    let base = &t.base;

    // Idle: 3 s without a request ends a 2 s idle session.
    let (session, line) = login(base, "alice", ALICE_PASSWORD).await;
    assert!(line.contains("Max-Age=5"), "{line}");
    let (s, _, _) = get(base, "/dashboard/a.example", Some(&session)).await;
    assert_eq!(s, 200);
    tokio::time::sleep(Duration::from_millis(3000)).await;
    let (s, loc, _) = get(base, "/dashboard/a.example", Some(&session)).await;
    assert_eq!(s, 303, "idle session expired");
    assert!(loc.unwrap().starts_with("/login"));

    // Absolute: used twice a second, the session still ends 5 s after the login.
    let (session, _) = login(base, "alice", ALICE_PASSWORD).await;
    let started = std::time::Instant::now();
    let mut last_ok = Duration::ZERO;
    loop {
        let (s, _, _) = get(base, "/dashboard/b.example/realtime", Some(&session)).await;
        if s != 200 {
            assert_eq!(s, 401);
            break;
        }
        last_ok = started.elapsed();
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "session outlived its maximum"
        );
        // Half the idle time between requests: a realtime answer can take a second when the
        // test ClickHouse is busy with the other tests, and the gap must stay under 2 s.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        last_ok >= Duration::from_secs(3),
        "active session kept past the idle time: {last_ok:?}"
    );
}

#[tokio::test]
async fn share_links_and_user_sites_open_only_their_sites() {
    let setup = Setup::new("dash_share").with(&dashboard_config(""));
    let t = setup.start().await;
    load_events(&t.db).await;
    let base = &t.base;

    // The share link shows a.example, read-only, with the same numbers as the API.
    let (s, _, html) = get(base, &format!("/share/{SHARE_SECRET}?{FIXTURE_VIEW}"), None).await;
    assert_eq!(s, 200);
    assert!(html.contains("Shared, read-only view"));
    assert!(
        !html.contains("/logout") && !html.contains("b.example"),
        "no other site, no account"
    );
    assert!(
        !html.contains("/dashboard/"),
        "no links into the logged-in dashboard"
    );
    let (_, api) = post_query(
        base,
        Some("fixture-token"),
        &json!({"site_id": "a.example", "metrics": ["visitors"], "date_range": ["2026-03-26", "2026-03-31"]}),
    )
    .await;
    let api: Value = serde_json::from_str(&api).unwrap();
    assert_eq!(
        headline_value(&html, "visitors"),
        api["results"][0]["metrics"][0].as_f64().unwrap()
    );
    // Filter links stay inside the share link.
    assert!(html.contains(&format!("href=\"/share/{SHARE_SECRET}?period=custom")));
    let (s, _, body) = get(base, &format!("/share/{SHARE_SECRET}/realtime"), None).await;
    assert_eq!(s, 200);
    assert!(serde_json::from_str::<Value>(&body).unwrap()["visitors"].is_number());

    // It opens nothing else: not another site, not the logged-in dashboard, not the API.
    let (s, _, html) = get(base, &format!("/share/{SHARE_SECRET}?site=b.example"), None).await;
    assert_eq!(s, 200);
    assert!(!html.contains("b.example"));
    for path in ["/dashboard/a.example", "/dashboard/b.example"] {
        let (s, _, _) = get(base, path, Some(&format!("tally_session={SHARE_SECRET}"))).await;
        assert_eq!(s, 303, "{path}");
    }
    let (s, _) = post_query(
        base,
        Some(SHARE_SECRET),
        &json!({"site_id": "a.example", "metrics": ["visitors"], "date_range": "all"}),
    )
    .await;
    assert_eq!(s, 401);
    let (s, _, _) = get(base, &format!("/share/{}", &SHARE_SECRET[1..]), None).await;
    assert_eq!(s, 404);

    // bob may see b.example only: a.example is "not found" for him, as for an unknown site.
    let (bob, _) = login(base, "bob", BOB_PASSWORD).await;
    let (s, loc, _) = get(base, "/dashboard", Some(&bob)).await;
    assert_eq!((s, loc.as_deref()), (303, Some("/dashboard/b.example")));
    let (s, _, html) = get(base, "/dashboard/b.example", Some(&bob)).await;
    assert_eq!(s, 200);
    assert!(
        !html.contains("a.example"),
        "bob's site picker lists only his site"
    );
    let (s, _, _) = get(base, "/dashboard/a.example", Some(&bob)).await;
    assert_eq!(s, 404);
    let (s, _, _) = get(base, "/dashboard/nope.example", Some(&bob)).await;
    assert_eq!(s, 404);
    let (s, _, _) = get(base, "/dashboard/a.example/realtime", Some(&bob)).await;
    assert_eq!(s, 401);
}

#[tokio::test]
async fn share_links_are_off_by_default_and_tls_makes_cookies_secure() {
    // No [[dashboard.share_links]]; served behind https (server.public_url).
    let setup = Setup::new("dash_tls").with(&format!(
        "{}\n{}",
        config(),
        user_lines("alice", ALICE_PASSWORD)
    ));
    let text = setup.config_text().replace(
        "[server]\n",
        "[server]\npublic_url = \"https://stats.example.org\"\n",
    );
    let t = setup.start_with_config(&text).await;
    let base = &t.base;
    let (s, _, _) = get(base, &format!("/share/{SHARE_SECRET}"), None).await;
    assert_eq!(s, 404, "share links are off unless configured");

    let r = client().get(format!("{base}/login")).send().await.unwrap();
    let nonce_line = set_cookies(r.headers())
        .into_iter()
        .find(|c| c.starts_with("tally_login="))
        .unwrap();
    assert!(nonce_line.contains("; Secure"), "{nonce_line}");
    let html = r.text().await.unwrap();
    let csrf = hidden_field(&html, "csrf");
    // The browser is on the public https origin; the form is posted from there.
    let p = post_form(
        base,
        "/login",
        Some(&format!("tally_login={csrf}")),
        Some("https://stats.example.org"),
        &[
            ("csrf", &csrf),
            ("name", "alice"),
            ("password", ALICE_PASSWORD),
        ],
    )
    .await;
    assert_eq!(p.status, 303, "{}", p.body);
    let line = p
        .cookies
        .iter()
        .find(|c| c.starts_with("tally_session="))
        .unwrap();
    assert!(line.split(';').any(|a| a.trim() == "Secure"), "{line}");
}

/// A user header from a trusted proxy logs the user in without a password (the HTTP layer hands
/// the connection's peer to the dashboard; from any other peer the header is ignored).
#[tokio::test]
async fn a_trusted_proxy_names_the_user() {
    let setup =
        Setup::new("dash_proxy").with(&dashboard_config("trusted_user_header = \"X-Remote-User\""));
    let t = setup.start().await;
    // The test's requests come from 127.0.0.1, which the test setup trusts as a proxy.
    let r = client()
        .get(format!("{}/dashboard/b.example", t.base))
        .header("x-remote-user", "bob")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = client()
        .get(format!("{}/dashboard/a.example", t.base))
        .header("x-remote-user", "bob")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "bob's sites only");
    let r = client()
        .get(format!("{}/dashboard/a.example", t.base))
        .header("x-remote-user", "carol")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "an unknown name is no login");
}

/// With `privacy.aggregate_only` the dashboard shows what is kept (pageviews, time on page;
/// pages, sources, countries …; hours) with the API's numbers, and says what is not.
#[tokio::test]
async fn aggregate_only_mode_shows_what_is_kept() {
    let setup = Setup::new("dash_aggregate")
        .with(&format!(
            "[[api_tokens]]\nname = \"t\"\nsha256 = \"{}\"\n",
            hex::encode(Sha256::digest(b"agg-token"))
        ))
        .with(&user_lines("alice", ALICE_PASSWORD))
        .with("[privacy]\naggregate_only = true\n");
    let t = setup.start().await;
    for (i, path) in ["/a", "/a", "/b"].iter().enumerate() {
        let body = format!(
            r#"{{"n":"pageview","u":"https://www.example.org{path}","r":"https://www.google.com/","d":"www.example.org"}}"#
        );
        let ip = format!("203.0.113.{}", i + 1);
        assert_eq!(t.browser_beacon(&body, CHROME, &ip).await, 202);
    }
    let today =
        json!({"site_id": "www.example.org", "metrics": ["pageviews"], "date_range": "day"});
    let mut folded = 0.0;
    for _ in 0..100 {
        let (_, a) = post_query(&t.base, Some("agg-token"), &today).await;
        folded = serde_json::from_str::<Value>(&a).unwrap()["results"][0]["metrics"][0]
            .as_f64()
            .unwrap_or(0.0);
        if folded >= 3.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(folded, 3.0, "the beacons were folded into counts");

    let (session, _) = login(&t.base, "alice", ALICE_PASSWORD).await;
    let (s, _, html) = get(
        &t.base,
        "/dashboard/www.example.org?period=today",
        Some(&session),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(headline_value(&html, "pageviews"), 3.0);
    assert!(html.contains("Aggregate-only mode"));
    assert!(
        !html.contains("Could not load"),
        "no panel asks for what is not kept"
    );
    assert!(!html.contains("data-metric=\"visitors\""));
    // The pages table: /a twice, /b once, as the API says; rows are not filter links.
    assert!(
        html.contains(r#"<tr data-dimension="/a"><td class="label">/a"#),
        "{html}"
    );
    assert!(html.contains(r#"data-metric="pageviews" data-value="2""#));
    let (s, _, _) = get(
        &t.base,
        "/dashboard/www.example.org/realtime",
        Some(&session),
    )
    .await;
    assert_eq!(s, 404, "no realtime numbers are kept");
}

/// Issue 18: a first-time user sees their first page view on the opening screen. The default
/// period (the 30 days before today) is empty for a new site, so the page opens on today; a
/// period named in the URL is kept.
#[tokio::test]
async fn issue_18_a_new_sites_first_page_view_is_on_the_opening_screen() {
    let setup = Setup::new("dash_first").with(&dashboard_config(""));
    let t = setup.start().await;
    let base = &t.base;
    let r = reqwest::Client::new()
        .post(format!("{base}/api/event"))
        .header("user-agent", CHROME)
        .body(r#"{"n":"pageview","u":"https://a.example/welkom","d":"a.example"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    // Stored once the API counts it.
    let mut stored = false;
    for _ in 0..100 {
        let (_, api) = post_query(
            base,
            Some("fixture-token"),
            &json!({"site_id": "a.example", "metrics": ["pageviews"], "date_range": "day"}),
        )
        .await;
        let api: Value = serde_json::from_str(&api).unwrap();
        if api["results"][0]["metrics"][0] == json!(1) {
            stored = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(stored, "the page view reached ClickHouse");

    let (s, _, html) = get(base, &format!("/share/{SHARE_SECRET}"), None).await;
    assert_eq!(s, 200);
    assert_eq!(headline_value(&html, "pageviews"), 1.0);
    assert!(
        html.contains("period=today\" aria-current=\"page\""),
        "the period picker shows Today"
    );
    // Asked for the last 30 days, it shows them (empty), as asked.
    let (s, _, html) = get(base, &format!("/share/{SHARE_SECRET}?period=30d"), None).await;
    assert_eq!(s, 200);
    assert_eq!(headline_value(&html, "pageviews"), 0.0);
    assert!(html.contains("period=30d\" aria-current=\"page\""));
}

/// Sessions are kept in ClickHouse, not in one collector's memory: a login at one collector is
/// known to another on the same database, a logout at either ends it for both, a restart logs
/// no one out, the table holds the token's SHA-256 and never the token or the logout form's
/// token, and a day of sessions older than `session_max_secs` is dropped.
#[tokio::test]
async fn sessions_are_known_to_every_collector_and_outlive_a_restart() {
    let setup = Setup::new("dash_shared").with(&dashboard_config(""));
    let a = setup.start().await;
    // The same config (the same password hashes), as collectors behind one load balancer have.
    let mut other = Setup::new("dash_shared_b").with(&setup.extra);
    other.db = setup.db.clone();
    let b = other.start().await;

    let (session, _) = login(&a.base, "alice", ALICE_PASSWORD).await;
    let token = session.strip_prefix("tally_session=").unwrap().to_string();
    let (s, _, html) = get(&b.base, "/dashboard/a.example", Some(&session)).await;
    assert_eq!(s, 200, "the other collector knows the login");
    let logout_csrf = hidden_field(&html, "csrf");
    let (s, _, html_a) = get(&a.base, "/dashboard/a.example", Some(&session)).await;
    assert_eq!(s, 200);
    assert_eq!(
        hidden_field(&html_a, "csrf"),
        logout_csrf,
        "both collectors give the logout form the same token"
    );

    // What ClickHouse holds: the token's SHA-256, the user, times; not the token or the form's
    // token.
    let key = hex::encode(Sha256::digest(token.as_bytes()));
    let stored = ch(&format!(
        "SELECT * FROM {}.dashboard_sessions FORMAT TSV",
        setup.db
    ))
    .await;
    assert!(
        stored.contains(&key) && stored.contains("alice"),
        "{stored}"
    );
    assert!(!stored.contains(&token) && !stored.contains(&logout_csrf));

    // A logout at b ends the session at a too.
    let p = post_form(
        &b.base,
        "/logout",
        Some(&session),
        Some(&b.base),
        &[("csrf", &logout_csrf)],
    )
    .await;
    assert_eq!(p.status, 303, "{}", p.body);
    let (s, loc, _) = get(&a.base, "/dashboard/a.example", Some(&session)).await;
    assert_eq!(
        (s, loc.as_deref()),
        (303, Some("/login?next=%2Fdashboard%2Fa.example"))
    );

    // A restart logs no one out; and a day of sessions past session_max_secs (14 days by
    // default) is dropped when the collector starts.
    let (session, _) = login(&a.base, "alice", ALICE_PASSWORD).await;
    ch(&format!(
        "INSERT INTO {}.dashboard_sessions VALUES ('old', 'alice', '', now() - 15 * 86400, now() - 15 * 86400, 0)",
        setup.db
    ))
    .await;
    let logs = a.logs();
    a.terminate();
    drop(b);
    let a = setup.start().await;
    let (s, _, _) = get(&a.base, "/dashboard/a.example", Some(&session)).await;
    assert_eq!(s, 200, "still logged in after the restart");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while ch_count(&format!(
        "SELECT count() FROM {}.dashboard_sessions WHERE token_sha256 = 'old'",
        setup.db
    ))
    .await
        > 0
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the expired day was not dropped"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(a.logs().contains("dashboard sessions: expired day dropped"));
    assert_eq!(
        ch_count(&format!(
            "SELECT count() FROM {}.dashboard_sessions WHERE token_sha256 != 'old'",
            setup.db
        ))
        .await,
        ch_count(&format!(
            "SELECT count() FROM {}.dashboard_sessions WHERE created > now() - 86400",
            setup.db
        ))
        .await,
        "only the old day was dropped"
    );
    for text in [logs, a.logs()] {
        assert!(!text.contains(&token) && !text.contains(&key) && !text.contains(&logout_csrf));
    }
}

/// When ClickHouse does not answer, a right password gets a clear 503 on the login page, and no
/// session cookie: a session that no other collector could know is not handed out. A logout
/// then gets a 503 saying the session could not be ended, and the cookie is removed from the
/// browser all the same (the session itself lives on until its idle time).
#[tokio::test]
async fn a_login_that_cannot_be_stored_is_refused_with_503() {
    let relay = Relay::start().await;
    let mut setup = Setup::new("dash_down").with(&dashboard_config(""));
    setup.clickhouse_url = Some(relay.url.clone());
    let t = setup.start().await;
    relay.set(Link::Down);
    let (csrf, nonce) = login_form(&t.base).await;
    let p = post_form(
        &t.base,
        "/login",
        Some(&format!("tally_login={nonce}")),
        Some(&t.base),
        &[
            ("csrf", &csrf),
            ("name", "alice"),
            ("password", ALICE_PASSWORD),
        ],
    )
    .await;
    assert_eq!(p.status, 503, "{}", p.body);
    assert!(p.body.contains("the database did not answer"), "{}", p.body);
    assert!(!p.cookies.iter().any(|c| c.starts_with("tally_session=")));
    relay.set(Link::Up);
    let (session, _) = login(&t.base, "alice", ALICE_PASSWORD).await;
    let (s, _, html) = get(&t.base, "/dashboard/a.example", Some(&session)).await;
    assert_eq!(s, 200);
    relay.set(Link::Down);
    let p = post_form(
        &t.base,
        "/logout",
        Some(&session),
        Some(&t.base),
        &[("csrf", &hidden_field(&html, "csrf"))],
    )
    .await;
    assert_eq!(p.status, 503, "{}", p.body);
    assert!(
        p.body.contains("could not be marked as ended"),
        "{}",
        p.body
    );
    let cleared = p
        .cookies
        .iter()
        .find(|c| c.starts_with("tally_session="))
        .expect("the cookie is removed");
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    relay.set(Link::Up);
    let (s, _, _) = get(&t.base, "/dashboard/a.example", Some(&session)).await;
    assert_eq!(
        s, 200,
        "the session was not ended: a cookie kept elsewhere still works"
    );
}

/// A password changed in the config ends the sessions made with the old one, at the next
/// start (or at another collector with the new config).
#[tokio::test]
async fn a_changed_password_ends_the_old_sessions() {
    let setup = Setup::new("dash_password").with(&dashboard_config(""));
    let t = setup.start().await;
    let (session, _) = login(&t.base, "alice", ALICE_PASSWORD).await;
    t.terminate();
    let new_password = "a new and longer passphrase";
    let hash_line = |text: &str| {
        let alice = text.find("name = \"alice\"").expect("alice's lines");
        let line = text[alice..]
            .lines()
            .find(|l| l.starts_with("password_hash = "))
            .expect("her password hash")
            .to_string();
        line
    };
    let text = setup.config_text();
    let text = text.replacen(
        &hash_line(&text),
        &hash_line(&user_lines("alice", new_password)),
        1,
    );
    assert_ne!(hash_line(&text), hash_line(&setup.config_text()));
    let t = setup.start_with_config(&text).await;
    let (s, loc, _) = get(&t.base, "/dashboard/a.example", Some(&session)).await;
    assert_eq!(s, 303, "the old session is over");
    assert!(loc.unwrap().starts_with("/login"));
    login(&t.base, "alice", new_password).await;
}

/// `tally sessions` lists the live sessions (user, times; never a token), `--end NAME` ends one
/// user's at the running collector, `--end-all` everyone's.
#[tokio::test]
async fn the_sessions_command_lists_and_ends_sessions() {
    let setup = Setup::new("dash_sessions_cli").with(&dashboard_config(""));
    let t = setup.start().await;
    let (alice, _) = login(&t.base, "alice", ALICE_PASSWORD).await;
    let (bob, _) = login(&t.base, "bob", BOB_PASSWORD).await;
    let config = setup.config_path();
    let listed = tally_succeeds(&["sessions"], &config);
    assert!(listed.contains("2 session(s) live"), "{listed}");
    assert!(listed.contains("  alice  logged in ") && listed.contains("  bob  logged in "));
    for cookie in [&alice, &bob] {
        let token = cookie.strip_prefix("tally_session=").unwrap();
        assert!(!listed.contains(token), "a token is never printed");
    }
    let ended = tally_succeeds(&["sessions", "--end", "alice"], &config);
    assert!(ended.contains("1 session(s) ended"), "{ended}");
    let (s, _, _) = get(&t.base, "/dashboard/a.example", Some(&alice)).await;
    assert_eq!(s, 303, "alice is logged out");
    let (s, _, _) = get(&t.base, "/dashboard/b.example", Some(&bob)).await;
    assert_eq!(s, 200, "bob is not");
    let ended = tally_succeeds(&["sessions", "--end-all"], &config);
    assert!(ended.contains("1 session(s) ended"), "{ended}");
    let (s, _, _) = get(&t.base, "/dashboard/b.example", Some(&bob)).await;
    assert_eq!(s, 303);
    assert!(tally_succeeds(&["sessions"], &config).contains("0 session(s) live"));
}

/// The properties panel: the pageviews and custom events of a site's allow-listed props, by the
/// shown property, with a tab per key; a `prop` the site does not store is a 400 that names the
/// keys, and the panel's CSV has the same rows. Values as the stats API counts them.
#[tokio::test]
async fn the_properties_panel_breaks_down_pageview_and_event_props() {
    let config = dashboard_config("").replace(
        "domain = \"a.example\"\ntime_zone = \"Europe/Amsterdam\"\n",
        "domain = \"a.example\"\ntime_zone = \"Europe/Amsterdam\"\nprops_allowlist = [\"author\", \"lang\"]\n",
    );
    let setup = Setup::new("dash_props").with(&config);
    let t = setup.start().await;
    let base = &t.base;
    let beacon = |ip: &'static str, body: &'static str| {
        reqwest::Client::new()
            .post(format!("{base}/api/event"))
            .header("user-agent", CHROME)
            .header("x-forwarded-for", ip)
            .body(body)
            .send()
    };
    // Three visitors: two pageviews by Jan (one also in Dutch), one by Piet, one without an
    // author, and a custom event in English; `email` is not allow-listed.
    for (ip, body) in [
        (
            "192.0.2.1",
            r#"{"n":"pageview","u":"https://a.example/a","d":"a.example","p":{"author":"Jan","lang":"nl"}}"#,
        ),
        (
            "192.0.2.1",
            r#"{"n":"pageview","u":"https://a.example/b","d":"a.example","p":{"author":"Jan","email":"x@example.nl"}}"#,
        ),
        (
            "192.0.2.2",
            r#"{"n":"pageview","u":"https://a.example/a","d":"a.example","p":{"author":"Piet"}}"#,
        ),
        (
            "192.0.2.3",
            r#"{"n":"pageview","u":"https://a.example/c","d":"a.example"}"#,
        ),
        (
            "192.0.2.3",
            r#"{"n":"Signup","u":"https://a.example/c","d":"a.example","p":{"lang":"en"}}"#,
        ),
    ] {
        assert_eq!(beacon(ip, body).await.unwrap().status(), 202);
    }
    assert_eq!(t.wait_rows(5).await, 5);
    // A page of the share link with this query string.
    let share = |query: &str| {
        let path = format!("/share/{SHARE_SECRET}?{query}");
        async move { get(base, &path, None).await }
    };

    let table = |html: &str| -> Vec<(String, Vec<String>)> {
        let start = html
            .find("data-panel=\"props\"")
            .expect("a properties table");
        let body = &html[start..html[start..].find("</tbody>").unwrap() + start];
        body.split("<tr data-dimension=\"")
            .skip(1)
            .map(|row| {
                let value = row[..row.find('"').unwrap()].to_string();
                let cells = row
                    .split("data-value=\"")
                    .skip(1)
                    .map(|c| c[..c.find('"').unwrap()].to_string())
                    .collect();
                (value, cells)
            })
            .collect()
    };
    let row = |v: &str, c: [&str; 3]| (v.to_string(), c.iter().map(|s| s.to_string()).collect());
    let (s, _, html) = share("period=today").await;
    assert_eq!(s, 200, "{html}");
    // The first allow-listed key by default: visitors, pageviews, events (ties in visitors
    // ordered by value, as the API orders them).
    assert!(html.contains("Custom property: author"), "{html}");
    assert_eq!(
        table(&html),
        vec![
            row("(none)", ["1", "1", "2"]),
            row("Jan", ["1", "2", "2"]),
            row("Piet", ["1", "1", "1"]),
        ]
    );
    assert!(
        html.contains("prop=lang#props-panel\">lang</a>"),
        "a tab per key"
    );
    // A row filters the view by its value, as other tables' rows do (`(none)` too).
    let link = |html: &str, value: &str| -> Option<String> {
        let start = html.find("data-panel=\"props\"")?;
        let row =
            &html[start..][html[start..].find(&format!("<tr data-dimension=\"{value}\""))?..];
        let row = &row[..row.find("</tr>")?];
        let href = &row[row.find("<a href=\"")? + 9..];
        Some(href[..href.find('"')?].replace("&#38;", "&"))
    };
    assert_eq!(
        link(&html, "(none)").as_deref(),
        Some(format!("/share/{SHARE_SECRET}?period=today&props.author=%28none%29").as_str())
    );
    let jan = link(&html, "Jan").expect("the Jan row links");
    assert_eq!(
        jan,
        format!("/share/{SHARE_SECRET}?period=today&props.author=Jan")
    );
    let (s, _, html) = get(base, &jan, None).await;
    assert_eq!(s, 200, "{html}");
    // Filtered by a property, the page is a conversion report: Jan's 2 pageviews by 1 of the
    // 3 visitors; its pages are /a and /b; the filter is shown and the row removes it.
    assert!(html.contains("author is <strong>Jan</strong>"), "{html}");
    assert_eq!(headline_value(&html, "visitors"), 1.0);
    assert_eq!(headline_value(&html, "events"), 2.0);
    assert_eq!(headline_value(&html, "conversion_rate"), 33.33);
    assert_eq!(table(&html), vec![row("Jan", ["1", "2", "33.33"])]);
    assert!(html.contains(&format!(
        "<a href=\"/share/{SHARE_SECRET}?period=today\" aria-current=\"true\" title=\"Remove this filter\">Jan</a>"
    )));
    for page in ["/a", "/b"] {
        assert!(
            html.contains(&format!("<tr data-dimension=\"{page}\"")),
            "{page}"
        );
    }
    assert!(!html.contains("<tr data-dimension=\"/c\""));
    // Filtered by one property, broken down by another: Jan's events by language; and by
    // both, Jan's Dutch pageview alone.
    let (s, _, html) = share("period=today&props.author=Jan&prop=lang").await;
    assert_eq!(s, 200);
    assert_eq!(
        table(&html),
        vec![
            row("(none)", ["1", "1", "33.33"]),
            row("nl", ["1", "1", "33.33"])
        ]
    );
    let (s, _, html) = share("period=today&props.author=Jan&props.lang=nl&prop=lang").await;
    assert_eq!(s, 200);
    assert_eq!(headline_value(&html, "events"), 1.0);
    assert_eq!(table(&html), vec![row("nl", ["1", "1", "33.33"])]);
    assert!(
        html.contains("<tr data-dimension=\"/a\"") && !html.contains("<tr data-dimension=\"/b\"")
    );
    let (s, _, _) = share("period=today&props.email=x").await;
    assert_eq!(s, 400, "a filter on a property the site does not store");
    let (s, _, html) = share("period=today&prop=lang").await;
    assert_eq!(s, 200);
    assert_eq!(
        table(&html),
        vec![
            row("(none)", ["3", "3", "3"]),
            row("en", ["1", "0", "1"]),
            row("nl", ["1", "1", "1"]),
        ]
    );
    assert!(html.contains("prop=lang#props-panel\" aria-current=\"page\">lang</a>"));
    // The custom-range form keeps the shown property too.
    assert!(html.contains(r#"<input type="hidden" name="prop" value="lang">"#));
    // Nothing of the prop that is not allow-listed was stored.
    assert_eq!(
        ch_count(&format!(
            "SELECT count() FROM {}.events WHERE has(props_keys, 'email')",
            t.db
        ))
        .await,
        0
    );
    // A key the site does not store: a 400 naming the ones it does.
    let (s, _, html) = share("period=today&prop=email").await;
    assert_eq!(s, 400);
    assert!(html.contains("(author, lang)"), "{html}");
    // So is its CSV.
    let (s, _, _) = get(
        base,
        &format!("/share/{SHARE_SECRET}/csv/props?period=today&prop=email"),
        None,
    )
    .await;
    assert_eq!(s, 400);
    // With the view's filters: filtered by the page /a, the panel counts that page's pageviews
    // only, Jan's and Piet's.
    let (s, _, html) = share("period=today&page=%2Fa").await;
    assert_eq!(s, 200);
    assert_eq!(
        table(&html),
        vec![row("Jan", ["1", "1", "1"]), row("Piet", ["1", "1", "1"])]
    );
    // The CSV of the panel: the same rows, all of them.
    let (s, _, csv) = get(
        base,
        &format!("/share/{SHARE_SECRET}/csv/props?period=today&prop=lang"),
        None,
    )
    .await;
    assert_eq!(s, 200, "{csv}");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 4, "{csv}");
    assert!(
        lines.contains(&"en,1,0,1") && lines.contains(&"(none),3,3,3"),
        "{csv}"
    );
}
