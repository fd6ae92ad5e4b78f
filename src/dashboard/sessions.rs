//! Where the dashboard's login sessions live: in ClickHouse (`dashboard_sessions`, migration
//! 0012), so that every collector on the database knows them and a restart logs no one out; in
//! memory for unit tests. And their end: a day of sessions is dropped once every session created
//! on it has reached `dashboard.session_max_secs`.
//!
//! A session is only ever appended to: a row when it is created, one each time it is used again
//! [`touch_after`] its last recorded use (so that every collector sees the same idle time), one
//! when it is ended by logging out. Reading a session folds its rows (first creation, latest
//! use, ended if any row says so), so two collectors writing at once cannot lose each other's
//! row. Rows are found by the SHA-256 of the token; the token itself is only in the browser's
//! cookie and in the request that carries it.
//!
//! On a cluster every server holds the whole table; a session is read from every server that
//! answers and the rows are joined, so it is known once its insert returned, whichever server
//! took it and however far replication is behind (as the salts are).

use std::sync::Arc;
#[cfg(test)]
use std::sync::Mutex;
use std::time::Duration;

use jiff::{Timestamp, ToSpan};
use serde::{Deserialize, Serialize};

use crate::clock::Clock;
use crate::cluster::Cluster;

/// Longest wait between two recorded uses of a session that is being used (shorter when the
/// idle limit is short, see [`touch_after`]). A session can so expire up to this long before
/// its idle limit has passed since its very last request.
pub const TOUCH: Duration = Duration::from_secs(60);

/// How often expired days are looked for.
pub const CLEANUP_INTERVAL: Duration = Duration::from_secs(3600);

/// How long after its last recorded use a session's use is recorded again: [`TOUCH`], or a
/// quarter of the idle limit when that is shorter.
pub fn touch_after(idle: Duration) -> Duration {
    TOUCH.min(idle / 4)
}

/// What a session keeps of the password it was made with: 16 hex digits of a hash of the
/// user's configured password hash (itself salted), so that changing the password in the config
/// ends the sessions made with the old one, and the stored value gives nothing to guess from.
pub fn credential_of(password_hash: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("tally session credential\0{password_hash}").as_bytes());
    hex::encode(&digest[..8])
}

/// A session that is still valid, as `tally sessions` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Live {
    /// Hex SHA-256 of its token (its first digits tell sessions apart in a list).
    pub token_sha256: String,
    pub session: Session,
}

/// One row of `dashboard_sessions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, clickhouse::Row)]
pub struct SessionRow {
    /// Hex SHA-256 of the cookie's token.
    pub token_sha256: String,
    pub user: String,
    /// A fingerprint of the user's password hash at the login (see `auth`): a session made
    /// with a password that has since changed is not accepted.
    pub credential: String,
    /// Seconds since the epoch (UTC), the same in every row of a session (it chooses the
    /// partition, so that a session's rows are dropped together).
    pub created: u32,
    pub seen: u32,
    pub ended: u8,
}

/// A session's rows folded together.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, clickhouse::Row)]
pub struct Session {
    pub user: String,
    pub credential: String,
    pub created: u32,
    pub seen: u32,
    pub ended: u8,
}

impl Session {
    fn fold(rows: impl IntoIterator<Item = Session>) -> Option<Session> {
        rows.into_iter().reduce(|a, b| Session {
            // One session has one user and credential; should two rows ever disagree, the
            // first is kept.
            user: a.user,
            credential: a.credential,
            created: a.created.min(b.created),
            seen: a.seen.max(b.seen),
            ended: a.ended.max(b.ended),
        })
    }

    /// Whether the session is still valid at `now` (seconds): not ended, used within `idle`,
    /// begun within `max`, and made with the user's password hash of now (`password_hash`:
    /// `None` for a user no longer configured, or without a password).
    pub fn is_valid(
        &self,
        now: u32,
        idle: Duration,
        max: Duration,
        password_hash: Option<&str>,
    ) -> bool {
        let since = |t: u32| u64::from(now.saturating_sub(t));
        self.ended == 0
            && since(self.seen) <= idle.as_secs()
            && since(self.created) <= max.as_secs()
            && password_hash.map(credential_of).as_deref() == Some(self.credential.as_str())
    }

    /// The row that records a use of this session at `seen` (seconds), or its end.
    pub fn row(&self, token_sha256: &str, seen: u32, ended: bool) -> SessionRow {
        SessionRow {
            token_sha256: token_sha256.to_string(),
            user: self.user.clone(),
            credential: self.credential.clone(),
            created: self.created,
            seen,
            ended: u8::from(ended),
        }
    }
}

pub enum SessionStore {
    #[cfg(test)]
    Memory(Mutex<Vec<SessionRow>>),
    ClickHouse(Arc<Cluster>),
}

#[cfg(test)]
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Seconds since the epoch as ClickHouse's `DateTime` holds them.
pub fn seconds(t: Timestamp) -> u32 {
    u32::try_from(t.as_second().max(0)).unwrap_or(u32::MAX)
}

impl SessionStore {
    #[cfg(test)]
    pub fn memory() -> SessionStore {
        SessionStore::Memory(Mutex::new(Vec::new()))
    }

    pub async fn insert(&self, row: SessionRow) -> Result<(), clickhouse::error::Error> {
        match self {
            #[cfg(test)]
            SessionStore::Memory(m) => {
                lock(m).push(row);
                Ok(())
            }
            SessionStore::ClickHouse(cluster) => {
                cluster
                    .run_anywhere(|client| {
                        let row = &row;
                        async move {
                            let mut insert =
                                client.insert::<SessionRow>("dashboard_sessions").await?;
                            insert.write(row).await?;
                            insert.end().await
                        }
                    })
                    .await
            }
        }
    }

    /// The session whose token has this SHA-256 (hex), its rows folded; `None` if there is none.
    pub async fn find(
        &self,
        token_sha256: &str,
    ) -> Result<Option<Session>, clickhouse::error::Error> {
        match self {
            #[cfg(test)]
            SessionStore::Memory(m) => Ok(Session::fold(
                lock(m)
                    .iter()
                    .filter(|r| r.token_sha256 == token_sha256)
                    .map(|r| Session {
                        user: r.user.clone(),
                        credential: r.credential.clone(),
                        created: r.created,
                        seen: r.seen,
                        ended: r.ended,
                    })
                    .collect::<Vec<_>>(),
            )),
            SessionStore::ClickHouse(cluster) => {
                let rows = cluster
                    .from_every_server(|c| async move {
                        c.query(
                            "SELECT user, credential, toUInt32(min(created)) AS created, \
                             toUInt32(max(seen)) AS seen, max(ended) AS ended \
                             FROM dashboard_sessions WHERE token_sha256 = ? \
                             GROUP BY user, credential",
                        )
                        .bind(token_sha256)
                        .fetch_all::<Session>()
                        .await
                    })
                    .await?;
                Ok(Session::fold(rows))
            }
        }
    }

    /// The sessions valid at `now` under these limits, for a user still configured with the
    /// password hash it was made with (`hash_of`), oldest login first.
    pub async fn live(
        &self,
        now: Timestamp,
        idle: Duration,
        max: Duration,
        hash_of: impl Fn(&str) -> Option<String>,
    ) -> Result<Vec<Live>, clickhouse::error::Error> {
        #[derive(Deserialize, clickhouse::Row)]
        struct Row {
            token_sha256: String,
            user: String,
            credential: String,
            created: u32,
            seen: u32,
            ended: u8,
        }
        let rows: Vec<Row> = match self {
            #[cfg(test)]
            SessionStore::Memory(m) => lock(m)
                .iter()
                .map(|r| Row {
                    token_sha256: r.token_sha256.clone(),
                    user: r.user.clone(),
                    credential: r.credential.clone(),
                    created: r.created,
                    seen: r.seen,
                    ended: r.ended,
                })
                .collect(),
            SessionStore::ClickHouse(cluster) => {
                cluster
                    .from_every_server(|c| async move {
                        c.query(
                            "SELECT token_sha256, user, credential, \
                             toUInt32(min(created)) AS created, toUInt32(max(seen)) AS seen, \
                             max(ended) AS ended FROM dashboard_sessions \
                             GROUP BY token_sha256, user, credential",
                        )
                        .fetch_all::<Row>()
                        .await
                    })
                    .await?
            }
        };
        let mut by_token: std::collections::BTreeMap<String, Vec<Session>> = Default::default();
        for r in rows {
            by_token.entry(r.token_sha256).or_default().push(Session {
                user: r.user,
                credential: r.credential,
                created: r.created,
                seen: r.seen,
                ended: r.ended,
            });
        }
        let now = seconds(now);
        let mut live: Vec<Live> = by_token
            .into_iter()
            .filter_map(|(token_sha256, rows)| {
                let session = Session::fold(rows)?;
                let hash = hash_of(&session.user);
                let valid = session.is_valid(now, idle, max, hash.as_deref());
                valid.then_some(Live {
                    token_sha256,
                    session,
                })
            })
            .collect();
        live.sort_by_key(|l| l.session.created);
        Ok(live)
    }

    /// Ends these sessions (a row each saying so), at every collector.
    pub async fn end(&self, live: &[Live], now: Timestamp) -> Result<(), clickhouse::error::Error> {
        for l in live {
            self.insert(l.session.row(&l.token_sha256, seconds(now), true))
                .await?;
        }
        Ok(())
    }

    /// Drops the days (UTC, by creation) before `first_kept`, and says which they were
    /// (`YYYYMMDD`).
    pub async fn drop_days_before(
        &self,
        first_kept: jiff::civil::Date,
    ) -> Result<Vec<String>, clickhouse::error::Error> {
        let limit = first_kept.strftime("%Y%m%d").to_string();
        match self {
            #[cfg(test)]
            SessionStore::Memory(m) => {
                let mut rows = lock(m);
                let mut days: Vec<String> = rows
                    .iter()
                    .map(|r| day_of(r.created))
                    .filter(|d| *d < limit)
                    .collect();
                days.sort();
                days.dedup();
                rows.retain(|r| day_of(r.created) >= limit);
                Ok(days)
            }
            SessionStore::ClickHouse(cluster) => {
                let mut days: Vec<u32> = cluster
                    .from_every_server(|c| {
                        let limit = limit.clone();
                        async move {
                            c.query(
                                "SELECT DISTINCT toYYYYMMDD(created) FROM dashboard_sessions \
                                 WHERE toYYYYMMDD(created) < toUInt32(?)",
                            )
                            .bind(limit.as_str())
                            .fetch_all::<u32>()
                            .await
                        }
                    })
                    .await?;
                days.sort_unstable();
                days.dedup();
                let days: Vec<String> = days.iter().map(u32::to_string).collect();
                for day in &days {
                    let sql = format!("ALTER TABLE dashboard_sessions DROP PARTITION ID '{day}'");
                    cluster
                        .from_every_server(|c| {
                            let sql = sql.clone();
                            async move { c.query(&sql).execute().await.map(|()| Vec::<()>::new()) }
                        })
                        .await?;
                }
                Ok(days)
            }
        }
    }
}

/// `YYYYMMDD` (UTC) of a time in seconds, as ClickHouse names the partition.
#[cfg(test)]
fn day_of(seconds: u32) -> String {
    Timestamp::from_second(i64::from(seconds))
        .unwrap_or(Timestamp::UNIX_EPOCH)
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date()
        .strftime("%Y%m%d")
        .to_string()
}

/// The first day (UTC) whose sessions may still be live at `now`: a session created on an
/// earlier day was created at least `max` before now, so it has ended.
pub fn first_kept(now: Timestamp, max: Duration) -> jiff::civil::Date {
    let secs = i64::try_from(max.as_secs()).unwrap_or(i64::MAX);
    now.checked_sub(secs.seconds())
        .unwrap_or(Timestamp::UNIX_EPOCH)
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date()
}

/// Drops the days of sessions that have all expired, every [`CLEANUP_INTERVAL`], forever (the
/// server aborts it at shutdown).
pub async fn maintain(store: Arc<SessionStore>, max: Duration, clock: Arc<dyn Clock>) {
    loop {
        match store.drop_days_before(first_kept(clock.now(), max)).await {
            Ok(days) => {
                for day in days {
                    tracing::info!(partition = %day, "dashboard sessions: expired day dropped");
                }
            }
            Err(e) => tracing::warn!(
                error = %crate::clickhouse_code::describe(&e),
                "dashboard sessions: dropping expired days failed; retried next run"
            ),
        }
        tokio::time::sleep(CLEANUP_INTERVAL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(token: &str, created: u32, seen: u32, ended: u8) -> SessionRow {
        SessionRow {
            token_sha256: token.into(),
            user: "alice".into(),
            credential: "c".into(),
            created,
            seen,
            ended,
        }
    }

    #[tokio::test]
    async fn rows_fold_to_first_creation_latest_use_and_any_end() {
        let s = SessionStore::memory();
        assert_eq!(s.find("a").await.unwrap(), None);
        s.insert(row("a", 100, 100, 0)).await.unwrap();
        s.insert(row("a", 100, 300, 0)).await.unwrap();
        s.insert(row("a", 100, 200, 0)).await.unwrap();
        s.insert(row("b", 50, 50, 0)).await.unwrap();
        let a = s.find("a").await.unwrap().unwrap();
        assert_eq!((a.created, a.seen, a.ended), (100, 300, 0));
        s.insert(row("a", 100, 250, 1)).await.unwrap();
        assert_eq!(s.find("a").await.unwrap().unwrap().ended, 1);
        assert_eq!(s.find("b").await.unwrap().unwrap().ended, 0);
    }

    #[tokio::test]
    async fn a_day_is_dropped_once_its_last_session_has_reached_the_limit() {
        let s = SessionStore::memory();
        let t = |iso: &str| iso.parse::<Timestamp>().unwrap();
        // Created on 1 and 2 December.
        s.insert(row("a", seconds(t("2026-12-01T23:59:00Z")), 0, 0))
            .await
            .unwrap();
        s.insert(row("b", seconds(t("2026-12-02T00:00:00Z")), 0, 0))
            .await
            .unwrap();
        let max = Duration::from_secs(3 * 86_400);
        // On 4 December at 23:59:30 a session of 1 December 23:59:30 may still be live.
        let early = first_kept(t("2026-12-04T23:59:30Z"), max);
        assert!(s.drop_days_before(early).await.unwrap().is_empty());
        // A minute later every session of 1 December is older than the limit.
        let later = first_kept(t("2026-12-05T00:00:30Z"), max);
        assert_eq!(s.drop_days_before(later).await.unwrap(), vec!["20261201"]);
        assert!(s.find("a").await.unwrap().is_none());
        assert!(s.find("b").await.unwrap().is_some());
    }

    #[tokio::test]
    async fn live_sessions_are_those_not_ended_expired_or_of_a_changed_password() {
        let s = SessionStore::memory();
        let now: Timestamp = "2026-12-06T12:00:00Z".parse().unwrap();
        let at = |ago: u32| seconds(now) - ago;
        let c = credential_of("hash-a");
        let row =
            |token: &str, user: &str, cred: &str, created: u32, seen: u32, ended: u8| SessionRow {
                token_sha256: token.into(),
                user: user.into(),
                credential: cred.into(),
                created,
                seen,
                ended,
            };
        for r in [
            row("live", "alice", &c, at(500), at(10), 0),
            row("live", "alice", &c, at(500), at(400), 0),
            row("ended", "alice", &c, at(300), at(300), 0),
            row("ended", "alice", &c, at(300), at(200), 1),
            row("idle", "alice", &c, at(900), at(700), 0),
            row("old", "alice", &c, at(5000), at(5), 0),
            row("rehashed", "alice", "other", at(100), at(100), 0),
            row("gone", "mallory", &c, at(100), at(100), 0),
        ] {
            s.insert(r).await.unwrap();
        }
        let hash_of = |u: &str| (u == "alice").then(|| "hash-a".to_string());
        let idle = Duration::from_secs(600);
        let max = Duration::from_secs(3600);
        let live = s.live(now, idle, max, hash_of).await.unwrap();
        assert_eq!(
            live.iter()
                .map(|l| l.token_sha256.as_str())
                .collect::<Vec<_>>(),
            ["live"]
        );
        assert_eq!(
            (live[0].session.created, live[0].session.seen),
            (at(500), at(10))
        );
        s.end(&live, now).await.unwrap();
        assert!(s.live(now, idle, max, hash_of).await.unwrap().is_empty());
    }

    #[test]
    fn use_is_recorded_at_most_a_minute_apart() {
        assert_eq!(touch_after(Duration::from_secs(3 * 86_400)), TOUCH);
        assert_eq!(touch_after(Duration::from_secs(20)), Duration::from_secs(5));
    }
}
