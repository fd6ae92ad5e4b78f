//! The visitor id: 64 bits of SHA-256(daily salt ‖ site ‖ client IP ‖ user agent).
//!
//! The exact byte layout hashed is: the 32 salt bytes, the site's domain (UTF-8), one 0x00
//! byte, the client address as 16 bytes (IPv4 as its IPv4-mapped IPv6 form, so a dual-stack
//! socket cannot split a visitor), then the user agent (UTF-8). The first 8 bytes of the digest,
//! big-endian, are the id. The IP and user agent go into the hash and nowhere else.
//!
//! Across midnight: within the visit timeout after a rotation, a visitor whose id under
//! yesterday's salt was seen within the timeout keeps that id, so a visit running across
//! midnight is not cut in two. "Seen" comes from ClickHouse (so it holds across collectors and
//! restarts) plus this collector's own beacons since the last look. After the grace, yesterday's
//! salt is gone and the set is cleared.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use jiff::Timestamp;
use sha2::{Digest, Sha256};

use crate::salt::SaltBook;

/// Computes the id for one salt.
pub fn visitor_id(salt: &[u8; 32], site: &str, ip: IpAddr, user_agent: &str) -> u64 {
    let ip16 = match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    };
    let mut h = Sha256::new();
    h.update(salt);
    h.update(site.as_bytes());
    h.update([0u8]);
    h.update(ip16);
    h.update(user_agent.as_bytes());
    let digest = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

/// Visitors seen shortly before the last midnight, by their id under yesterday's salt.
struct Carry {
    /// The midnight this set belongs to; `None` until loaded.
    midnight: Option<Timestamp>,
    /// id → last time seen (unix seconds).
    last_seen: HashMap<u64, i64>,
}

pub struct Visitors {
    pub book: SaltBook,
    carry: Mutex<Carry>,
    /// `[from, until)`: instants known to lie outside any grace after midnight, so that
    /// [`Visitors::carry_needed`] answers most beacons without time-zone arithmetic.
    quiet: Mutex<Option<(Timestamp, Timestamp)>>,
}

impl Visitors {
    pub fn new(book: SaltBook) -> Self {
        Self {
            book,
            carry: Mutex::new(Carry {
                midnight: None,
                last_seen: HashMap::new(),
            }),
            quiet: Mutex::new(None),
        }
    }

    /// The midnight whose carry set must be loaded before hashing at `now`, if any.
    pub fn carry_needed(&self, now: Timestamp) -> Option<Timestamp> {
        {
            let quiet = self.quiet.lock().unwrap_or_else(|e| e.into_inner());
            if quiet.is_some_and(|(from, until)| from <= now && now < until) {
                return None;
            }
        }
        let Some(midnight) = self.book.in_grace(now) else {
            // Past today's grace: nothing is needed until the next midnight.
            let until = self.book.next_boundary(now);
            *self.quiet.lock().unwrap_or_else(|e| e.into_inner()) = Some((now, until));
            return None;
        };
        let carry = self.carry.lock().unwrap_or_else(|e| e.into_inner());
        (carry.midnight != Some(midnight)).then_some(midnight)
    }

    /// Installs (or refreshes) the set of ids seen since `midnight - timeout`, from storage.
    pub fn load_carry(&self, midnight: Timestamp, seen: impl IntoIterator<Item = (u64, i64)>) {
        let mut carry = self.carry.lock().unwrap_or_else(|e| e.into_inner());
        if carry.midnight != Some(midnight) {
            carry.last_seen.clear();
            carry.midnight = Some(midnight);
        }
        for (id, at) in seen {
            let e = carry.last_seen.entry(id).or_insert(at);
            *e = (*e).max(at);
        }
    }

    /// Clears the carry set once the grace is over (yesterday's ids are then useless).
    pub fn clear_carry_after_grace(&self, now: Timestamp) {
        if self.book.in_grace(now).is_none() {
            let mut carry = self.carry.lock().unwrap_or_else(|e| e.into_inner());
            carry.last_seen = HashMap::new();
            carry.midnight = None;
        }
    }

    /// The visitor id for a beacon at `now`, or `None` when no salt covers `now`.
    pub fn id(&self, site: &str, ip: IpAddr, user_agent: &str, now: Timestamp) -> Option<u64> {
        let (current, previous) = self.book.with_salts(now, |s| {
            (
                visitor_id(s.current, site, ip, user_agent),
                s.previous.map(|p| visitor_id(p, site, ip, user_agent)),
            )
        })?;
        let Some(previous) = previous else {
            return Some(current);
        };
        let timeout = i64::try_from(self.book.grace().as_secs()).unwrap_or(i64::MAX);
        let now_s = now.as_second();
        let mut carry = self.carry.lock().unwrap_or_else(|e| e.into_inner());
        match carry.last_seen.get_mut(&previous) {
            Some(last) if now_s - *last <= timeout => {
                *last = now_s.max(*last);
                Some(previous)
            }
            _ => Some(current),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::salt::SaltStore;
    use jiff::tz::TimeZone;
    use std::time::Duration;

    #[test]
    fn id_depends_on_every_input_and_maps_v4() {
        let salt = [7u8; 32];
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let base = visitor_id(&salt, "a.nl", ip, "UA");
        assert_eq!(
            base,
            visitor_id(&salt, "a.nl", "::ffff:192.0.2.1".parse().unwrap(), "UA")
        );
        assert_ne!(base, visitor_id(&[8u8; 32], "a.nl", ip, "UA"));
        assert_ne!(base, visitor_id(&salt, "b.nl", ip, "UA"));
        assert_ne!(
            base,
            visitor_id(&salt, "a.nl", "192.0.2.2".parse().unwrap(), "UA")
        );
        assert_ne!(base, visitor_id(&salt, "a.nl", ip, "UA2"));
        // The site/IP boundary is unambiguous: "a.n" + "l…" is not "a.nl" + "…".
        assert_ne!(base, visitor_id(&salt, "a.n", ip, "UA"));
    }

    #[test]
    fn id_is_first_8_bytes_of_sha256() {
        let salt = [0u8; 32];
        let ip: IpAddr = "::".parse().unwrap();
        let mut input = vec![0u8; 32];
        input.extend_from_slice(b"s");
        input.push(0);
        input.extend_from_slice(&[0u8; 16]);
        input.extend_from_slice(b"u");
        let d = Sha256::digest(&input);
        assert_eq!(
            visitor_id(&salt, "s", ip, "u"),
            u64::from_be_bytes(d[..8].try_into().unwrap())
        );
    }

    #[tokio::test]
    async fn a_visit_across_midnight_keeps_its_id_until_the_grace_ends() {
        let book = SaltBook::new(
            TimeZone::get("Europe/Amsterdam").unwrap(),
            Duration::from_secs(1800),
        );
        let store = SaltStore::Memory(Default::default());
        let before: Timestamp = "2026-11-23T22:50:00Z".parse().unwrap(); // 23:50 local
        book.refresh(&store, before).await.unwrap();
        let v = Visitors::new(book);
        let ip: IpAddr = "198.51.100.23".parse().unwrap();
        let (active, idle) = ("Active UA", "Idle UA");
        let old_active = v.id("a.nl", ip, active, before).unwrap();
        let old_idle = v.id("a.nl", ip, idle, before).unwrap();

        let after: Timestamp = "2026-11-23T23:05:00Z".parse().unwrap(); // 00:05 local
        let midnight = v
            .carry_needed(after)
            .expect("inside the grace a carry set is needed");
        // Storage says: the active visitor was seen at 23:50; the idle one at 23:20 (too long ago).
        v.load_carry(
            midnight,
            [
                (old_active, before.as_second()),
                (old_idle, before.as_second() - 1800),
            ],
        );
        assert_eq!(v.carry_needed(after), None);
        assert_eq!(v.id("a.nl", ip, active, after), Some(old_active));
        let new_idle = v.id("a.nl", ip, idle, after).unwrap();
        assert_ne!(new_idle, old_idle);
        // A new visitor after midnight gets today's id.
        assert_ne!(v.id("a.nl", ip, "New UA", after), None);

        // After the grace, yesterday's salt hashes nothing: the active visitor gets a new id.
        let late: Timestamp = "2026-11-23T23:35:00Z".parse().unwrap();
        assert_ne!(v.id("a.nl", ip, active, late), Some(old_active));
        v.clear_carry_after_grace(late);
        assert_eq!(v.carry_needed(late), None);
    }

    #[test]
    fn the_quiet_hours_are_remembered_and_end_at_the_next_midnight() {
        let book = SaltBook::new(
            TimeZone::get("Europe/Amsterdam").unwrap(),
            Duration::from_secs(1800),
        );
        let v = Visitors::new(book);
        let noon: Timestamp = "2026-11-24T11:00:00Z".parse().unwrap();
        assert_eq!(v.carry_needed(noon), None);
        let evening: Timestamp = "2026-11-24T22:59:59Z".parse().unwrap();
        assert_eq!(v.carry_needed(evening), None);
        // 00:10 local on the 25th: inside the grace, whatever was remembered before.
        let after: Timestamp = "2026-11-24T23:10:00Z".parse().unwrap();
        let midnight: Timestamp = "2026-11-24T23:00:00Z".parse().unwrap();
        assert_eq!(v.carry_needed(after), Some(midnight));
        // A clock set back before the remembered hours is answered afresh too.
        let before: Timestamp = "2026-11-23T23:10:00Z".parse().unwrap();
        assert_eq!(
            v.carry_needed(before),
            Some("2026-11-23T23:00:00Z".parse().unwrap())
        );
    }
}
