//! Behaviour tests of the DAX-style accelerator: item and query TTLs on a
//! manual clock, write-through, the query cache's DAX staleness and the
//! opt-in invalidation, consistent and transactional reads passing
//! through, negative caching, failed writes leaving the cache alone,
//! transaction refreshes, write-around staleness and the statistics.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use std::time::Duration;

use nimbus::cache::accelerator::{TransactDelete, TransactPut, TransactUpdate};
use nimbus::cache::{Accelerator, ManualClock};
use nimbus::kv::{
    Error, GlobalSecondaryIndex, KeysAndAttributes, ReturnConsumedCapacity, ReturnValue,
    TransactGet, WriteRequest,
};
use nimbus::{Database, Item, ScalarType, item};

const ITEM_TTL: Duration = Duration::from_secs(60);
const QUERY_TTL: Duration = Duration::from_secs(300);

/// A database with `Music` (Artist, SongTitle) and an accelerator over it
/// on a manual clock: items live 60 s, query pages 300 s.
fn setup(invalidate_queries_on_write: bool) -> (Database, Accelerator, ManualClock) {
    setup_with_ttls((ITEM_TTL, QUERY_TTL), invalidate_queries_on_write)
}

fn setup_with_ttls(
    (item_ttl, query_ttl): (Duration, Duration),
    invalidate_queries_on_write: bool,
) -> (Database, Accelerator, ManualClock) {
    let db = Database::memory().unwrap();
    db.create_table("Music")
        .partition_key("Artist", ScalarType::S)
        .sort_key("SongTitle", ScalarType::S)
        .send()
        .unwrap();
    let clock = ManualClock::new();
    let accelerator = Accelerator::builder(db.clone())
        .item_ttl(item_ttl)
        .query_ttl(query_ttl)
        .max_bytes(16 << 20)
        .clock(clock.clone())
        .invalidate_queries_on_write(invalidate_queries_on_write)
        .build();
    (db, accelerator, clock)
}

fn key(artist: &str, song: &str) -> Item {
    item! { "Artist" => artist, "SongTitle" => song }
}

fn song(artist: &str, song: &str, plays: i64) -> Item {
    item! { "Artist" => artist, "SongTitle" => song, "Plays" => plays }
}

fn get(accelerator: &Accelerator, artist: &str, title: &str) -> Option<Item> {
    accelerator
        .get_item("Music")
        .key(key(artist, title))
        .send()
        .unwrap()
        .item
}

fn put_direct(db: &Database, item: Item) {
    db.put_item("Music").item(item).send().unwrap();
}

/// The song titles a Query of `artist` through the accelerator returns.
fn titles(accelerator: &Accelerator, artist: &str) -> Vec<String> {
    accelerator
        .query("Music")
        .key_condition_expression("Artist = :a")
        .value(":a", artist)
        .send()
        .unwrap()
        .items
        .iter()
        .map(|item| item["SongTitle"].as_s().unwrap().to_owned())
        .collect()
}

fn scanned(accelerator: &Accelerator) -> usize {
    accelerator.scan("Music").send().unwrap().count
}

#[test]
fn item_entries_expire_after_the_item_ttl_not_before() {
    let (db, accelerator, clock) = setup(false);
    put_direct(&db, song("Acme", "Hi", 1));
    assert_eq!(get(&accelerator, "Acme", "Hi"), Some(song("Acme", "Hi", 1)));
    put_direct(&db, song("Acme", "Hi", 2));
    clock.advance(ITEM_TTL - Duration::from_millis(1));
    assert_eq!(get(&accelerator, "Acme", "Hi"), Some(song("Acme", "Hi", 1)));
    clock.advance(Duration::from_millis(1));
    assert_eq!(get(&accelerator, "Acme", "Hi"), Some(song("Acme", "Hi", 2)));
    let stats = accelerator.stats();
    assert_eq!((stats.item_hits, stats.item_misses), (1, 2));
}

#[test]
fn a_zero_ttl_means_entries_never_expire_as_in_dax() {
    let (db, accelerator, clock) = setup_with_ttls((Duration::ZERO, Duration::ZERO), false);
    put_direct(&db, song("Acme", "Hi", 1));
    assert_eq!(get(&accelerator, "Acme", "Hi"), Some(song("Acme", "Hi", 1)));
    assert_eq!(titles(&accelerator, "Acme"), ["Hi"]);
    assert_eq!(get(&accelerator, "Acme", "Gone"), None);
    put_direct(&db, song("Acme", "Hi", 2));
    put_direct(&db, song("Acme", "Gone", 1));
    clock.advance(Duration::from_secs(365 * 24 * 3600));
    // A year on, everything is still served from the caches.
    assert_eq!(get(&accelerator, "Acme", "Hi"), Some(song("Acme", "Hi", 1)));
    assert_eq!(get(&accelerator, "Acme", "Gone"), None);
    assert_eq!(titles(&accelerator, "Acme"), ["Hi"]);
    let stats = accelerator.stats();
    assert_eq!((stats.item_hits, stats.item_misses), (2, 2));
    assert_eq!((stats.query_hits, stats.query_misses), (1, 1));
    // A write through the accelerator still replaces the cached item.
    accelerator
        .put_item("Music")
        .item(song("Acme", "Hi", 3))
        .send()
        .unwrap();
    assert_eq!(get(&accelerator, "Acme", "Hi"), Some(song("Acme", "Hi", 3)));
}

#[test]
fn query_entries_have_their_own_ttl() {
    let (db, accelerator, clock) = setup(false);
    put_direct(&db, song("Acme", "A", 1));
    assert_eq!(titles(&accelerator, "Acme"), ["A"]);
    assert_eq!(get(&accelerator, "Acme", "A"), Some(song("Acme", "A", 1)));
    put_direct(&db, song("Acme", "A", 9));
    put_direct(&db, song("Acme", "B", 1));
    // Past the item TTL: the item is read again, the page is still cached.
    clock.advance(ITEM_TTL);
    assert_eq!(get(&accelerator, "Acme", "A"), Some(song("Acme", "A", 9)));
    assert_eq!(titles(&accelerator, "Acme"), ["A"]);
    clock.advance(QUERY_TTL - ITEM_TTL - Duration::from_millis(1));
    assert_eq!(titles(&accelerator, "Acme"), ["A"]);
    clock.advance(Duration::from_millis(1));
    assert_eq!(titles(&accelerator, "Acme"), ["A", "B"]);
    let stats = accelerator.stats();
    assert_eq!((stats.query_hits, stats.query_misses), (2, 2));
    assert_eq!((stats.item_hits, stats.item_misses), (0, 2));
}

#[test]
fn a_get_after_a_put_through_the_accelerator_is_a_hit_with_the_new_item() {
    let (db, accelerator, _clock) = setup(false);
    put_direct(&db, song("Acme", "Hi", 1));
    assert_eq!(get(&accelerator, "Acme", "Hi"), Some(song("Acme", "Hi", 1)));
    accelerator
        .put_item("Music")
        .item(song("Acme", "Hi", 2))
        .send()
        .unwrap();
    accelerator
        .put_item("Music")
        .item(song("Acme", "New", 7))
        .send()
        .unwrap();
    assert_eq!(get(&accelerator, "Acme", "Hi"), Some(song("Acme", "Hi", 2)));
    assert_eq!(
        get(&accelerator, "Acme", "New"),
        Some(song("Acme", "New", 7))
    );
    let stats = accelerator.stats();
    assert_eq!((stats.item_hits, stats.item_misses), (2, 1));
    assert_eq!(stats.item_writes, 2);
    // The table has them too.
    let stored = db.get_item("Music").key(key("Acme", "New")).send().unwrap();
    assert_eq!(stored.item, Some(song("Acme", "New", 7)));
}

#[test]
fn an_update_caches_the_all_new_image_and_returns_what_the_caller_asked() {
    let (db, accelerator, _clock) = setup(false);
    put_direct(
        &db,
        item! { "Artist" => "Acme", "SongTitle" => "Hi", "Plays" => 1, "Year" => 2020 },
    );
    let quiet = accelerator
        .update_item("Music")
        .key(key("Acme", "Hi"))
        .update_expression("SET Plays = Plays + :one")
        .value(":one", 1)
        .send()
        .unwrap();
    assert_eq!(quiet.attributes, None);
    let expected = item! { "Artist" => "Acme", "SongTitle" => "Hi", "Plays" => 2, "Year" => 2020 };
    assert_eq!(get(&accelerator, "Acme", "Hi"), Some(expected));
    let updated = accelerator
        .update_item("Music")
        .key(key("Acme", "Hi"))
        .update_expression("SET Plays = Plays + :one")
        .value(":one", 1)
        .return_values(ReturnValue::UpdatedNew)
        .send()
        .unwrap();
    assert_eq!(updated.attributes, Some(item! { "Plays" => 3 }));
    let old = accelerator
        .update_item("Music")
        .key(key("Acme", "Hi"))
        .update_expression("REMOVE #y")
        .name("#y", "Year")
        .return_values(ReturnValue::AllOld)
        .send()
        .unwrap();
    assert_eq!(old.attributes.unwrap()["Year"], 2020.into());
    assert_eq!(get(&accelerator, "Acme", "Hi"), Some(song("Acme", "Hi", 3)));
    // An update that creates the item caches it too.
    accelerator
        .update_item("Music")
        .key(key("Acme", "Fresh"))
        .update_expression("SET Plays = :p")
        .value(":p", 5)
        .send()
        .unwrap();
    assert_eq!(
        get(&accelerator, "Acme", "Fresh"),
        Some(song("Acme", "Fresh", 5))
    );
    let stats = accelerator.stats();
    assert_eq!((stats.item_hits, stats.item_misses), (3, 0));
}

#[test]
fn a_cached_query_stays_stale_after_a_put_through_the_accelerator_until_its_ttl() {
    let (db, accelerator, clock) = setup(false);
    put_direct(&db, song("Acme", "A", 1));
    assert_eq!(titles(&accelerator, "Acme"), ["A"]);
    accelerator
        .put_item("Music")
        .item(song("Acme", "B", 1))
        .send()
        .unwrap();
    // The item cache has the new item; the query cache does not (DAX).
    assert_eq!(get(&accelerator, "Acme", "B"), Some(song("Acme", "B", 1)));
    assert_eq!(titles(&accelerator, "Acme"), ["A"]);
    assert_eq!(scanned(&accelerator), 2);
    clock.advance(QUERY_TTL);
    assert_eq!(titles(&accelerator, "Acme"), ["A", "B"]);
    assert_eq!(accelerator.stats().query_invalidations, 0);
}

#[test]
fn opt_in_invalidation_drops_the_written_partitions_queries_and_the_tables_scans() {
    let (db, accelerator, _clock) = setup(true);
    put_direct(&db, song("Acme", "A", 1));
    put_direct(&db, song("Zed", "Z", 1));
    assert_eq!(titles(&accelerator, "Acme"), ["A"]);
    assert_eq!(titles(&accelerator, "Zed"), ["Z"]);
    assert_eq!(scanned(&accelerator), 2);
    accelerator
        .put_item("Music")
        .item(song("Acme", "B", 1))
        .send()
        .unwrap();
    assert_eq!(titles(&accelerator, "Acme"), ["A", "B"]);
    assert_eq!(scanned(&accelerator), 3);
    // Another partition's page is still cached (and so still a hit).
    assert_eq!(titles(&accelerator, "Zed"), ["Z"]);
    let stats = accelerator.stats();
    assert_eq!(stats.query_invalidations, 2);
    assert_eq!((stats.query_hits, stats.query_misses), (1, 5));
    // Deletes and updates invalidate too; a failed write does not.
    accelerator
        .delete_item("Music")
        .key(key("Acme", "A"))
        .send()
        .unwrap();
    assert_eq!(titles(&accelerator, "Acme"), ["B"]);
    let refused = accelerator
        .update_item("Music")
        .key(key("Acme", "B"))
        .update_expression("SET Plays = :p")
        .condition_expression("Plays > :p")
        .value(":p", 100)
        .send();
    assert!(matches!(refused, Err(Error::ConditionalCheckFailed { .. })));
    assert_eq!(titles(&accelerator, "Acme"), ["B"]);
    assert_eq!(accelerator.stats().query_hits, 2);
}

#[test]
fn consistent_and_transactional_reads_pass_through_uncached() {
    let (db, accelerator, _clock) = setup(false);
    put_direct(&db, song("Acme", "Hi", 1));
    assert_eq!(get(&accelerator, "Acme", "Hi"), Some(song("Acme", "Hi", 1)));
    assert_eq!(titles(&accelerator, "Acme"), ["Hi"]);
    put_direct(&db, song("Acme", "Hi", 2));
    put_direct(&db, song("Acme", "Ho", 1));
    let consistent = accelerator
        .get_item("Music")
        .key(key("Acme", "Hi"))
        .consistent_read(true)
        .send()
        .unwrap();
    assert_eq!(consistent.item, Some(song("Acme", "Hi", 2)));
    let page = accelerator
        .query("Music")
        .key_condition_expression("Artist = :a")
        .value(":a", "Acme")
        .consistent_read(true)
        .send()
        .unwrap();
    assert_eq!(page.count, 2);
    assert_eq!(
        accelerator
            .scan("Music")
            .consistent_read(true)
            .send()
            .unwrap()
            .count,
        2
    );
    let transactional = accelerator
        .transact_get_items()
        .item(TransactGet::new("Music", key("Acme", "Hi")))
        .send()
        .unwrap();
    assert_eq!(transactional.responses, [Some(song("Acme", "Hi", 2))]);
    let batch = accelerator
        .batch_get_item()
        .request_items(
            "Music",
            KeysAndAttributes {
                keys: vec![key("Acme", "Hi")],
                consistent_read: true,
                ..KeysAndAttributes::default()
            },
        )
        .send()
        .unwrap();
    assert_eq!(batch.responses["Music"], [song("Acme", "Hi", 2)]);
    // Nothing was cached by them: the eventually consistent reads are stale.
    assert_eq!(get(&accelerator, "Acme", "Hi"), Some(song("Acme", "Hi", 1)));
    assert_eq!(titles(&accelerator, "Acme"), ["Hi"]);
    let stats = accelerator.stats();
    assert_eq!(stats.pass_through_reads, 5);
    assert_eq!((stats.item_hits, stats.item_misses), (1, 1));
    assert_eq!((stats.query_hits, stats.query_misses), (1, 1));
}

#[test]
fn an_absent_item_is_cached_until_a_write_through_replaces_it() {
    let (db, accelerator, clock) = setup(false);
    assert_eq!(get(&accelerator, "Acme", "Hi"), None);
    put_direct(&db, song("Acme", "Hi", 1));
    // The absence is cached: the direct write is not seen yet.
    assert_eq!(get(&accelerator, "Acme", "Hi"), None);
    accelerator
        .put_item("Music")
        .item(song("Acme", "Hi", 2))
        .send()
        .unwrap();
    assert_eq!(get(&accelerator, "Acme", "Hi"), Some(song("Acme", "Hi", 2)));
    // A delete through the accelerator caches the absence again.
    accelerator
        .delete_item("Music")
        .key(key("Acme", "Hi"))
        .send()
        .unwrap();
    put_direct(&db, song("Acme", "Hi", 3));
    assert_eq!(get(&accelerator, "Acme", "Hi"), None);
    clock.advance(ITEM_TTL);
    assert_eq!(get(&accelerator, "Acme", "Hi"), Some(song("Acme", "Hi", 3)));
    let stats = accelerator.stats();
    assert_eq!((stats.item_hits, stats.item_misses), (3, 2));
}

#[test]
fn a_write_that_fails_its_condition_leaves_the_cache_as_it_was() {
    let (db, accelerator, _clock) = setup(false);
    put_direct(&db, song("Acme", "Hi", 1));
    assert_eq!(get(&accelerator, "Acme", "Hi"), Some(song("Acme", "Hi", 1)));
    assert_eq!(get(&accelerator, "Acme", "None"), None);
    // Made stale on purpose, so a cache change would show.
    put_direct(&db, song("Acme", "Hi", 5));
    let before = accelerator.stats().item_cache;
    let put = accelerator
        .put_item("Music")
        .item(song("Acme", "Hi", 9))
        .condition_expression("attribute_not_exists(Artist)")
        .send();
    assert!(matches!(put, Err(Error::ConditionalCheckFailed { .. })));
    let update = accelerator
        .update_item("Music")
        .key(key("Acme", "Hi"))
        .update_expression("SET Plays = :p")
        .condition_expression("Plays = :p")
        .value(":p", 9)
        .send();
    assert!(matches!(update, Err(Error::ConditionalCheckFailed { .. })));
    let delete = accelerator
        .delete_item("Music")
        .key(key("Acme", "None"))
        .condition_expression("attribute_exists(Artist)")
        .send();
    assert!(matches!(delete, Err(Error::ConditionalCheckFailed { .. })));
    let invalid = accelerator
        .put_item("Music")
        .item(item! { "Artist" => "Acme" })
        .send();
    assert!(matches!(invalid, Err(Error::Validation(_))));
    let after = accelerator.stats().item_cache;
    assert_eq!(
        (after.entries, after.bytes_used, after.inserts),
        (before.entries, before.bytes_used, before.inserts)
    );
    assert_eq!(get(&accelerator, "Acme", "Hi"), Some(song("Acme", "Hi", 1)));
    assert_eq!(get(&accelerator, "Acme", "None"), None);
    assert_eq!(accelerator.stats().item_writes, 0);
}

#[test]
fn transact_write_items_refreshes_the_items_it_wrote() {
    let (db, accelerator, _clock) = setup(false);
    put_direct(&db, song("Acme", "A", 1));
    put_direct(&db, song("Acme", "C", 1));
    assert_eq!(get(&accelerator, "Acme", "A"), Some(song("Acme", "A", 1)));
    assert_eq!(get(&accelerator, "Acme", "B"), None);
    assert_eq!(get(&accelerator, "Acme", "C"), Some(song("Acme", "C", 1)));
    accelerator
        .transact_write_items()
        .item(
            TransactUpdate::new("Music", key("Acme", "A"), "SET Plays = Plays + :n")
                .value(":n", 10),
        )
        .item(TransactPut::new("Music", song("Acme", "B", 2)))
        .item(
            TransactDelete::new("Music", key("Acme", "C"))
                .condition_expression("attribute_exists(Plays)"),
        )
        .send()
        .unwrap();
    assert_eq!(get(&accelerator, "Acme", "A"), Some(song("Acme", "A", 11)));
    assert_eq!(get(&accelerator, "Acme", "B"), Some(song("Acme", "B", 2)));
    assert_eq!(get(&accelerator, "Acme", "C"), None);
    let stats = accelerator.stats();
    assert_eq!((stats.item_hits, stats.item_misses), (3, 3));
    assert_eq!(stats.item_writes, 3);
    // A cancelled transaction changes nothing, in the table or the cache.
    let cancelled = accelerator
        .transact_write_items()
        .item(TransactPut::new("Music", song("Acme", "A", 99)))
        .item(
            TransactDelete::new("Music", key("Acme", "B"))
                .condition_expression("attribute_not_exists(Plays)"),
        )
        .send();
    assert!(matches!(cancelled, Err(Error::TransactionCanceled { .. })));
    assert_eq!(get(&accelerator, "Acme", "A"), Some(song("Acme", "A", 11)));
    assert_eq!(get(&accelerator, "Acme", "B"), Some(song("Acme", "B", 2)));
    assert_eq!(accelerator.stats().item_writes, 3);
}

#[test]
fn batch_reads_and_writes_use_the_item_cache() {
    let (db, accelerator, _clock) = setup(false);
    put_direct(&db, song("Acme", "A", 1));
    assert_eq!(get(&accelerator, "Acme", "A"), Some(song("Acme", "A", 1)));
    accelerator
        .batch_write_item()
        .put("Music", song("Acme", "B", 2))
        .delete("Music", key("Acme", "A"))
        .request_items("Music", [WriteRequest::Put(song("Acme", "C", 3))])
        .send()
        .unwrap();
    put_direct(&db, song("Acme", "D", 4));
    let batch = accelerator
        .batch_get_item()
        .request_items(
            "Music",
            KeysAndAttributes {
                keys: vec![
                    key("Acme", "A"),
                    key("Acme", "B"),
                    key("Acme", "C"),
                    key("Acme", "D"),
                ],
                projection_expression: Some("#t, Plays".into()),
                expression_attribute_names: Some(
                    [("#t".to_owned(), "SongTitle".to_owned())].into(),
                ),
                consistent_read: false,
            },
        )
        .return_consumed_capacity(ReturnConsumedCapacity::Total)
        .send()
        .unwrap();
    let mut found = batch.responses["Music"].clone();
    found.sort_by(|a, b| a["SongTitle"].as_s().cmp(&b["SongTitle"].as_s()));
    assert_eq!(
        found,
        [
            item! { "SongTitle" => "B", "Plays" => 2 },
            item! { "SongTitle" => "C", "Plays" => 3 },
            item! { "SongTitle" => "D", "Plays" => 4 },
        ]
    );
    // Only D was read from the table (one 1-unit eventually consistent read).
    assert_eq!(batch.consumed_capacity[0].read_capacity_units, 0.5);
    let stats = accelerator.stats();
    assert_eq!((stats.item_hits, stats.item_misses), (3, 2));
    // Duplicate keys are the table's error, even when every key is cached.
    let duplicate = accelerator
        .batch_get_item()
        .key("Music", key("Acme", "B"))
        .key("Music", key("Acme", "B"))
        .send();
    assert!(matches!(duplicate, Err(Error::Validation(_))));
}

#[test]
fn mutating_a_returned_item_never_changes_the_cached_one() {
    let (db, accelerator, _clock) = setup(false);
    put_direct(&db, song("Acme", "Hi", 1));
    // The miss returns the item it cached; the hits share the cached map.
    let mut from_miss = get(&accelerator, "Acme", "Hi").unwrap();
    let mut from_hit = get(&accelerator, "Acme", "Hi").unwrap();
    let again = get(&accelerator, "Acme", "Hi").unwrap();
    assert!(
        from_hit.shares_with(&again),
        "a hit hands out the cached item"
    );
    from_miss.insert("Plays".to_owned(), 100.into());
    from_hit.insert("Extra".to_owned(), "x".into());
    from_hit.remove("Plays");
    let mut shared = accelerator
        .get_item("Music")
        .key(key("Acme", "Hi"))
        .send_shared()
        .unwrap()
        .unwrap();
    std::sync::Arc::make_mut(&mut shared).clear();
    let mut batch = accelerator
        .batch_get_item()
        .key("Music", key("Acme", "Hi"))
        .send()
        .unwrap();
    batch.responses.get_mut("Music").unwrap()[0].insert("Batch".to_owned(), 1.into());
    assert_eq!(get(&accelerator, "Acme", "Hi"), Some(song("Acme", "Hi", 1)));
    assert_eq!(again, song("Acme", "Hi", 1));
    assert_eq!(
        from_hit,
        item! { "Artist" => "Acme", "SongTitle" => "Hi", "Extra" => "x" }
    );
    // A write-through caches the caller's item; changing it afterwards
    // changes neither the cache nor the table.
    let mut written = song("Acme", "Hi", 2);
    accelerator
        .put_item("Music")
        .item(written.clone())
        .send()
        .unwrap();
    written.insert("Plays".to_owned(), 3.into());
    assert_eq!(get(&accelerator, "Acme", "Hi"), Some(song("Acme", "Hi", 2)));
    let stored = db.get_item("Music").key(key("Acme", "Hi")).send().unwrap();
    assert_eq!(stored.item, Some(song("Acme", "Hi", 2)));
    let stats = accelerator.stats();
    assert_eq!((stats.item_hits, stats.item_misses), (6, 1));
}

#[test]
fn a_hit_reports_zero_consumed_capacity_and_applies_the_projection() {
    let (db, accelerator, _clock) = setup(false);
    put_direct(&db, song("Acme", "Hi", 1));
    let request = || {
        accelerator
            .get_item("Music")
            .key(key("Acme", "Hi"))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
    };
    let miss = request().send().unwrap();
    assert_eq!(miss.consumed_capacity.unwrap().read_capacity_units, 0.5);
    let hit = request().projection_expression("Plays").send().unwrap();
    assert_eq!(hit.item, Some(item! { "Plays" => 1 }));
    let capacity = hit.consumed_capacity.unwrap();
    assert_eq!(
        (capacity.table_name.as_str(), capacity.capacity_units),
        ("Music", 0.0)
    );
    let shared = accelerator
        .get_item("Music")
        .key(key("Acme", "Hi"))
        .send_shared()
        .unwrap();
    assert_eq!(shared.as_deref(), Some(&song("Acme", "Hi", 1)));
    // A projection the table refuses is the table's error.
    let bad = request().projection_expression("#missing").send();
    assert!(matches!(bad, Err(Error::Validation(_))));
    let stats = accelerator.stats();
    assert_eq!(
        (stats.item_hits, stats.item_misses, stats.pass_through_reads),
        (2, 1, 1)
    );
}

#[test]
fn query_pages_are_keyed_by_every_parameter() {
    let (db, accelerator, _clock) = setup(false);
    for title in ["A", "B", "C"] {
        put_direct(&db, song("Acme", title, 1));
    }
    let query = || {
        accelerator
            .query("Music")
            .key_condition_expression("Artist = :a")
            .value(":a", "Acme")
    };
    let first = query().limit(2).send().unwrap();
    assert_eq!(first.count, 2);
    let next = query()
        .limit(2)
        .exclusive_start_key(first.last_evaluated_key.clone().unwrap())
        .send()
        .unwrap();
    assert_eq!(next.items, [song("Acme", "C", 1)]);
    assert_eq!(
        query()
            .scan_index_forward(false)
            .limit(1)
            .send()
            .unwrap()
            .items,
        [song("Acme", "C", 1)]
    );
    assert_eq!(query().send().unwrap().count, 3);
    let filtered = query()
        .filter_expression("Plays > :p")
        .value(":p", 0)
        .send()
        .unwrap();
    assert_eq!(filtered.count, 3);
    assert_eq!(query().limit(2).send().unwrap(), first);
    let stats = accelerator.stats();
    assert_eq!((stats.query_hits, stats.query_misses), (1, 5));
    // `items()` pages through the cache: both pages of two were cached above.
    let all: Vec<Item> = query().limit(2).items().map(Result::unwrap).collect();
    assert_eq!(all, ["A", "B", "C"].map(|t| song("Acme", t, 1)));
    let stats = accelerator.stats();
    assert_eq!((stats.query_hits, stats.query_misses), (3, 5));
    let scanned = accelerator.scan("Music").limit(1).items().count();
    assert_eq!(scanned, 3);
    // An empty page is cached too (negative caching).
    let empty = || {
        accelerator
            .query("Music")
            .key_condition_expression("Artist = :a")
            .value(":a", "Nobody")
            .send()
            .unwrap()
            .count
    };
    assert_eq!(empty(), 0);
    put_direct(&db, song("Nobody", "X", 1));
    assert_eq!(empty(), 0);
    // Errors are the table's, and not cached.
    let invalid = accelerator
        .query("Music")
        .limit(0)
        .key_condition_expression("Artist = :a")
        .value(":a", "x")
        .send();
    assert!(matches!(invalid, Err(Error::Validation(_))));
}

#[test]
fn statistics_count_every_lookup_once() {
    let (db, accelerator, _clock) = setup(false);
    for title in ["A", "B"] {
        put_direct(&db, song("Acme", title, 1));
    }
    for _ in 0..3 {
        get(&accelerator, "Acme", "A");
        get(&accelerator, "Acme", "Missing");
        titles(&accelerator, "Acme");
    }
    accelerator
        .batch_get_item()
        .key("Music", key("Acme", "A"))
        .key("Music", key("Acme", "B"))
        .send()
        .unwrap();
    accelerator
        .put_item("Music")
        .item(song("Acme", "C", 1))
        .send()
        .unwrap();
    let stats = accelerator.stats();
    assert_eq!(stats.item_hits, 4 + 1);
    assert_eq!(stats.item_misses, 2 + 1);
    assert_eq!((stats.query_hits, stats.query_misses), (2, 1));
    assert_eq!(stats.item_writes, 1);
    assert_eq!(stats.pass_through_reads, 0);
    assert!((stats.item_hit_ratio() - 5.0 / 8.0).abs() < 1e-9);
    assert_eq!(stats.item_cache.entries, 4);
    assert_eq!(stats.query_cache.entries, 1);
    accelerator.invalidate_all();
    assert_eq!(accelerator.stats().item_cache.entries, 0);
    get(&accelerator, "Acme", "A");
    assert_eq!(accelerator.stats().item_misses, 4);
}

#[test]
fn cache_aside_caches_use_the_accelerators_clock_and_item_ttl() {
    let (_db, accelerator, clock) = setup(false);
    let derived = accelerator
        .cache_aside::<String, usize>()
        .max_bytes(1 << 20)
        .build();
    let mut loads = 0;
    let mut load = |key: &String| -> Result<usize, String> {
        loads += 1;
        Ok(key.len())
    };
    assert_eq!(derived.get_or_load("four".to_owned(), &mut load), Ok(4));
    assert_eq!(derived.get_or_load("four".to_owned(), &mut load), Ok(4));
    clock.advance(ITEM_TTL);
    assert_eq!(derived.get_or_load("four".to_owned(), &mut load), Ok(4));
    assert_eq!(loads, 2);
}

#[test]
fn concurrent_writers_and_readers_leave_the_cache_equal_to_the_table() {
    let (db, accelerator, _clock) = setup(false);
    let titles: Vec<String> = (0..2).map(|n| format!("T{n}")).collect();
    std::thread::scope(|scope| {
        for thread in 0..4_i64 {
            let (accelerator, titles) = (&accelerator, &titles);
            scope.spawn(move || {
                for round in 0..400_i64 {
                    let title = &titles[((thread + round) % 2) as usize];
                    match round % 4 {
                        0 => {
                            accelerator
                                .put_item("Music")
                                .item(song("Acme", title, thread * 1000 + round))
                                .send()
                                .unwrap();
                        }
                        1 | 2 => {
                            accelerator
                                .update_item("Music")
                                .key(key("Acme", title))
                                .update_expression("ADD Plays :one")
                                .value(":one", 1)
                                .send()
                                .unwrap();
                        }
                        _ => {
                            get(accelerator, "Acme", title);
                        }
                    }
                }
            });
        }
    });
    for title in &titles {
        let stored = db.get_item("Music").key(key("Acme", title)).send().unwrap();
        assert_eq!(get(&accelerator, "Acme", title), stored.item, "{title}");
    }
}

#[test]
fn index_queries_are_cached_apart_and_invalidated_by_any_write_to_the_table() {
    let db = Database::memory().unwrap();
    db.create_table("Music")
        .partition_key("Artist", ScalarType::S)
        .sort_key("SongTitle", ScalarType::S)
        .attribute_definition("Genre", ScalarType::S)
        .global_secondary_index(GlobalSecondaryIndex::new("ByGenre", "Genre"))
        .send()
        .unwrap();
    let accelerator = Accelerator::builder(db.clone())
        .clock(ManualClock::new())
        .invalidate_queries_on_write(true)
        .build();
    let genre = |title: &str| item! { "Artist" => "Acme", "SongTitle" => title, "Genre" => "Jazz" };
    put_direct(&db, genre("A"));
    let jazz = || {
        accelerator
            .query("Music")
            .index_name("ByGenre")
            .key_condition_expression("Genre = :g")
            .value(":g", "Jazz")
            .send()
            .unwrap()
            .count
    };
    assert_eq!(jazz(), 1);
    // The table's own query with the same condition is another page.
    let table_query = accelerator
        .query("Music")
        .key_condition_expression("Artist = :g")
        .value(":g", "Jazz")
        .send()
        .unwrap();
    assert_eq!(table_query.count, 0);
    assert_eq!(jazz(), 1);
    // A write to another partition of the table changes the index's page.
    accelerator
        .put_item("Music")
        .item(item! { "Artist" => "Zed", "SongTitle" => "B", "Genre" => "Jazz" })
        .send()
        .unwrap();
    assert_eq!(jazz(), 2);
    let stats = accelerator.stats();
    assert_eq!((stats.query_hits, stats.query_misses), (1, 3));
}

#[test]
fn item_keys_of_every_key_type_and_long_table_names_hit_and_stay_distinct() {
    let db = Database::memory().unwrap();
    // Longer than a request keeps inline, so it lives on the heap.
    let table = "A-table-name-longer-than-thirty-bytes.v2";
    db.create_table(table)
        .partition_key("Id", ScalarType::N)
        .sort_key("Part", ScalarType::B)
        .send()
        .unwrap();
    let accelerator = Accelerator::new(db.clone());
    let number = |text: &str| nimbus::AttributeValue::N(text.parse().unwrap());
    let key = |id: &str, part: &[u8]| {
        item! { "Id" => number(id), "Part" => nimbus::AttributeValue::B(part.to_vec()) }
    };
    for (id, part) in [("1", &b"a"[..]), ("-1", b"a"), ("10", b"a"), ("1", b"b")] {
        let mut stored = key(id, part);
        stored.insert("Id text".to_owned(), id.into());
        db.put_item(table).item(stored).send().unwrap();
    }
    let read = |id: &str, part: &[u8]| {
        let output = accelerator
            .get_item(table)
            .key(key(id, part))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .unwrap();
        assert_eq!(output.consumed_capacity.unwrap().table_name, table);
        output.item.map(|item| item["Id text"].clone())
    };
    for _ in 0..2 {
        assert_eq!(read("1", b"a"), Some("1".into()));
        // Equal numbers are one key: 1.0 is 1.
        assert_eq!(read("1.0", b"a"), Some("1".into()));
        assert_eq!(read("-1", b"a"), Some("-1".into()));
        assert_eq!(read("10", b"a"), Some("10".into()));
        assert_eq!(read("1", b"b"), Some("1".into()));
        assert_eq!(read("0", b"a"), None);
    }
    let stats = accelerator.stats();
    assert_eq!((stats.item_misses, stats.item_hits), (5, 7));
}
