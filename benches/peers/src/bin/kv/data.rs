//! The kv bench's data: the 1 KB items, their keys for nimbus and the
//! fjall keys and values of the same items, and the seeded choices of
//! which items each thread writes and reads.

use nimbus::value::{encode_item, encode_key_value, item_size};
use nimbus::{AttributeValue, Item, item};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use crate::{Config, ITEM_BYTES, KEYSPACE, SORT_KEYS, TRANSACT_ITEMS};

pub(crate) fn mix(n: u64) -> u64 {
    let mut z = n.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

pub(crate) fn partition_key(p: u64) -> String {
    format!("user#{p:06}")
}

pub(crate) fn key(p: u64, s: u64) -> Item {
    item! { "pk" => partition_key(p), "sk" => s }
}

/// A 1 KB item whose payload letters do not repeat, so block compression
/// gains nothing (the same function as `benches/kv.rs`).
pub(crate) fn full_item(p: u64, s: u64) -> Item {
    let mut item = item! { "pk" => partition_key(p), "sk" => s, "n" => 0, "kind" => "event" };
    let room = ITEM_BYTES - item_size(&item) - "payload".len();
    let mut state = mix((p << 32) | s);
    let payload: String = (0..room)
        .map(|i| {
            if i % 12 == 0 {
                state = mix(state);
            }
            char::from(b'a' + ((state >> ((i % 12) * 5)) & 15) as u8)
        })
        .collect();
    item.insert("payload".to_owned(), AttributeValue::S(payload));
    assert_eq!(item_size(&item), ITEM_BYTES);
    item
}

pub(crate) fn encoded(value: &AttributeValue) -> Vec<u8> {
    let mut out = Vec::new();
    encode_key_value(value, &mut out).unwrap_or_else(|e| panic!("key encoding: {e}"));
    out
}

/// FNV-1a then a mix: a stand-in for nimbus's token (xxh3) with the same
/// width and spread.
pub(crate) fn token(bytes: &[u8]) -> u64 {
    let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    mix(hash)
}

/// fjall's key prefix of partition `p`: `keyspace | token | encoded pk`.
pub(crate) fn peer_prefix(p: u64) -> Vec<u8> {
    let pk = encoded(&AttributeValue::from(partition_key(p)));
    let mut key = Vec::with_capacity(32);
    key.extend_from_slice(&KEYSPACE);
    key.extend_from_slice(&token(&pk).to_be_bytes());
    key.extend_from_slice(&pk);
    key
}

pub(crate) fn peer_key(p: u64, s: u64) -> Vec<u8> {
    let mut key = peer_prefix(p);
    key.extend_from_slice(&encoded(&AttributeValue::from(s)));
    key
}

pub(crate) fn peer_value(p: u64, s: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(ITEM_BYTES + 64);
    encode_item(&full_item(p, s), &mut out);
    out
}

/// The `(partition, sort key)` pairs each thread puts: every item once,
/// shuffled, thread `t` taking the partitions `p % threads == t`.
pub(crate) fn put_order(config: &Config, threads: usize) -> Vec<Vec<(u64, u64)>> {
    let mut all: Vec<(u64, u64)> = (0..config.partitions())
        .flat_map(|p| (0..SORT_KEYS).map(move |s| (p, s)))
        .collect();
    all.shuffle(&mut StdRng::seed_from_u64(1));
    let mut lists = vec![Vec::new(); threads];
    for (p, s) in all {
        lists[(p % threads as u64) as usize].push((p, s));
    }
    lists
}

/// `count` random existing items per thread; with `own`, only from the
/// thread's own partitions.
pub(crate) fn random_items(
    config: &Config,
    threads: usize,
    count: usize,
    seed: u64,
    own: bool,
) -> Vec<Vec<(u64, u64)>> {
    (0..threads)
        .map(|t| {
            let mut rng = StdRng::seed_from_u64(seed * 1000 + t as u64);
            (0..count)
                .map(|_| {
                    let mut p = rng.random_range(0..config.partitions());
                    if own {
                        p = p - p % threads as u64 + t as u64;
                        if p >= config.partitions() {
                            p -= threads as u64;
                        }
                    }
                    (p, rng.random_range(0..SORT_KEYS))
                })
                .collect()
        })
        .collect()
}

/// The reads of the untimed warm-up before the read phases: as many as
/// there are items (at most the timed reads).
pub(crate) fn warm_up_keys(config: &Config) -> Vec<(u64, u64)> {
    let count = (config.items as usize).min(config.gets);
    random_items(config, 1, count, 9, false).swap_remove(0)
}

/// Transactions of [`TRANSACT_ITEMS`] distinct items of the thread's own
/// partitions.
pub(crate) fn transactions(config: &Config, threads: usize) -> Vec<Vec<Vec<(u64, u64)>>> {
    let picks = random_items(config, threads, config.transacts * 8, 5, true);
    picks
        .into_iter()
        .map(|list| {
            let mut out = Vec::with_capacity(config.transacts);
            let mut current: Vec<(u64, u64)> = Vec::new();
            for pick in list {
                if !current.contains(&pick) {
                    current.push(pick);
                }
                if current.len() == TRANSACT_ITEMS {
                    out.push(std::mem::take(&mut current));
                    if out.len() == config.transacts {
                        break;
                    }
                }
            }
            out
        })
        .collect()
}

/// fjall's scan range of thread `t` of `threads`: its share of the token
/// space, like a DynamoDB parallel-scan segment.
pub(crate) fn peer_segment(t: usize, threads: usize) -> (Vec<u8>, Vec<u8>) {
    let bound = |t: usize| -> Vec<u8> {
        let mut key = KEYSPACE.to_vec();
        if t >= threads {
            key.extend_from_slice(&[0xff; 9]);
        } else {
            let token = (u128::from(u64::MAX) + 1) * t as u128 / threads as u128;
            key.extend_from_slice(&(token as u64).to_be_bytes());
        }
        key
    };
    (bound(t), bound(t + 1))
}
