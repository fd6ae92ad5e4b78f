//! Hashers for ingest's maps whose keys need no keyed (SipHash) hashing at lookup: keys that are
//! already keyed hashes, record offsets, and configured host names.
//!
//! std's default hasher keys SipHash randomly so that an attacker cannot choose keys that
//! collide. That protection is needed where an attacker chooses what is inserted. It is not
//! needed for [`Prehashed`] keys (the rate limit's and the path budget's keys are themselves
//! SipHash values under a random key, unpredictable to a client; a country record's offset is
//! one of the database's few hundred) nor for [`ConfigText`] keys (the configured hosts: clients
//! only look them up), and every beacon paid for it several times.

use std::hash::{BuildHasher, Hasher};

/// For integer keys: a keyed 64-bit hash is used as it is; other integers are spread by a
/// multiplication (Fibonacci hashing), so that small or regular values do not share buckets.
#[derive(Debug, Default, Clone, Copy)]
pub struct Prehashed;

impl BuildHasher for Prehashed {
    type Hasher = PrehashedHasher;

    fn build_hasher(&self) -> PrehashedHasher {
        PrehashedHasher(0)
    }
}

#[derive(Debug, Default)]
pub struct PrehashedHasher(u64);

impl Hasher for PrehashedHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Not used by integer keys; correct (if slow) for anything else.
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }

    fn write_usize(&mut self, v: usize) {
        self.0 = (v as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// For short text keys that come from the config: FNV-1a.
#[derive(Debug, Default, Clone, Copy)]
pub struct ConfigText;

impl BuildHasher for ConfigText {
    type Hasher = Fnv;

    fn build_hasher(&self) -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

#[derive(Debug)]
pub struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{HashMap, HashSet};

    #[test]
    fn maps_with_these_hashers_behave_as_maps() {
        let mut keyed: HashSet<u64, Prehashed> = HashSet::default();
        let mut offsets: HashMap<usize, u32, Prehashed> = HashMap::default();
        let mut hosts: HashMap<String, usize, ConfigText> = HashMap::default();
        for i in 0..10_000u64 {
            keyed.insert(i.wrapping_mul(0x2545_F491_4F6C_DD1D));
            offsets.insert(i as usize * 7, i as u32);
            hosts.insert(format!("www.site{i}.example"), i as usize);
        }
        assert_eq!(
            (keyed.len(), offsets.len(), hosts.len()),
            (10_000, 10_000, 10_000)
        );
        assert!(keyed.contains(&42u64.wrapping_mul(0x2545_F491_4F6C_DD1D)));
        assert_eq!(offsets.get(&(42 * 7)), Some(&42));
        assert_eq!(hosts.get("www.site42.example"), Some(&42));
        assert_eq!(hosts.get("www.site42.example."), None);
    }
}
