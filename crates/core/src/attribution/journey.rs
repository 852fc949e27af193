//! Journeys that data-driven models are fitted over, and channel interning.
//!
//! A journey is a person's channel sequence in time order with how many
//! times it ended in a conversion and how many times it did not. A single
//! observed journey has `conversions + nulls == 1`; the path-file format of
//! attribution tools aggregates identical paths, hence the counts.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A channel sequence with how often it converted and how often it did not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Journey<S = String> {
    /// Channels touched, in time order (repeats allowed).
    pub path: Vec<S>,
    /// Journeys along this path that ended in a conversion.
    pub conversions: u64,
    /// Journeys along this path that did not convert.
    pub nulls: u64,
}

impl<S> Journey<S> {
    /// One journey that converted.
    pub fn converted(path: Vec<S>) -> Self {
        Self {
            path,
            conversions: 1,
            nulls: 0,
        }
    }

    /// One journey that did not convert.
    pub fn not_converted(path: Vec<S>) -> Self {
        Self {
            path,
            conversions: 0,
            nulls: 1,
        }
    }
}

/// A small, fast, deterministic hasher (the Fx hash of rustc) for integer
/// and short string keys; fits hash tens of millions of keys, and unlike
/// SipHash its iteration order does not change between runs.
#[derive(Default, Clone, Copy)]
pub(crate) struct FxHasher {
    hash: u64,
}

const FX_SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(FX_SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(c);
            self.add(u64::from_le_bytes(word));
        }
        for &b in chunks.remainder() {
            self.add(u64::from(b));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.hash
    }
}

pub(crate) type FxHashMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// Channel names to dense ids, in first-seen order.
#[derive(Default)]
pub(crate) struct Interner<'a> {
    ids: FxHashMap<&'a str, u32>,
    pub(crate) names: Vec<&'a str>,
}

impl<'a> Interner<'a> {
    pub(crate) fn id(&mut self, name: &'a str) -> u32 {
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        let id = self.names.len() as u32;
        self.ids.insert(name, id);
        self.names.push(name);
        id
    }

    /// Names sorted, and for each first-seen id its rank in that order.
    ///
    /// Fits renumber channels by name so that their output does not depend
    /// on the order journeys were given in.
    pub(crate) fn sorted(&self) -> (Vec<String>, Vec<u32>) {
        let mut order: Vec<u32> = (0..self.names.len() as u32).collect();
        order.sort_by_key(|&i| self.names[i as usize]);
        let mut rank = vec![0u32; order.len()];
        for (r, &i) in order.iter().enumerate() {
            rank[i as usize] = r as u32;
        }
        let names = order
            .iter()
            .map(|&i| self.names[i as usize].to_owned())
            .collect();
        (names, rank)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interned_channels_are_renumbered_by_name() {
        let mut i = Interner::default();
        assert_eq!(i.id("seo"), 0);
        assert_eq!(i.id("ads"), 1);
        assert_eq!(i.id("seo"), 0);
        let (names, rank) = i.sorted();
        assert_eq!(names, vec!["ads", "seo"]);
        assert_eq!(rank, vec![1, 0]);
    }
}
