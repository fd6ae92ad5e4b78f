//! The verdict cache: recent verdicts by keyed hash of the user agent, never the agent itself.
//!
//! Classifying is regular-expression work over the whole agent, the largest part of ingest's
//! own cost, while traffic repeats a few hundred agents. So the verdict for an agent is
//! remembered under a keyed 64-bit hash of it: the key is random and lives only in this
//! process, and the whole table is dropped (and its memory wiped by the allocator) after an
//! hour or 4,096 agents, whichever comes first.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::Verdict;
use crate::fast_hash::Prehashed;

/// Most agents remembered at once; the table starts over when it is full.
pub(super) const MAX_VERDICTS: usize = 4096;
/// Longest a table (and its hash key) is kept before it starts over.
const MAX_VERDICT_AGE: Duration = Duration::from_secs(3600);

pub(super) struct Verdicts {
    pub(super) table: Mutex<VerdictTable>,
}

pub(super) struct VerdictTable {
    /// SipHash with random keys (std's `RandomState`); new keys with every new table.
    key: RandomState,
    pub(super) by_hash: HashMap<u64, Verdict, Prehashed>,
    born: Instant,
}

impl VerdictTable {
    fn new() -> Self {
        Self {
            key: RandomState::new(),
            by_hash: HashMap::default(),
            born: Instant::now(),
        }
    }
}

impl Verdicts {
    pub(super) fn new() -> Self {
        Self {
            table: Mutex::new(VerdictTable::new()),
        }
    }

    /// The remembered verdict for `user_agent`, or `decide`'s, remembered.
    pub(super) fn get_or_insert(
        &self,
        user_agent: &str,
        decide: impl FnOnce() -> Verdict,
    ) -> Verdict {
        {
            let table = self.table.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(v) = table.by_hash.get(&table.key.hash_one(user_agent)) {
                return v.clone();
            }
        }
        // Decided outside the lock: other beacons do not wait for the regular expressions.
        let verdict = decide();
        let mut table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        if table.by_hash.len() >= MAX_VERDICTS || table.born.elapsed() > MAX_VERDICT_AGE {
            *table = VerdictTable::new();
        }
        // Hashed again: the table (and its key) may have been replaced meanwhile.
        let hash = table.key.hash_one(user_agent);
        table.by_hash.insert(hash, verdict.clone());
        verdict
    }
}
