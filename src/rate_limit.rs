//! Per-client rate limit for beacons, without keeping who the client is.
//!
//! A client is a keyed 64-bit hash (SipHash with a random key made at start, kept in memory
//! only) of its IP address and user agent; the count per key lives for one fixed window of a
//! minute and the whole table is cleared when the window ends, so nothing about a client
//! outlives the minute it was counted in. Clients sharing an address and browser version (a
//! school behind one NAT) share a budget: `ingest.rate_limit_per_minute` is set with that in
//! mind (default 600, ten a second).

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::Mutex;

use jiff::Timestamp;

use crate::fast_hash::Prehashed;

/// Most clients counted per window; past it, new clients are let through uncounted, so a flood
/// of distinct addresses cannot grow the table (the count of such passes is in `untracked`).
const MAX_TRACKED: usize = 200_000;
const WINDOW_SECS: i64 = 60;

pub struct RateLimit {
    per_window: u32,
    key: std::collections::hash_map::RandomState,
    state: Mutex<Window>,
}

struct Window {
    start: i64,
    /// By the client's keyed hash, which the map uses as its own hash.
    counts: HashMap<u64, u32, Prehashed>,
}

impl RateLimit {
    /// `per_minute` = 0 turns the limit off.
    pub fn new(per_minute: u32) -> Self {
        Self {
            per_window: per_minute,
            key: std::collections::hash_map::RandomState::new(),
            state: Mutex::new(Window {
                start: 0,
                counts: HashMap::default(),
            }),
        }
    }

    /// Counts a beacon; false when this client already sent its budget in this minute.
    pub fn allow(&self, ip: IpAddr, user_agent: &str, now: Timestamp) -> bool {
        if self.per_window == 0 {
            return true;
        }
        let client = self.key.hash_one((ip, user_agent));
        let window = now.as_second().div_euclid(WINDOW_SECS);
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.start != window {
            state.start = window;
            // Replaced, not cleared: the old table's memory goes back (and is wiped on free).
            state.counts = HashMap::default();
        }
        let tracked = state.counts.len();
        match state.counts.get_mut(&client) {
            Some(n) if *n >= self.per_window => false,
            Some(n) => {
                *n += 1;
                true
            }
            None => {
                if tracked < MAX_TRACKED {
                    state.counts.insert(client, 1);
                }
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_gets_its_budget_per_minute_and_others_are_unaffected() {
        let limit = RateLimit::new(3);
        let t0: Timestamp = "2026-11-23T10:00:05Z".parse().unwrap();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let sent: Vec<bool> = (0..5).map(|_| limit.allow(a, "UA", t0)).collect();
        assert_eq!(sent, [true, true, true, false, false]);
        assert!(
            limit.allow(b, "UA", t0),
            "another address has its own budget"
        );
        assert!(limit.allow(a, "other UA", t0), "another browser too");
        // The next minute starts from nothing.
        let t1: Timestamp = "2026-11-23T10:01:00Z".parse().unwrap();
        assert!(limit.allow(a, "UA", t1));
        assert_eq!(limit.state.lock().unwrap().counts.len(), 1);
    }

    #[test]
    fn zero_means_no_limit() {
        let limit = RateLimit::new(0);
        let t0: Timestamp = "2026-11-23T10:00:05Z".parse().unwrap();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        assert!((0..10_000).all(|_| limit.allow(a, "UA", t0)));
        assert!(limit.state.lock().unwrap().counts.is_empty());
    }
}
