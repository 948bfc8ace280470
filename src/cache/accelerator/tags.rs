//! The opt-in invalidation index: which cached Query pages belong to which
//! partition key, and which Scan pages to which table, so a write can drop
//! exactly the pages it may have changed.
//!
//! A page is registered *before* its table read starts. Then either the
//! write's invalidation finds it (and removing its key stops an in-flight
//! load from caching a result read before the commit), or the write
//! committed before the registration and so before the read. A load that
//! finds its registration gone once its page is cached drops the page. The
//! index is
//! bounded: past [`TAGGED_QUERIES_MAX`] entries it forgets pages that are
//! no longer cached, and if that is not enough it empties the query cache
//! with it (a page must never be cached unindexed).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use parking_lot::Mutex;

use super::super::Cache;
use super::CachedPage;

/// The most (tag, page) pairs the index holds before it is swept.
pub(super) const TAGGED_QUERIES_MAX: usize = 1 << 16;

/// Tags (partition or table) -> keys of the cached pages under them.
#[derive(Debug, Default)]
pub(super) struct QueryTags {
    index: Mutex<Index>,
}

#[derive(Debug, Default)]
struct Index {
    pages: HashMap<Vec<u8>, HashSet<Arc<[u8]>>>,
    pairs: usize,
}

impl QueryTags {
    /// Records that the page `key` is (about to be) cached under `tag`.
    pub(super) fn register(
        &self,
        tag: Vec<u8>,
        key: &Arc<[u8]>,
        queries: &Cache<Arc<[u8]>, Arc<CachedPage>>,
    ) {
        let mut index = self.index.lock();
        if index.pages.entry(tag).or_default().insert(Arc::clone(key)) {
            index.pairs += 1;
        }
        if index.pairs > TAGGED_QUERIES_MAX {
            sweep(&mut index, queries);
        }
    }

    /// Whether the page `key` is still indexed under `tag`. A load checks
    /// this after caching its page: a sweep or a write may have dropped
    /// the registration before the page landed, and then the page must go.
    pub(super) fn is_registered(&self, tag: &[u8], key: &Arc<[u8]>) -> bool {
        self.index
            .lock()
            .pages
            .get(tag)
            .is_some_and(|keys| keys.contains(key))
    }

    /// Drops every page under `tags` from the index and the cache; returns
    /// how many pages were dropped.
    pub(super) fn invalidate(
        &self,
        tags: &[Vec<u8>],
        queries: &Cache<Arc<[u8]>, Arc<CachedPage>>,
    ) -> u64 {
        let mut dropped = 0;
        let mut index = self.index.lock();
        for tag in tags {
            let Some(keys) = index.pages.remove(tag) else {
                continue;
            };
            index.pairs -= keys.len();
            for key in keys {
                if queries.remove(&key[..]).is_some() {
                    dropped += 1;
                }
            }
        }
        dropped
    }

    /// Forgets every page (the query cache was emptied).
    pub(super) fn clear(&self) {
        let mut index = self.index.lock();
        index.pages.clear();
        index.pairs = 0;
    }
}

/// Forgets the pages no longer cached; if the live ones still fill half the
/// index, empties the query cache too.
fn sweep(index: &mut Index, queries: &Cache<Arc<[u8]>, Arc<CachedPage>>) {
    let mut pairs = 0;
    for keys in index.pages.values_mut() {
        keys.retain(|key| {
            let live = queries.contains_key(&key[..]);
            if !live {
                // A load of this page may be in flight: removing the key
                // stops it from caching a page the index no longer knows.
                queries.remove(&key[..]);
            }
            live
        });
        pairs += keys.len();
    }
    index.pages.retain(|_, keys| !keys.is_empty());
    index.pairs = pairs;
    if index.pairs > TAGGED_QUERIES_MAX / 2 {
        queries.invalidate_all();
        index.pages.clear();
        index.pairs = 0;
    }
}
