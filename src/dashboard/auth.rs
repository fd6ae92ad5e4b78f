//! Who may see the dashboard, and the defences of the two requests that change state.
//!
//! - **Users** from `[[dashboard.users]]` log in with a password checked against its argon2 PHC
//!   hash. A login makes a **session**: a random 256-bit token in an `HttpOnly; SameSite=Strict`
//!   cookie (`Secure` when served over TLS); only the token's SHA-256 is kept, in ClickHouse
//!   (`sessions`), with an idle and an absolute expiry, so that every collector knows the session
//!   and a restart logs no one out. The logout form's CSRF token is derived from the token, so
//!   it is not stored either.
//! - A **trusted reverse proxy** may name the user in a header (`trusted_user_header`, for SSO);
//!   the header is believed only when the connection comes from `server.trusted_proxies`.
//! - A **share link** `/share/<secret>` shows one site read-only; the config holds the secret's
//!   SHA-256 (`[[dashboard.share_links]]`).
//! - **CSRF**: login and logout are POST forms carrying a token (login: the value of a
//!   `SameSite=Strict` cookie set with the form, "double submit"; logout: the session's own
//!   token), and their `Origin` (or `Referer`) must be this server.
//! - **Throttling** is per user name, never per address: after [`MAX_FAILURES`] wrong passwords
//!   within [`FAILURE_WINDOW`], that name is refused until the window ends (counted by each
//!   collector on its own).
//!
//! Passwords, tokens and cookies are never logged; user names are logged only when they are
//! configured (a password typed into the name field must not reach the log).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use cookie::{Cookie, SameSite};
use hyper::header::{self, HeaderMap, HeaderName};
use secrecy::ExposeSecret;

use super::sessions::{self, credential_of, SessionRow, SessionStore};
use crate::clock::Clock;
use crate::config::Config;
use crate::credentials::{random_hex, same, SecretDigest};
use crate::password;
use crate::trusted_proxy::TrustedProxies;

pub const SESSION_COOKIE: &str = "tally_session";
/// The login form's CSRF nonce (double submit), scoped to `/login`.
pub const LOGIN_COOKIE: &str = "tally_login";
/// Wrong passwords for one name before it is refused for the rest of the window.
pub const MAX_FAILURES: u32 = 5;
pub const FAILURE_WINDOW: Duration = Duration::from_secs(15 * 60);
/// How long a login form stays usable.
pub const LOGIN_FORM_SECS: u64 = 3600;
/// A bound on what strangers can make us remember.
const MAX_TRACKED_NAMES: usize = 10_000;

struct User {
    hash: Option<String>,
    sites: Vec<String>,
}

struct Failures {
    count: u32,
    since: Instant,
}

/// What came of a logout.
#[derive(Debug, PartialEq, Eq)]
pub enum Logout {
    /// The session is ended, at every collector.
    Done,
    /// No session of this cookie, or not its form's token (a CSRF attempt): nothing changed.
    Refused,
    /// The form was right but ClickHouse did not answer: the session may live on elsewhere
    /// until its idle or maximum age; this browser's cookie is removed all the same.
    Unavailable,
}

/// Someone allowed in: a logged-in user, or a user named by the trusted proxy.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub user: String,
    /// Empty: every site.
    pub sites: Vec<String>,
    /// The session's CSRF token (for the logout form); `None` when the proxy vouched.
    pub csrf: Option<String>,
}

impl Viewer {
    pub fn may_see(&self, site: &str) -> bool {
        self.sites.is_empty() || self.sites.iter().any(|s| s == site)
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum LoginError {
    /// Unknown name or wrong password (one answer for both).
    Wrong,
    /// Too many failures for this name; try again after this long.
    Throttled(Duration),
    /// The password was right but the session could not be stored (ClickHouse did not answer).
    Unavailable,
}

pub struct Auth {
    users: HashMap<String, User>,
    shares: Vec<(SecretDigest, String)>,
    header: Option<HeaderName>,
    proxies: TrustedProxies,
    idle: Duration,
    max: Duration,
    public_https: bool,
    /// `host[:port]` of `server.public_url`, an origin the forms may come from.
    public_host: Option<String>,
    sessions: Arc<SessionStore>,
    clock: Arc<dyn Clock>,
    failures: Mutex<HashMap<String, Failures>>,
    /// A hash checked for unknown names, so that they take as long as known ones (made with
    /// the first user's parameters, on the first unknown name).
    dummy: OnceLock<String>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn digest(s: &str) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    Sha256::digest(s.as_bytes()).into()
}

/// The key a session is kept under: the SHA-256 of its token, in hex (the token is not kept).
fn session_key(token: &str) -> String {
    hex::encode(digest(token))
}

/// Whether a cookie value can be a session token (64 hex digits, as [`random_hex`] makes them):
/// anything else is turned away without asking ClickHouse.
fn is_token(value: &str) -> bool {
    value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The CSRF token of the logout form of a session: derived from the session's token (a
/// different hash than its key, so the stored key does not give it away).
fn csrf_of(token: &str) -> String {
    hex::encode(&digest(&format!("tally logout form\0{token}"))[..16])
}

/// The value of cookie `name` in the request.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .and_then(|c| c.value_raw())
}

/// A `Set-Cookie` value: `HttpOnly`, `SameSite=Strict`, on `path`, kept `max_age` seconds
/// (0: removed), `Secure` over TLS.
fn set_cookie(name: &str, value: &str, path: &str, max_age: u64, secure: bool) -> String {
    Cookie::build((name, value))
        .path(path)
        .http_only(true)
        .same_site(SameSite::Strict)
        .max_age(cookie::time::Duration::seconds(
            i64::try_from(max_age).unwrap_or(i64::MAX),
        ))
        .secure(secure)
        .build()
        .to_string()
}

fn host_port(url: &str) -> Option<String> {
    let u = url::Url::parse(url).ok()?;
    let host = u.host_str()?.to_ascii_lowercase();
    Some(match u.port() {
        Some(p) => format!("{host}:{p}"),
        None => host,
    })
}

impl Auth {
    pub fn new(config: &Config, sessions: Arc<SessionStore>, clock: Arc<dyn Clock>) -> Auth {
        let d = &config.dashboard;
        Auth {
            users: d
                .users
                .iter()
                .map(|u| {
                    (
                        u.name.clone(),
                        User {
                            hash: u
                                .password_hash
                                .as_ref()
                                .map(|h| h.expose_secret().to_string()),
                            sites: u.sites.clone(),
                        },
                    )
                })
                .collect(),
            shares: d
                .share_links
                .iter()
                .map(|s| (s.sha256.clone(), s.site.clone()))
                .collect(),
            header: d.trusted_user_header.clone(),
            proxies: config.server.trusted_proxies.clone(),
            idle: d.session_idle,
            max: d.session_max,
            public_https: config.server.public_url.starts_with("https://"),
            public_host: config.server.public_host.clone(),
            sessions,
            clock,
            failures: Mutex::new(HashMap::new()),
            dummy: OnceLock::new(),
        }
    }

    fn trusted(&self, peer: Option<SocketAddr>) -> bool {
        peer.is_some_and(|p| self.proxies.trusts(p.ip()))
    }

    /// Whether the browser reached us over TLS: the public URL is https, or a trusted proxy says
    /// so (`X-Forwarded-Proto` / `Forwarded: proto=`).
    pub fn is_secure(&self, headers: &HeaderMap, peer: Option<SocketAddr>) -> bool {
        self.public_https || peer.is_some_and(|p| self.proxies.forwarded_https(p.ip(), headers))
    }

    /// Whether a form post comes from a page of this server: its `Origin` (else its `Referer`)
    /// names the host the request was sent to, or the public URL's host. Neither header: no.
    pub fn same_origin(&self, headers: &HeaderMap) -> bool {
        let from = headers
            .get(header::ORIGIN)
            .and_then(|v| v.to_str().ok())
            .filter(|o| *o != "null")
            .or_else(|| headers.get(header::REFERER).and_then(|v| v.to_str().ok()))
            .and_then(host_port);
        let Some(from) = from else {
            return false;
        };
        let host = headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .map(|h| h.to_ascii_lowercase());
        host.as_deref() == Some(from.as_str()) || self.public_host.as_deref() == Some(&from)
    }

    /// Who is asking: the user a trusted proxy names, else the user of a live session cookie.
    pub async fn viewer(&self, headers: &HeaderMap, peer: Option<SocketAddr>) -> Option<Viewer> {
        if let Some(h) = &self.header {
            if self.trusted(peer) {
                if let Some(name) = headers.get(h).and_then(|v| v.to_str().ok()) {
                    let name = name.trim();
                    return match self.users.get(name) {
                        Some(u) => Some(Viewer {
                            user: name.to_string(),
                            sites: u.sites.clone(),
                            csrf: None,
                        }),
                        None => {
                            tracing::info!(
                                "dashboard: the proxy named a user who is not in [[dashboard.users]]"
                            );
                            None
                        }
                    };
                }
            }
        }
        let token = cookie(headers, SESSION_COOKIE).filter(|t| is_token(t))?;
        let key = session_key(token);
        let session = match self.sessions.find(&key).await {
            Ok(found) => found?,
            Err(e) => {
                tracing::warn!(error = %crate::clickhouse_code::describe(&e), "dashboard: the session could not be read");
                return None;
            }
        };
        let now = sessions::seconds(self.clock.now());
        let user = self.users.get(&session.user)?;
        // Also over when the password was changed (or removed) since the login.
        if !session.is_valid(now, self.idle, self.max, user.hash.as_deref()) {
            return None;
        }
        if u64::from(now.saturating_sub(session.seen)) >= sessions::touch_after(self.idle).as_secs()
        {
            let touch = session.row(&key, now, false);
            // Not recorded: the session may expire up to one idle limit after its last
            // recorded use rather than after this request. It is still served.
            if let Err(e) = self.sessions.insert(touch).await {
                tracing::warn!(error = %crate::clickhouse_code::describe(&e), "dashboard: the session's use could not be recorded");
            }
        }
        Some(Viewer {
            user: session.user,
            sites: user.sites.clone(),
            csrf: Some(csrf_of(token)),
        })
    }

    /// Checks a name and password; on success returns a new session token (for the cookie).
    pub async fn login(&self, name: &str, password: &str) -> Result<String, LoginError> {
        let name = name.trim();
        let known = self.users.contains_key(name);
        // The attempt is counted before the (slow) check, so that parallel guesses cannot
        // slip past the limit.
        {
            let mut failures = lock(&self.failures);
            let now = Instant::now();
            if !failures.contains_key(name) && failures.len() >= MAX_TRACKED_NAMES {
                failures.retain(|_, f| now.duration_since(f.since) < FAILURE_WINDOW);
            }
            if known || failures.contains_key(name) || failures.len() < MAX_TRACKED_NAMES {
                let f = failures.entry(name.to_string()).or_insert(Failures {
                    count: 0,
                    since: now,
                });
                if now.duration_since(f.since) >= FAILURE_WINDOW {
                    *f = Failures {
                        count: 0,
                        since: now,
                    };
                }
                if f.count >= MAX_FAILURES {
                    let left = FAILURE_WINDOW.saturating_sub(now.duration_since(f.since));
                    if known {
                        tracing::warn!(user = name, "dashboard login refused: too many failures");
                    }
                    return Err(LoginError::Throttled(left));
                }
                f.count += 1;
            }
        }
        let hash = match self.users.get(name).and_then(|u| u.hash.clone()) {
            Some(h) => h,
            None => self
                .dummy
                .get_or_init(|| {
                    let template = self.users.values().find_map(|u| u.hash.as_deref());
                    password::hash_like(template, &random_hex(16))
                })
                .clone(),
        };
        let password = password.to_string();
        let ok = tokio::task::spawn_blocking(move || password::verify(&hash, &password))
            .await
            .unwrap_or(false)
            && self.users.get(name).is_some_and(|u| u.hash.is_some());
        if !ok {
            if known {
                tracing::info!(user = name, "dashboard login failed: wrong password");
            } else {
                tracing::info!("dashboard login failed: unknown name");
            }
            return Err(LoginError::Wrong);
        }
        lock(&self.failures).remove(name);
        let token = self.create_session(name).await?;
        tracing::info!(user = name, "dashboard login");
        Ok(token)
    }

    async fn create_session(&self, user: &str) -> Result<String, LoginError> {
        let token = random_hex(32);
        let now = sessions::seconds(self.clock.now());
        let credential = self
            .users
            .get(user)
            .and_then(|u| u.hash.as_deref())
            .map(credential_of)
            .unwrap_or_default();
        let row = SessionRow {
            token_sha256: session_key(&token),
            user: user.to_string(),
            credential,
            created: now,
            seen: now,
            ended: 0,
        };
        match self.sessions.insert(row).await {
            Ok(()) => Ok(token),
            Err(e) => {
                tracing::warn!(user, error = %crate::clickhouse_code::describe(&e), "dashboard login not completed: the session could not be stored");
                Err(LoginError::Unavailable)
            }
        }
    }

    /// Ends the session of this request's cookie, if `csrf` is its logout form's token. Every
    /// collector sees it ended from then on.
    pub async fn logout(&self, headers: &HeaderMap, csrf: &str) -> Logout {
        let Some(token) = cookie(headers, SESSION_COOKIE).filter(|t| is_token(t)) else {
            return Logout::Refused;
        };
        if !same(csrf_of(token).as_bytes(), csrf.as_bytes()) {
            return Logout::Refused;
        }
        let key = session_key(token);
        let session = match self.sessions.find(&key).await {
            Ok(Some(s)) if s.ended == 0 => s,
            Ok(_) => return Logout::Refused,
            Err(e) => {
                tracing::warn!(error = %crate::clickhouse_code::describe(&e), "dashboard logout not stored: the session could not be read");
                return Logout::Unavailable;
            }
        };
        let end = session.row(&key, sessions::seconds(self.clock.now()), true);
        if let Err(e) = self.sessions.insert(end).await {
            tracing::warn!(error = %crate::clickhouse_code::describe(&e), "dashboard logout not stored: the end could not be written");
            return Logout::Unavailable;
        }
        tracing::info!(user = %session.user, "dashboard logout");
        Logout::Done
    }

    /// The site a share secret opens, if any.
    pub fn share_site(&self, secret: &str) -> Option<&str> {
        if secret.is_empty() {
            return None;
        }
        self.shares
            .iter()
            .find(|(h, _)| h.matches(secret))
            .map(|(_, site)| site.as_str())
    }

    pub fn session_cookie(&self, token: &str, secure: bool) -> String {
        set_cookie(SESSION_COOKIE, token, "/", self.max.as_secs(), secure)
    }

    pub fn clear_session_cookie(secure: bool) -> String {
        set_cookie(SESSION_COOKIE, "", "/", 0, secure)
    }

    pub fn login_cookie(nonce: &str, secure: bool) -> String {
        set_cookie(LOGIN_COOKIE, nonce, "/login", LOGIN_FORM_SECS, secure)
    }

    pub fn clear_login_cookie(secure: bool) -> String {
        set_cookie(LOGIN_COOKIE, "", "/login", 0, secure)
    }

    /// Whether any way in is configured (else the login page says how to add a user).
    pub fn has_users(&self) -> bool {
        !self.users.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cheap parameters: these tests are about the flow, not the cost (debug builds are slow).
    fn cheap_hash(password: &str) -> String {
        use argon2::password_hash::PasswordHasher;
        let params = argon2::Params::new(256, 1, 1, None).unwrap();
        argon2::Argon2::from(params)
            .hash_password(password.as_bytes())
            .unwrap()
            .to_string()
    }

    fn auth(extra: &str) -> Auth {
        auth_at(extra, Arc::new(crate::clock::SystemClock))
    }

    /// alice's password is "correct horse", hashed afresh (with a new salt) for each `Auth`.
    fn auth_at(extra: &str, clock: Arc<dyn Clock>) -> Auth {
        auth_hashed(extra, clock, &cheap_hash("correct horse"))
    }

    fn auth_hashed(extra: &str, clock: Arc<dyn Clock>, hash: &str) -> Auth {
        let config = Config::parse(&format!(
            "[server]\ntrusted_proxies = [\"10.0.0.0/8\"]\n\
             [dashboard]\nsession_idle_secs = 60\n{extra}\n\
             [[dashboard.users]]\nname = \"alice\"\npassword_hash = \"{hash}\"\n\
             [[dashboard.users]]\nname = \"bob\"\nsites = [\"b.example\"]\n\
             [[dashboard.share_links]]\nsite = \"b.example\"\nsha256 = \"{}\"\n\
             [[sites]]\ndomain = \"a.example\"\n[[sites]]\ndomain = \"b.example\"\n",
            hex::encode(digest("s3cret"))
        ))
        .unwrap();
        Auth::new(&config, Arc::new(SessionStore::memory()), clock)
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[tokio::test]
    async fn login_session_logout() {
        let a = auth("");
        assert_eq!(a.login("alice", "wrong").await, Err(LoginError::Wrong));
        assert_eq!(a.login("nobody", "x").await, Err(LoginError::Wrong));
        // A user without a password hash cannot log in with a password.
        assert_eq!(a.login("bob", "").await, Err(LoginError::Wrong));
        let token = a.login("alice", "correct horse").await.unwrap();
        assert_eq!(token.len(), 64);
        let h = headers(&[("cookie", &format!("x=1; {SESSION_COOKIE}={token}"))]);
        let v = a.viewer(&h, None).await.unwrap();
        assert_eq!(v.user, "alice");
        assert!(v.may_see("a.example") && v.may_see("b.example"));
        // Only the token's hash is kept, and neither the token nor the form's CSRF token.
        let SessionStore::Memory(rows) = &*a.sessions else {
            unreachable!()
        };
        let kept = format!("{:?}", lock(rows));
        let csrf = v.csrf.unwrap();
        assert!(kept.contains(&session_key(&token)));
        assert!(!kept.contains(&token) && !kept.contains(&csrf));
        assert_eq!(a.logout(&h, "not the token").await, Logout::Refused);
        assert!(a.viewer(&h, None).await.is_some());
        assert_eq!(a.logout(&h, &csrf).await, Logout::Done);
        assert!(a.viewer(&h, None).await.is_none());
        // Ended is ended: the same form cannot end it twice.
        assert_eq!(a.logout(&h, &csrf).await, Logout::Refused);
    }

    #[tokio::test]
    async fn sessions_expire_when_idle_and_at_their_maximum() {
        let start: jiff::Timestamp = "2026-12-06T08:00:00Z".parse().unwrap();
        let clock = Arc::new(crate::clock::ManualClock::new(start));
        // Idle 60 s (from `auth`), at most 200 s.
        let a = auth_at("session_max_secs = 200", clock.clone());
        let token = a.login("alice", "correct horse").await.unwrap();
        let h = headers(&[("cookie", &format!("{SESSION_COOKIE}={token}"))]);
        // Used every 50 s: each use is recorded (a quarter of the idle limit is 15 s), so the
        // session lives on until its maximum.
        for _ in 0..4 {
            clock.advance(Duration::from_secs(50));
            assert!(a.viewer(&h, None).await.is_some());
        }
        clock.advance(Duration::from_secs(1));
        assert!(a.viewer(&h, None).await.is_none(), "past session_max_secs");

        let token = a.login("alice", "correct horse").await.unwrap();
        let h = headers(&[("cookie", &format!("{SESSION_COOKIE}={token}"))]);
        clock.advance(Duration::from_secs(60));
        assert!(a.viewer(&h, None).await.is_some(), "idle exactly the limit");
        clock.advance(Duration::from_secs(61));
        assert!(a.viewer(&h, None).await.is_none(), "idle past the limit");
    }

    #[tokio::test]
    async fn a_changed_password_ends_the_sessions_made_with_the_old_one() {
        let a = auth("");
        let token = a.login("alice", "correct horse").await.unwrap();
        let h = headers(&[("cookie", &format!("{SESSION_COOKIE}={token}"))]);
        assert!(a.viewer(&h, None).await.is_some());
        // The config now has another hash for alice (a new salt, as a new password would
        // have), read by another collector or by this one restarted, on the same store.
        let mut b = auth("");
        b.sessions = a.sessions.clone();
        assert!(b.viewer(&h, None).await.is_none());
        // A cookie that cannot be a token is turned away without a look.
        let forged = headers(&[("cookie", &format!("{SESSION_COOKIE}=x{}", &token[1..]))]);
        assert!(a.viewer(&forged, None).await.is_none());
    }

    #[tokio::test]
    async fn another_collector_on_the_same_store_knows_the_session_and_its_end() {
        // Two collectors with the same config (the same password hash) and store.
        let hash = cheap_hash("correct horse");
        let clock: Arc<dyn Clock> = Arc::new(crate::clock::SystemClock);
        let a = auth_hashed("", clock.clone(), &hash);
        let mut b = auth_hashed("", clock, &hash);
        b.sessions = a.sessions.clone();
        let token = a.login("alice", "correct horse").await.unwrap();
        let h = headers(&[("cookie", &format!("{SESSION_COOKIE}={token}"))]);
        let v = b.viewer(&h, None).await.unwrap();
        assert_eq!(v.user, "alice");
        assert_eq!(b.logout(&h, &v.csrf.unwrap()).await, Logout::Done);
        assert!(a.viewer(&h, None).await.is_none());
    }

    #[tokio::test]
    async fn five_failures_lock_the_name_not_others() {
        let a = auth("");
        for _ in 0..MAX_FAILURES {
            assert_eq!(a.login("alice", "guess").await, Err(LoginError::Wrong));
        }
        assert!(matches!(
            a.login("alice", "correct horse").await,
            Err(LoginError::Throttled(_))
        ));
        // Unknown names are throttled the same way, so the lock does not tell who exists.
        for _ in 0..MAX_FAILURES {
            assert_eq!(a.login("mallory", "guess").await, Err(LoginError::Wrong));
        }
        assert!(matches!(
            a.login("mallory", "guess").await,
            Err(LoginError::Throttled(_))
        ));
    }

    #[tokio::test]
    async fn proxy_header_only_from_trusted_peers() {
        let a = auth("trusted_user_header = \"X-Remote-User\"");
        let h = headers(&[("x-remote-user", "bob")]);
        let proxy: SocketAddr = "10.1.2.3:5000".parse().unwrap();
        let stranger: SocketAddr = "192.0.2.1:5000".parse().unwrap();
        let v = a.viewer(&h, Some(proxy)).await.unwrap();
        assert_eq!(v.user, "bob");
        assert!(v.may_see("b.example") && !v.may_see("a.example"));
        assert!(a.viewer(&h, Some(stranger)).await.is_none());
        assert!(a.viewer(&h, None).await.is_none());
        let unknown = headers(&[("x-remote-user", "carol")]);
        assert!(a.viewer(&unknown, Some(proxy)).await.is_none());
    }

    #[test]
    fn origins_tls_and_shares() {
        let a = auth("");
        let post = |o: &str| headers(&[("host", "stats.example.org:8080"), ("origin", o)]);
        assert!(a.same_origin(&post("http://stats.example.org:8080")));
        assert!(!a.same_origin(&post("http://evil.example:8080")));
        assert!(!a.same_origin(&post("null")));
        assert!(!a.same_origin(&headers(&[("host", "stats.example.org:8080")])));
        assert!(a.same_origin(&headers(&[
            ("host", "stats.example.org:8080"),
            ("referer", "http://stats.example.org:8080/login?next=/")
        ])));

        let proxy: SocketAddr = "10.0.0.1:1".parse().unwrap();
        let stranger: SocketAddr = "192.0.2.1:1".parse().unwrap();
        let https = headers(&[("x-forwarded-proto", "https")]);
        assert!(a.is_secure(&https, Some(proxy)));
        assert!(!a.is_secure(&https, Some(stranger)));
        assert!(!a.is_secure(&HeaderMap::new(), Some(proxy)));
        assert!(a.is_secure(
            &headers(&[("forwarded", "for=1.2.3.4;proto=https")]),
            Some(proxy)
        ));

        assert_eq!(a.share_site("s3cret"), Some("b.example"));
        assert_eq!(a.share_site("s3cre"), None);
        assert_eq!(a.share_site(""), None);
    }
}
