//! Daily salts: created, agreed between collectors, rotated at midnight, and destroyed.
//!
//! One 32-byte salt per calendar day in `privacy.salt_time_zone`, from the operating system's
//! CSPRNG. Salts live in ClickHouse (table `salts`) so that every collector on the same database
//! hashes a visitor alike and a restart on the same day changes nothing. Tomorrow's salt is
//! agreed on a day ahead, so the rotation at 00:00 needs no I/O: when several collectors
//! propose a salt for the same day, the earliest-created (then the smallest) wins, and each
//! collector converges on it at its next refresh, hours before the salt is used. A collector
//! that proposes a salt, or sees one proposed in the last [`SETTLE`], waits that long and reads
//! again before it chooses: collectors that start together on an empty database (or a fleet
//! that lost its salts) all see every proposal of the moment and choose the same one.
//!
//! On a cluster the salts table is replicated to every server (`storage::ddl::EVERYWHERE`); a
//! collector reads it from every server that answers and takes the union, so a proposal is seen
//! once its insert returned, whichever server took it and however far replication is behind, and
//! deletes an expired day on every server that answers (the replicated drop reaches the others
//! when they are back).
//!
//! Yesterday's salt is kept after midnight only for the visit timeout (so that a visit running
//! across midnight keeps its visitor id, see `visitor`), then dropped from memory (zeroed) and
//! from storage (its partition dropped). The salt is never logged or exposed; its age is.

use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::Timestamp;
use rand::TryRng;
use zeroize::Zeroizing;

use crate::cluster::Cluster;
use crate::error::Error;
use crate::sql_text::{date_of_day, day_number};

/// A salt as stored: the day it belongs to, its bytes in hex, and when it was proposed.
#[derive(Clone)]
pub struct StoredSalt {
    pub day: Date,
    pub hex: Zeroizing<String>,
    pub created: Timestamp,
}

/// How long a collector waits after a salt was proposed before it chooses among the proposals:
/// longer than an insert takes, so that a proposal in flight when it read has landed.
pub const SETTLE: Duration = Duration::from_secs(1);

/// Where salts persist. ClickHouse in production; memory for the unit tests of this module.
pub enum SaltStore {
    ClickHouse(Arc<Cluster>),
    Memory(Mutex<Vec<StoredSalt>>),
}

/// A salt in use, with the instants between which it hashes.
struct Salt {
    day: Date,
    bytes: Zeroizing<[u8; 32]>,
    /// 00:00 of `day` in the salt time zone.
    starts: Timestamp,
    /// 00:00 of the next day.
    ends: Timestamp,
    /// When it created (proposed), for the privacy report's "age of the current salt".
    created: Timestamp,
}

/// The salts a hash may use at one instant.
pub struct SaltsAt<'a> {
    pub current: &'a [u8; 32],
    /// Yesterday's salt, only within the visit timeout after midnight.
    pub previous: Option<&'a [u8; 32]>,
}

/// The in-memory salt book, read on every beacon and refreshed by a background task.
pub struct SaltBook {
    tz: TimeZone,
    grace: Duration,
    /// `grace` as jiff's signed duration, converted once (it is used on every hash).
    grace_signed: jiff::SignedDuration,
    salts: RwLock<Vec<Salt>>,
}

impl SaltBook {
    pub fn new(tz: TimeZone, grace: Duration) -> Self {
        Self {
            tz,
            grace,
            grace_signed: jiff::SignedDuration::try_from(grace)
                .unwrap_or(jiff::SignedDuration::MAX),
            salts: RwLock::new(Vec::new()),
        }
    }

    pub fn time_zone(&self) -> &TimeZone {
        &self.tz
    }

    pub fn grace(&self) -> Duration {
        self.grace
    }

    /// The calendar day of an instant in the salt time zone.
    pub fn day_of(&self, at: Timestamp) -> Date {
        at.to_zoned(self.tz.clone()).date()
    }

    /// 00:00 of `day` in the salt zone (DST-safe: jiff picks the first valid instant).
    pub fn start_of(&self, day: Date) -> Timestamp {
        day.to_zoned(self.tz.clone())
            .map(|z| z.timestamp())
            .unwrap_or(Timestamp::UNIX_EPOCH)
    }

    /// Runs `f` with the salts valid at `now`; `None` when no salt covers `now` (store never reached).
    pub fn with_salts<R>(&self, now: Timestamp, f: impl FnOnce(SaltsAt<'_>) -> R) -> Option<R> {
        let salts = self.salts.read().unwrap_or_else(|e| e.into_inner());
        let current = salts.iter().find(|s| s.starts <= now && now < s.ends)?;
        let grace = self.grace_signed;
        let previous = salts.iter().find(|s| {
            s.ends == current.starts && now < s.ends.checked_add(grace).unwrap_or(s.ends)
        });
        Some(f(SaltsAt {
            current: &current.bytes,
            previous: previous.map(|s| &*s.bytes),
        }))
    }

    /// Whether `now` lies within the visit timeout after a midnight (yesterday's salt still held).
    pub fn in_grace(&self, now: Timestamp) -> Option<Timestamp> {
        let midnight = self.start_of(self.day_of(now));
        let grace = self.grace_signed;
        (now < midnight.checked_add(grace).ok()?).then_some(midnight)
    }

    /// Days whose salts are in memory now (for the salt-deletion test and the privacy report).
    pub fn days_held(&self) -> Vec<Date> {
        let salts = self.salts.read().unwrap_or_else(|e| e.into_inner());
        salts.iter().map(|s| s.day).collect()
    }

    /// Age of the salt hashing at `now` (never the salt itself).
    pub fn current_age(&self, now: Timestamp) -> Option<jiff::SignedDuration> {
        let salts = self.salts.read().unwrap_or_else(|e| e.into_inner());
        let s = salts.iter().find(|s| s.starts <= now && now < s.ends)?;
        Some(now.duration_since(s.created))
    }

    /// Brings storage and memory in line with `now`: proposes today's and tomorrow's salts if
    /// missing, adopts the agreed ones, and deletes what has outlived its purpose everywhere.
    pub async fn refresh(&self, store: &SaltStore, now: Timestamp) -> Result<(), Error> {
        let today = self.day_of(now);
        let yesterday = today.yesterday().map_err(|e| Error::Salt(e.to_string()))?;
        let tomorrow = today.tomorrow().map_err(|e| Error::Salt(e.to_string()))?;
        let grace_over = self.in_grace(now).is_none();

        let mut stored = store.load(yesterday).await?;
        let mut proposed = false;
        for day in [today, tomorrow] {
            if !stored.iter().any(|s| s.day == day) {
                store
                    .insert(&StoredSalt {
                        day,
                        hex: Zeroizing::new(hex::encode(*fresh_salt()?)),
                        created: now,
                    })
                    .await?;
                proposed = true;
            }
        }
        let settle = store.settle();
        let young = stored.iter().any(|s| {
            (s.day == today || s.day == tomorrow)
                && now.duration_since(s.created).unsigned_abs() < settle
        });
        if proposed || young {
            // Another collector may be proposing for the same day right now: give its insert
            // time to land, then read back and choose among all proposals.
            tokio::time::sleep(settle).await;
            stored = store.load(yesterday).await?;
        }

        // Storage: anything older than yesterday always goes (also days no refresh saw as
        // yesterday: all collectors down for a day, or storage away past the grace), and
        // yesterday once the grace is over. Old days are listed without reading their salts.
        let mut expired: Vec<Date> = store.days_before(yesterday).await?;
        if grace_over && stored.iter().any(|s| s.day == yesterday) {
            expired.push(yesterday);
        }
        expired.sort();
        expired.dedup();
        for day in &expired {
            store.delete(*day).await?;
        }
        if let SaltStore::ClickHouse(_) = store {
            for day in &expired {
                tracing::info!(salt_day = %day, "deleted expired salt from storage");
            }
        }

        // Memory: the agreed salt per day we may still use.
        let mut keep: Vec<Date> = vec![today, tomorrow];
        if !grace_over {
            keep.push(yesterday);
        }
        let mut next: Vec<Salt> = Vec::with_capacity(3);
        for day in keep {
            let agreed = stored
                .iter()
                .filter(|s| s.day == day)
                .min_by(|a, b| (a.created, a.hex.as_str()).cmp(&(b.created, b.hex.as_str())));
            if let Some(s) = agreed {
                next.push(self.salt_from(s)?);
            }
        }
        // Replacing the vector drops the old salts, and `Zeroizing` wipes their bytes.
        *self.salts.write().unwrap_or_else(|e| e.into_inner()) = next;
        Ok(())
    }

    /// Drops from memory every salt that may no longer hash, without touching storage: used
    /// when storage is unreachable, so that an outage never keeps a salt alive past its time.
    pub fn forget_expired(&self, now: Timestamp) {
        let grace = self.grace_signed;
        let mut salts = self.salts.write().unwrap_or_else(|e| e.into_inner());
        salts.retain(|s| now < s.ends.checked_add(grace).unwrap_or(s.ends));
    }

    /// Last resort when storage is unreachable and no salt covers today: a local salt, so that
    /// beacons are still accepted. Collectors may then disagree for that day; this is logged.
    pub fn ensure_local_salt(&self, now: Timestamp) -> Result<bool, Error> {
        if self.with_salts(now, |_| ()).is_some() {
            return Ok(false);
        }
        let day = self.day_of(now);
        let salt = self.salt_from(&StoredSalt {
            day,
            hex: Zeroizing::new(hex::encode(*fresh_salt()?)),
            created: now,
        })?;
        self.salts
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(salt);
        tracing::warn!(salt_day = %day, "salt store unreachable: using a local salt for today");
        Ok(true)
    }

    /// When the next refresh must happen at the latest: the next midnight or end of grace.
    pub fn next_boundary(&self, now: Timestamp) -> Timestamp {
        let today = self.day_of(now);
        let midnight = self.start_of(today);
        let grace = self.grace_signed;
        let grace_end = midnight.checked_add(grace).unwrap_or(midnight);
        if now < grace_end {
            return grace_end;
        }
        today.tomorrow().map(|d| self.start_of(d)).unwrap_or(now)
    }

    fn salt_from(&self, s: &StoredSalt) -> Result<Salt, Error> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(s.hex.as_bytes(), &mut *bytes)
            .map_err(|_| Error::Salt(format!("stored salt for {} is malformed", s.day)))?;
        let starts = self.start_of(s.day);
        let ends = s
            .day
            .tomorrow()
            .map(|d| self.start_of(d))
            .map_err(|e| Error::Salt(e.to_string()))?;
        Ok(Salt {
            day: s.day,
            bytes,
            starts,
            ends,
            created: s.created,
        })
    }
}

/// 32 bytes from the operating system's CSPRNG.
fn fresh_salt() -> Result<Zeroizing<[u8; 32]>, Error> {
    let mut bytes = Zeroizing::new([0u8; 32]);
    rand::rngs::SysRng
        .try_fill_bytes(&mut *bytes)
        .map_err(|e| Error::Salt(format!("operating system RNG failed: {e}")))?;
    Ok(bytes)
}

/// A row of the `salts` table. `day` is a ClickHouse `Date` (days since 1970-01-01).
#[derive(clickhouse::Row, serde::Serialize, serde::Deserialize)]
struct SaltRow {
    day: u16,
    salt: String,
    created: u32,
}

impl SaltStore {
    /// Salts for `from` and later days.
    pub async fn load(&self, from: Date) -> Result<Vec<StoredSalt>, Error> {
        match self {
            SaltStore::Memory(m) => Ok(m
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .filter(|s| s.day >= from)
                .cloned()
                .collect()),
            SaltStore::ClickHouse(cluster) => {
                let from = from.to_string();
                let rows: Vec<SaltRow> = cluster
                    .from_every_server(|c| {
                        c.query("SELECT day, salt, created FROM salts WHERE day >= toDate(?)")
                            .bind(from.as_str())
                            .fetch_all::<SaltRow>()
                    })
                    .await?;
                Ok(rows
                    .into_iter()
                    .map(|r| StoredSalt {
                        day: date_of_day(r.day),
                        hex: Zeroizing::new(r.salt),
                        created: Timestamp::from_second(i64::from(r.created))
                            .unwrap_or(Timestamp::UNIX_EPOCH),
                    })
                    .collect())
            }
        }
    }

    /// Days before `day` that still have a salt stored (the salts themselves are not read).
    pub async fn days_before(&self, day: Date) -> Result<Vec<Date>, Error> {
        match self {
            SaltStore::Memory(m) => Ok(m
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .map(|s| s.day)
                .filter(|d| *d < day)
                .collect()),
            SaltStore::ClickHouse(cluster) => {
                let day = day.to_string();
                let mut days: Vec<u16> = cluster
                    .from_every_server(|c| {
                        c.query("SELECT DISTINCT day FROM salts WHERE day < toDate(?)")
                            .bind(day.as_str())
                            .fetch_all::<u16>()
                    })
                    .await?;
                days.sort_unstable();
                days.dedup();
                Ok(days.into_iter().map(date_of_day).collect())
            }
        }
    }

    pub async fn insert(&self, salt: &StoredSalt) -> Result<(), Error> {
        match self {
            SaltStore::Memory(m) => {
                m.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(salt.clone());
                Ok(())
            }
            SaltStore::ClickHouse(cluster) => {
                let row = SaltRow {
                    day: day_number(salt.day),
                    salt: salt.hex.to_string(),
                    created: u32::try_from(salt.created.as_second()).unwrap_or(0),
                };
                let result = cluster
                    .run_anywhere(|client| {
                        let row = &row;
                        async move {
                            let mut insert = client.insert::<SaltRow>("salts").await?;
                            insert.write(row).await?;
                            insert.end().await
                        }
                    })
                    .await;
                // ClickHouse may quote rejected input in a parse error; here that input is the
                // salt, so only the error's code is passed on (and so may reach a log line).
                result.map_err(|e| {
                    Error::Salt(format!(
                        "inserting a salt failed ({})",
                        crate::clickhouse_code::describe(&e)
                    ))
                })
            }
        }
    }

    /// Deletes every salt of `day`. In ClickHouse the day is a partition, so the salt's data
    /// part is dropped whole rather than rewritten by a mutation.
    pub async fn delete(&self, day: Date) -> Result<(), Error> {
        match self {
            SaltStore::Memory(m) => {
                m.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .retain(|s| s.day != day);
                Ok(())
            }
            SaltStore::ClickHouse(cluster) => {
                let sql = format!("ALTER TABLE salts DROP PARTITION '{day}'");
                cluster
                    .from_every_server(|c| {
                        let sql = sql.clone();
                        async move { c.query(&sql).execute().await.map(|()| Vec::<()>::new()) }
                    })
                    .await?;
                Ok(())
            }
        }
    }

    /// How long to wait after a proposal before choosing (see [`SETTLE`]).
    fn settle(&self) -> Duration {
        match self {
            SaltStore::ClickHouse(_) => SETTLE,
            SaltStore::Memory(_) => Duration::ZERO,
        }
    }
}

/// Seconds since today's agreed salt was created, read from storage (for the CLI privacy
/// report); `None` when there is none yet or storage cannot be read. Only `created` is read.
pub async fn current_salt_age(config: &crate::config::Config, cluster: &Cluster) -> Option<i64> {
    #[derive(serde::Deserialize, clickhouse::Row)]
    struct Created {
        created: u32,
        n: u64,
    }
    let now = Timestamp::now();
    let today = now
        .to_zoned(config.privacy.salt_time_zone.clone())
        .date()
        .to_string();
    let row: Created = cluster
        .run_anywhere(|c| {
            let today = &today;
            async move {
                c.query("SELECT toUInt32(min(created)) AS created, count() AS n FROM salts WHERE day = toDate(?)")
                    .bind(today.as_str())
                    .fetch_one()
                    .await
            }
        })
        .await
        .ok()?;
    (row.n > 0).then(|| now.as_second() - i64::from(row.created))
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::ToSpan;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn book() -> SaltBook {
        SaltBook::new(
            TimeZone::get("Europe/Amsterdam").unwrap(),
            Duration::from_secs(30 * 60),
        )
    }

    fn memory() -> SaltStore {
        SaltStore::Memory(Mutex::new(Vec::new()))
    }

    fn current(book: &SaltBook, now: Timestamp) -> [u8; 32] {
        book.with_salts(now, |s| *s.current)
            .expect("a salt covers now")
    }

    #[tokio::test]
    async fn rotates_at_local_midnight_and_keeps_previous_only_for_grace() {
        let (b, store) = (book(), memory());
        // 23:50 in Amsterdam (CET, UTC+1) on 2026-11-23.
        let before = ts("2026-11-23T22:50:00Z");
        b.refresh(&store, before).await.unwrap();
        let day1 = current(&b, before);
        // Tomorrow's salt is already agreed, so the rotation needs no refresh.
        let after = ts("2026-11-23T23:05:00Z");
        let day2 = current(&b, after);
        assert_ne!(day1, day2);
        assert_eq!(
            b.with_salts(after, |s| s.previous.copied()).unwrap(),
            Some(day1)
        );
        // The grace is the visit timeout: at 00:31 yesterday's salt no longer hashes...
        let late = ts("2026-11-23T23:31:00Z");
        assert_eq!(b.with_salts(late, |s| s.previous.is_some()), Some(false));
        // ...and a refresh removes it from memory and storage.
        b.refresh(&store, late).await.unwrap();
        let held = b.days_held();
        assert!(!held.contains(&Date::constant(2026, 11, 23)), "{held:?}");
        let stored = store.load(Date::constant(2000, 1, 1)).await.unwrap();
        assert!(stored.iter().all(|s| s.day >= Date::constant(2026, 11, 24)));
    }

    #[tokio::test]
    async fn same_day_restart_reuses_the_stored_salt() {
        let store = memory();
        let now = ts("2026-11-23T10:00:00Z");
        let first = book();
        first.refresh(&store, now).await.unwrap();
        let restarted = book();
        restarted
            .refresh(&store, now.checked_add(3.hours()).unwrap())
            .await
            .unwrap();
        assert_eq!(current(&first, now), current(&restarted, now));
    }

    #[tokio::test]
    async fn concurrent_proposals_converge_on_the_earliest() {
        let store = memory();
        let (a, b) = (book(), book());
        let now = ts("2026-11-23T10:00:00Z");
        // Both propose for a day nobody has a salt for yet (simulated by separate proposals).
        let day = Date::constant(2026, 11, 23);
        for (created, fill) in [(now, "aa"), (now.checked_add(1.second()).unwrap(), "bb")] {
            store
                .insert(&StoredSalt {
                    day,
                    hex: Zeroizing::new(fill.repeat(32)),
                    created,
                })
                .await
                .unwrap();
        }
        a.refresh(&store, now).await.unwrap();
        b.refresh(&store, now).await.unwrap();
        assert_eq!(current(&a, now), [0xaa; 32]);
        assert_eq!(current(&b, now), [0xaa; 32]);
    }

    #[tokio::test]
    async fn dst_days_rotate_at_local_midnight() {
        // 2026-03-29 is 23 hours long in Amsterdam; midnight after it is 22:00 UTC.
        let (b, store) = (book(), memory());
        let t = ts("2026-03-29T21:59:00Z");
        b.refresh(&store, t).await.unwrap();
        let day = current(&b, t);
        assert_ne!(day, current(&b, ts("2026-03-29T22:00:00Z")));
        assert_eq!(
            b.day_of(ts("2026-03-29T22:00:00Z")),
            Date::constant(2026, 3, 30)
        );
    }

    #[tokio::test]
    async fn without_any_salt_there_is_no_hash_until_a_local_one_is_made() {
        let b = book();
        let now = ts("2026-11-23T10:00:00Z");
        assert!(b.with_salts(now, |_| ()).is_none());
        assert!(b.ensure_local_salt(now).unwrap());
        assert!(b.with_salts(now, |_| ()).is_some());
        assert!(!b.ensure_local_salt(now).unwrap());
    }

    #[tokio::test]
    async fn forget_expired_drops_salts_without_storage() {
        let (b, store) = (book(), memory());
        b.refresh(&store, ts("2026-11-23T22:50:00Z")).await.unwrap();
        b.forget_expired(ts("2026-11-24T23:40:00Z"));
        // 00:40 on the 25th: the 23rd and 24th are past their grace; only the 25th's salt is
        // not held either, because the refresh at 23:50 on the 23rd only fetched up to the 24th.
        assert!(b.days_held().is_empty(), "{:?}", b.days_held());
    }

    #[test]
    fn date_round_trip() {
        let d = Date::constant(2026, 11, 23);
        assert_eq!(
            crate::sql_text::date_of_day(crate::sql_text::day_number(d)),
            d
        );
    }

    #[test]
    fn next_boundary_is_grace_end_then_midnight() {
        let b = book();
        assert_eq!(
            b.next_boundary(ts("2026-11-23T23:10:00Z")),
            ts("2026-11-23T23:30:00Z")
        );
        assert_eq!(
            b.next_boundary(ts("2026-11-24T10:00:00Z")),
            ts("2026-11-24T23:00:00Z")
        );
    }
}
