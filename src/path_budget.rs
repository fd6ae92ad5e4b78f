//! A cap on new page paths per site and hour, so a crawler inventing URLs cannot grow the
//! pages report (and its rollups) without bound.
//!
//! Paths the site had in the last days (read from ClickHouse at start) and paths admitted
//! earlier are always kept. Each clock hour, at most `ingest.max_new_paths_per_hour` paths
//! not seen before are admitted per site; past that, a beacon's path is stored as
//! [`OTHER`] (the pageview still counts) and the replacement is counted in
//! `tally_paths_capped_total`. Each collector keeps its own budget.

use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;
use std::sync::Mutex;

use jiff::Timestamp;

use crate::fast_hash::{ConfigText, Prehashed};

/// The path stored in place of one over the budget.
pub const OTHER: &str = "/(other)";
/// Most known paths remembered per site (8 bytes each); past it, new paths stay under the
/// hourly budget rather than joining the known set.
const MAX_KNOWN: usize = 500_000;

pub struct PathBudget {
    per_hour: usize,
    key: std::collections::hash_map::RandomState,
    sites: Mutex<HashMap<String, SitePaths, ConfigText>>,
}

/// Paths by their keyed hash, which the sets use as their own hash.
#[derive(Default)]
struct SitePaths {
    known: HashSet<u64, Prehashed>,
    hour: i64,
    new_this_hour: HashSet<u64, Prehashed>,
}

impl PathBudget {
    /// `per_hour` = 0 turns the cap off.
    pub fn new(per_hour: usize) -> Self {
        Self {
            per_hour,
            key: std::collections::hash_map::RandomState::new(),
            sites: Mutex::new(HashMap::default()),
        }
    }

    /// Paths a site already has (from storage), always admitted.
    pub fn learn<'a>(&self, site: &str, paths: impl IntoIterator<Item = &'a str>) {
        let mut sites = self.sites.lock().unwrap_or_else(|p| p.into_inner());
        let entry = sites.entry(site.to_string()).or_default();
        for path in paths {
            if entry.known.len() >= MAX_KNOWN {
                break;
            }
            entry.known.insert(self.key.hash_one(path));
        }
    }

    /// Whether `path` may be stored for `site` now; false means store [`OTHER`] instead.
    pub fn admit(&self, site: &str, path: &str, now: Timestamp) -> bool {
        if self.per_hour == 0 {
            return true;
        }
        let h = self.key.hash_one(path);
        let hour = now.as_second().div_euclid(3600);
        let mut sites = self.sites.lock().unwrap_or_else(|p| p.into_inner());
        let paths = match sites.get_mut(site) {
            Some(p) => p,
            None => sites.entry(site.to_string()).or_default(),
        };
        if paths.hour != hour {
            // Last hour's new paths are known now.
            let new = std::mem::take(&mut paths.new_this_hour);
            let room = MAX_KNOWN.saturating_sub(paths.known.len());
            paths.known.extend(new.into_iter().take(room));
            paths.hour = hour;
        }
        if paths.known.contains(&h) || paths.new_this_hour.contains(&h) {
            return true;
        }
        if paths.new_this_hour.len() < self.per_hour {
            paths.new_this_hour.insert(h);
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_paths_pass_new_ones_are_capped_per_hour_and_site() {
        let budget = PathBudget::new(2);
        budget.learn("a.example", ["/known"]);
        let t0: Timestamp = "2026-11-23T10:10:00Z".parse().unwrap();
        assert!(budget.admit("a.example", "/known", t0));
        assert!(budget.admit("a.example", "/new1", t0));
        assert!(budget.admit("a.example", "/new2", t0));
        assert!(!budget.admit("a.example", "/new3", t0), "over the budget");
        assert!(
            budget.admit("a.example", "/new1", t0),
            "admitted paths stay admitted"
        );
        assert!(
            budget.admit("b.example", "/new3", t0),
            "budgets are per site"
        );
        // Next hour: a fresh budget, and last hour's admitted paths are known.
        let t1: Timestamp = "2026-11-23T11:00:00Z".parse().unwrap();
        assert!(budget.admit("a.example", "/new3", t1));
        assert!(budget.admit("a.example", "/new4", t1));
        assert!(!budget.admit("a.example", "/new5", t1));
        assert!(budget.admit("a.example", "/new2", t1));
    }
}
