//! A tour of nimbus on a temporary directory. It grows with every service;
//! today it shows the value model every service stores (DynamoDB items,
//! canonical numbers, DynamoDB JSON, serde conversion, validation, the
//! order-preserving key encoding), the storage engine under them,
//! DynamoDB-style tables (conditions, updates, query pages, batches and
//! transactions), streams, TTL, backups and point-in-time recovery, the
//! S3-style object store (versions, delete markers, deduplicated bodies),
//! whole-database checkpoints, replication (a synchronous standby, a read
//! replica, a failover; multi-active tables) and the byte-bounded cache.
//!
//! Run it with `cargo run --release --example tour`.

use std::error::Error;

use nimbus::storage::{Direction, Engine, EngineOptions, WriteBatch};
use nimbus::value::{
    KeyRole, encode_key_value, from_item, item_size, to_item, validate_item, validate_key_value,
};
use nimbus::{AttributeValue, Item, Number, ScalarType, item};
use serde::{Deserialize, Serialize};

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Song {
    artist: String,
    title: String,
    year: u16,
    rating: f64,
    tags: Vec<String>,
}

fn main() -> Result<(), Box<dyn Error>> {
    let directory = tempfile::tempdir()?;
    println!("nimbus tour in {}", directory.path().display());

    section("Items");
    let song = item! {
        "Artist" => "Acme Band",
        "SongTitle" => "Happy Day",
        "Year" => 2020,
        "Tags" => AttributeValue::string_set(["pop", "rock"]),
    };
    println!("item!{{..}}          -> {song}");
    println!("size (DynamoDB)     -> {} bytes", item_size(&song));
    validate_item(&song)?;

    section("Numbers are exact decimals, stored canonically");
    for text in ["1e3", "1000.0", "01000", "-0", ".5", "1.10"] {
        println!("{text:>8} -> {}", text.parse::<Number>()?);
    }
    let sum = "0.1".parse::<Number>()?.checked_add(&"0.2".parse()?)?;
    println!("0.1 + 0.2 -> {sum} (exactly)");
    match "1".repeat(39).parse::<Number>() {
        Err(error) => println!("39 digits -> ValidationException: {error}"),
        Ok(number) => println!("39 digits -> unexpectedly accepted: {number}"),
    }

    section("DynamoDB JSON, both ways");
    let parsed = Item::from_json(r#"{"Id":{"N":"42"},"Blob":{"B":"AAEC"},"Ok":{"BOOL":true}}"#)?;
    println!("parsed              -> {parsed:?}");
    match AttributeValue::from_json(r#"{"SS":["a","a"]}"#) {
        Err(error) => println!("duplicate set       -> {error}"),
        Ok(value) => println!("duplicate set       -> unexpectedly accepted: {value}"),
    }

    section("Any serde type converts to and from an item");
    let rust_song = Song {
        artist: "Acme Band".into(),
        title: "Happy Day".into(),
        year: 2020,
        rating: 4.5,
        tags: vec!["pop".into()],
    };
    let as_item = to_item(&rust_song)?;
    println!("to_item             -> {as_item}");
    let back: Song = from_item(as_item)?;
    assert_eq!(back, rust_song);
    println!("from_item           -> {back:?}");

    section("Keys encode so that byte order is DynamoDB's order");
    let mut keys: Vec<(Vec<u8>, String)> = ["10", "-2.5", "9", "1e-3", "0", "-100"]
        .iter()
        .map(|text| {
            let value = AttributeValue::N(text.parse()?);
            let mut encoded = Vec::new();
            encode_key_value(&value, &mut encoded)?;
            Ok((encoded, (*text).to_owned()))
        })
        .collect::<Result<_, Box<dyn Error>>>()?;
    keys.sort();
    let order: Vec<&str> = keys.iter().map(|(_, text)| text.as_str()).collect();
    println!("sorted by bytes     -> {}", order.join(" < "));
    if let Err(error) = validate_key_value("Artist", KeyRole::Partition, ScalarType::S, &"".into())
    {
        println!("empty key           -> {error}");
    }

    storage_engine(&directory.path().join("engine"))?;
    tables(&directory.path().join("tables"))?;
    streams_and_backups(&directory.path().join("streams"))?;
    objects(&directory.path().join("objects"))?;
    point_in_time(&directory.path().join("pitr"))?;
    replication(&directory.path().join("replication"))?;
    multi_active()?;
    cache()
}

/// Point-in-time recovery and a whole-database checkpoint.
fn point_in_time(path: &std::path::Path) -> Result<(), Box<dyn Error>> {
    use std::time::{Duration, SystemTime};

    section("Point-in-time recovery and checkpoints");
    let db = nimbus::Database::open(path.join("db"))?;
    db.create_table("Prices")
        .partition_key("sku", ScalarType::S)
        .send()?;
    db.update_continuous_backups("Prices")
        .point_in_time_recovery_enabled(true)
        .send()?;
    db.put_item("Prices")
        .item(item! { "sku" => "tea", "cents" => 350 })
        .send()?;
    std::thread::sleep(Duration::from_millis(5));
    let before_the_rise = SystemTime::now();
    std::thread::sleep(Duration::from_millis(5));
    db.put_item("Prices")
        .item(item! { "sku" => "tea", "cents" => 420 })
        .send()?;
    db.restore_table_to_point_in_time("Prices", "PricesBefore")
        .restore_date_time(before_the_rise)
        .send()?;
    let key = item! { "sku" => "tea" };
    let now = db.get_item("Prices").key(key.clone()).send()?.item;
    let then = db.get_item("PricesBefore").key(key).send()?.item;
    println!(
        "tea now {:?}, restored to before the rise {:?}",
        now.map(|i| i["cents"].clone()),
        then.map(|i| i["cents"].clone())
    );
    db.objects().create_bucket("receipts").send()?;
    db.objects()
        .put_object("receipts", "r1")
        .body(b"tea x1".to_vec())
        .send()?;
    db.checkpoint(path.join("copy"))?;
    db.close()?;
    let copy = nimbus::Database::open(path.join("copy"))?;
    println!(
        "checkpoint opens with {} table(s) and receipt {:?}",
        copy.list_tables().send()?.table_names.len(),
        String::from_utf8(
            copy.objects()
                .get_object("receipts", "r1")
                .send()?
                .body
                .collect()?
                .to_vec()
        )?
    );
    copy.close()?;
    Ok(())
}

/// A primary with a synchronous standby and a read replica on an
/// in-process network; then the primary goes and the standby takes over
/// with every acknowledged write.
fn replication(path: &std::path::Path) -> Result<(), Box<dyn Error>> {
    use std::sync::Arc;

    use nimbus::replication::{
        Faults, MemoryNetwork, NodeOptions, ReplicationNode, SyncPolicy, Transport,
    };
    use nimbus::storage::fs::{FileSystem, OsFileSystem};

    section("Replication: a synchronous standby, a read replica, a failover");
    let net = MemoryNetwork::new(7, Faults::NONE);
    let transport = || Arc::clone(&net) as Arc<dyn Transport>;
    let fs: Arc<dyn FileSystem> = Arc::new(OsFileSystem::new(true));
    let mut options = NodeOptions::new(0);
    options.sync = Some(SyncPolicy::default());
    let primary =
        ReplicationNode::open_primary(fs.clone(), path.join("primary"), transport(), options)?;
    let standby = ReplicationNode::open_replica(
        fs.clone(),
        path.join("standby"),
        transport(),
        NodeOptions::new(1),
        0,
    )?;
    let replica = ReplicationNode::open_replica(
        fs,
        path.join("replica"),
        transport(),
        NodeOptions::new(2),
        0,
    )?;
    primary.add_standby(1);
    primary.add_replica(2);
    let settle = |nodes: &[&ReplicationNode]| {
        for _ in 0..20 {
            for node in nodes {
                node.tick();
            }
            net.run_until_idle(100_000);
            net.advance(5_000);
        }
    };
    settle(&[&primary, &standby, &replica]);
    let db = primary.database()?;
    db.create_table("Accounts")
        .partition_key("id", ScalarType::S)
        .send()?;
    // Each commit returns once the standby has it durably.
    for (id, balance) in [("alice", 100), ("bob", 250)] {
        db.put_item("Accounts")
            .item(item! { "id" => id, "balance" => balance })
            .send()?;
    }
    // Object bodies live in pack files beside the log; they travel ahead
    // of the batch that names them, so the standby holds them too.
    let statement = "statement line\n".repeat(4_096).into_bytes();
    db.objects().create_bucket("statements").send()?;
    db.objects()
        .put_object("statements", "alice/2026-11.txt")
        .body(statement.clone())
        .send()?;
    settle(&[&primary, &standby, &replica]);
    let read = replica
        .database()?
        .get_item("Accounts")
        .key(item! { "id" => "bob" })
        .send()?;
    println!(
        "read replica sees bob: {:?}",
        read.item.map(|i| i["balance"].clone())
    );
    for lag in primary.lag() {
        println!(
            "follower {} ({}): {} sequence numbers behind",
            lag.node,
            if lag.synchronous {
                "standby"
            } else {
                "replica"
            },
            lag.sequence_lag
        );
    }
    primary.close()?;
    let epoch = standby.promote()?;
    let promoted = standby.database()?;
    let alice = promoted
        .get_item("Accounts")
        .key(item! { "id" => "alice" })
        .send()?;
    println!(
        "standby promoted (epoch {epoch}); alice: {:?}",
        alice.item.map(|i| i["balance"].clone())
    );
    let body = promoted
        .objects()
        .get_object("statements", "alice/2026-11.txt")
        .send()?
        .body
        .collect()?;
    println!(
        "its copy of alice's {} KiB statement is intact: {}",
        body.len() >> 10,
        body.as_ref() == statement.as_slice()
    );
    standby.close()?;
    replica.close()?;
    Ok(())
}

/// Two databases accepting writes to the same table, converging by
/// last-writer-wins on hybrid logical clocks.
fn multi_active() -> Result<(), Box<dyn Error>> {
    use std::sync::Arc;

    use nimbus::replication::multi::{ReplicaConfig, ReplicaId, SimNetwork};

    section("Multi-active tables: both sides write, both converge");
    let network = Arc::new(SimNetwork::new(1));
    let mut dbs = Vec::new();
    for me in [1u64, 2] {
        let db = nimbus::Database::memory()?;
        db.create_table("Carts")
            .partition_key("user", ScalarType::S)
            .send()?;
        let multi = db.multi_active();
        multi.configure(ReplicaConfig::new(ReplicaId(me), [ReplicaId(3 - me)]))?;
        multi.replicate_table("Carts")?;
        multi.connect(network.clone());
        dbs.push(db);
    }
    dbs[0]
        .put_item("Carts")
        .item(item! { "user" => "ann", "items" => 1 })
        .send()?;
    dbs[1]
        .put_item("Carts")
        .item(item! { "user" => "ben", "items" => 2 })
        .send()?;
    dbs[1]
        .put_item("Carts")
        .item(item! { "user" => "ann", "items" => 3 })
        .send()?;
    for _ in 0..6 {
        for db in &dbs {
            db.multi_active().step()?;
        }
        network.tick();
    }
    for (n, db) in dbs.iter().enumerate() {
        let carts: Vec<String> = db
            .scan("Carts")
            .send()?
            .items
            .iter()
            .map(|i| {
                format!(
                    "{}={}",
                    i["user"].as_s().unwrap_or("?"),
                    i["items"].as_n().map(|n| n.to_string()).unwrap_or_default()
                )
            })
            .collect();
        println!(
            "replica {} holds {:?}; conflicts {:?}",
            n + 1,
            carts,
            db.multi_active().table_stats("Carts").conflicts
        );
    }
    Ok(())
}

/// Change streams, TTL, backups, and export to / import from the object
/// store.
fn streams_and_backups(path: &std::path::Path) -> Result<(), Box<dyn Error>> {
    use nimbus::Database;
    use nimbus::kv::{
        InputCompressionType, ShardIteratorType, StreamSpecification, StreamViewType,
    };
    section("Streams, TTL, backups, export and import");
    let db = Database::open(path)?;
    db.create_table("Orders")
        .partition_key("id", ScalarType::S)
        .stream_specification(StreamSpecification {
            stream_enabled: true,
            stream_view_type: Some(StreamViewType::NewAndOldImages),
        })
        .send()?;
    db.update_time_to_live("Orders")
        .attribute_name("expires")
        .enabled(true)
        .send()?;
    db.put_item("Orders")
        .item(item! { "id" => "o1", "amount" => 30 })
        .send()?;
    db.update_item("Orders")
        .key(item! { "id" => "o1" })
        .update_expression("SET amount = amount + :d")
        .value(":d", 5)
        .send()?;
    // Expired a minute ago: the sweep deletes it as the service would.
    let past = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs()
        - 60;
    db.put_item("Orders")
        .item(item! { "id" => "o2", "amount" => 1, "expires" => past })
        .send()?;
    let swept = db.run_ttl_sweep_now()?;
    let arn = db
        .describe_table("Orders")
        .send()?
        .table
        .latest_stream_arn
        .ok_or("no stream")?;
    let shard = db.describe_stream(&arn).send()?.stream_description.shards[0]
        .shard_id
        .clone();
    let iterator = db
        .get_shard_iterator(&arn, &shard, ShardIteratorType::TrimHorizon)
        .send()?
        .shard_iterator;
    let records = db.get_records(&iterator).send()?.records;
    let events: Vec<String> = records
        .iter()
        .map(|r| {
            let by = r
                .user_identity
                .as_ref()
                .map_or(String::new(), |u| format!(" by {}", u.principal_id));
            let id = r.dynamodb.keys["id"].as_s().unwrap_or_default();
            format!("{:?} {id}{by}", r.event_name)
        })
        .collect();
    println!("TTL sweep deleted {swept}; stream -> {events:?}");

    let backup = db
        .create_backup("Orders")
        .backup_name("before-cleanup")
        .send()?
        .backup_details;
    db.delete_item("Orders")
        .key(item! { "id" => "o1" })
        .send()?;
    let restored = db
        .restore_table_from_backup("OrdersRestored")
        .backup_arn(&backup.backup_arn)
        .send()?
        .table_description;
    println!(
        "backup {} -> restored {} with {} item(s); Orders now has {}",
        backup.backup_name,
        restored.table_name,
        restored.item_count,
        db.scan("Orders").send()?.count
    );
    db.objects().create_bucket("exports").send()?;
    let export = db
        .export_table_to_point_in_time("OrdersRestored")
        .s3_bucket("exports")
        .send()?
        .export_description;
    let imported = db
        .import_table()
        .s3_bucket_source(
            "exports",
            export
                .export_manifest
                .replace("manifest-summary.json", "data/"),
        )
        .input_compression_type(InputCompressionType::Gzip)
        .table_creation_parameters(
            db.create_table("OrdersImported")
                .partition_key("id", ScalarType::S),
        )
        .send()?
        .import_table_description;
    println!(
        "export -> {} ({} items); import -> {} imported, {} rejected",
        export.export_manifest,
        export.item_count,
        imported.imported_item_count,
        imported.error_count
    );
    db.close()?;
    Ok(())
}

/// The S3-style object store: versions, delete markers, dedup.
fn objects(path: &std::path::Path) -> Result<(), Box<dyn Error>> {
    use nimbus::Database;
    use nimbus::objects::BucketVersioningStatus;

    section("Objects: versions, delete markers, content-addressed bodies");
    let db = Database::open(path)?;
    let s3 = db.objects();
    s3.create_bucket("photos").send()?;
    s3.put_bucket_versioning("photos")
        .status(BucketVersioningStatus::Enabled)
        .send()?;
    let body: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let first = s3
        .put_object("photos", "cat.raw")
        .body(body.clone())
        .send()?;
    let mut edited = body.clone();
    edited[1_500_000] ^= 0xff;
    let second = s3.put_object("photos", "cat.raw").body(edited).send()?;
    println!(
        "two versions          -> {:?}, {:?}",
        first.version_id, second.version_id
    );
    s3.delete_object("photos", "cat.raw").send()?;
    match s3.get_object("photos", "cat.raw").send() {
        Err(error) => println!("GET after delete      -> {error}"),
        Ok(_) => println!("GET after delete      -> unexpectedly found"),
    }
    let old = s3
        .get_object("photos", "cat.raw")
        .version_id(first.version_id.clone().unwrap_or_default())
        .send()?;
    println!(
        "GET of version 1      -> {} bytes, hash-checked",
        old.body.collect()?.len()
    );
    let versions = s3.list_object_versions("photos").send()?;
    for entry in &versions.entries {
        println!(
            "  {} {} latest={} marker={}",
            entry.key, entry.version_id, entry.is_latest, entry.delete_marker
        );
    }
    let verified = s3.verify()?;
    println!("verify                -> {verified:?}");
    db.close()?;
    Ok(())
}

/// DynamoDB-style tables: the same calls, limits and errors.
fn tables(path: &std::path::Path) -> Result<(), Box<dyn Error>> {
    use nimbus::kv::{self, ReturnValue, TransactPut, TransactUpdate};
    use nimbus::storage::Durability;
    use nimbus::{Database, DatabaseOptions};

    section("Tables: create, conditional put, update, query pages, a GSI");
    let db = Database::open_with(
        path,
        DatabaseOptions::default().durability(Durability::Buffered),
    )?;
    db.create_table("Music")
        .partition_key("Artist", ScalarType::S)
        .sort_key("SongTitle", ScalarType::S)
        .send()?;
    for (n, title) in ["Blue Sky", "Happy Day", "Rain", "Sunrise", "Thunder"]
        .iter()
        .enumerate()
    {
        db.put_item("Music")
            .item(item! { "Artist" => "Acme Band", "SongTitle" => *title, "Plays" => n as i64 })
            .condition_expression("attribute_not_exists(SongTitle)")
            .send()?;
    }
    let again = db
        .put_item("Music")
        .item(item! { "Artist" => "Acme Band", "SongTitle" => "Rain" })
        .condition_expression("attribute_not_exists(SongTitle)")
        .send();
    if let Err(error) = again {
        println!("second create of Rain -> {error}");
    }
    let plays = db
        .update_item("Music")
        .key(item! { "Artist" => "Acme Band", "SongTitle" => "Rain" })
        .update_expression(
            "SET Plays = Plays + :one, Tags = list_append(if_not_exists(Tags, :none), :tag)",
        )
        .value(":one", 1)
        .value(":none", AttributeValue::L(vec![]))
        .value(":tag", AttributeValue::L(vec!["wet".into()]))
        .return_values(ReturnValue::UpdatedNew)
        .send()?;
    println!("update, UPDATED_NEW   -> {:?}", plays.attributes);
    let mut start = None;
    let mut page_number = 0;
    loop {
        let mut query = db
            .query("Music")
            .key_condition_expression("Artist = :a")
            .filter_expression("Plays >= :min")
            .value(":a", "Acme Band")
            .value(":min", 1)
            .limit(2);
        if let Some(key) = start.take() {
            query = query.exclusive_start_key(key);
        }
        let page = query.send()?;
        page_number += 1;
        let titles: Vec<String> = page
            .items
            .iter()
            .map(|i| i["SongTitle"].to_string())
            .collect();
        println!(
            "query page {page_number}: scanned {}, matched {} {:?}",
            page.scanned_count, page.count, titles
        );
        match page.last_evaluated_key {
            Some(key) => start = Some(key),
            None => break,
        }
    }

    section("Transactions: all or nothing, with reasons");
    db.create_table("Accounts")
        .partition_key("id", ScalarType::S)
        .send()?;
    db.batch_write_item()
        .put("Accounts", item! { "id" => "alice", "balance" => 100 })
        .put("Accounts", item! { "id" => "bob", "balance" => 0 })
        .send()?;
    let transfer = |amount: i64| {
        db.transact_write_items()
            .item(
                TransactUpdate::new(
                    "Accounts",
                    item! { "id" => "alice" },
                    "SET balance = balance - :a",
                )
                .condition_expression("balance >= :a")
                .value(":a", amount),
            )
            .item(
                TransactUpdate::new(
                    "Accounts",
                    item! { "id" => "bob" },
                    "SET balance = balance + :a",
                )
                .value(":a", amount),
            )
            .item(TransactPut::new(
                "Accounts",
                item! { "id" => format!("log-{amount}") },
            ))
            .send()
    };
    transfer(60)?;
    match transfer(60) {
        Err(kv::Error::TransactionCanceled { reasons }) => {
            let codes: Vec<&str> = reasons.iter().map(|r| r.code.as_str()).collect();
            println!("second transfer of 60 -> cancelled {codes:?}");
        }
        other => println!("second transfer of 60 -> unexpected {other:?}"),
    }
    let accounts = db.scan("Accounts").send()?;
    println!(
        "accounts              -> {} items, {:?}",
        accounts.count,
        accounts
            .items
            .iter()
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
    );
    // A global secondary index added to the populated table: backfilled in
    // the background, then kept in the same batch as every write.
    db.update_table("Music")
        .attribute_definition("Plays", ScalarType::N)
        .create_global_secondary_index(
            kv::GlobalSecondaryIndex::new("ByPlays", "Artist").sort_key("Plays"),
        )
        .send()?;
    while db
        .describe_table("Music")
        .send()?
        .table
        .global_secondary_indexes[0]
        .index_status
        != kv::IndexStatus::Active
    {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    let top = db
        .query("Music")
        .index_name("ByPlays")
        .key_condition_expression("Artist = :a")
        .value(":a", "Acme Band")
        .scan_index_forward(false)
        .limit(2)
        .send()?;
    println!(
        "GSI ByPlays, top 2    -> {:?}",
        top.items
            .iter()
            .map(|i| format!("{} ({})", i["SongTitle"], i["Plays"]))
            .collect::<Vec<_>>()
    );
    // DAX-style accelerator: write-through item cache, and a query cache
    // that, as in DAX, writes do not invalidate.
    let accelerator = nimbus::cache::Accelerator::builder(db.clone()).build();
    let song = item! { "Artist" => "Acme Band", "SongTitle" => "Rain" };
    accelerator.get_item("Music").key(song.clone()).send()?;
    let hit = accelerator.get_item("Music").key(song).send()?;
    let stats = accelerator.stats();
    println!(
        "accelerator           -> Rain has {} plays; item hits {}, misses {}",
        hit.item
            .map_or_else(String::new, |i| i["Plays"].to_string()),
        stats.item_hits,
        stats.item_misses
    );
    let described = db.describe_table("Music").send()?.table;
    println!(
        "Music: {} items, {} bytes; index ByPlays: {} entries",
        described.item_count,
        described.table_size_bytes,
        described.global_secondary_indexes[0].item_count
    );
    db.close()?;
    let reopened = Database::open(path)?;
    println!(
        "after reopen, tables  -> {:?}",
        reopened.list_tables().send()?.table_names
    );
    reopened.close()?;
    Ok(())
}

/// The byte-bounded cache with TTLs and single-flight loading.
fn cache() -> Result<(), Box<dyn Error>> {
    use nimbus::cache::Cache;

    section("Cache: byte-bounded, scan-resistant, single-flight loads");
    let cache: Cache<String, String> = Cache::builder().max_bytes(1 << 20).build();
    let value = cache.get_or_load("answer".to_string(), |_| Ok::<_, String>("42".to_string()))?;
    println!(
        "loaded once           -> {value}, hit next time: {:?}",
        cache.get(&"answer".to_string())
    );
    Ok(())
}

/// The durable engine every service stores through: one log, atomic
/// batches, snapshots, ordered scans, checkpoints.
fn storage_engine(path: &std::path::Path) -> Result<(), Box<dyn Error>> {
    section("The storage engine: atomic batches, snapshots, scans, checkpoints");
    let engine = Engine::open(path, EngineOptions::default())?;
    let mut batch = WriteBatch::new();
    for (key, value) in [
        ("song#1", "Happy Day"),
        ("song#2", "Blue Sky"),
        ("song#3", "Rain"),
    ] {
        batch.put(key.as_bytes(), value.as_bytes());
    }
    let sequence = engine.write(batch)?;
    println!("one fsynced batch of 3 writes -> sequence {sequence}");

    let before = engine.snapshot()?;
    engine.delete(b"song#2")?;
    engine.flush()?;
    let now: Vec<String> = engine
        .prefix(b"song#", Direction::Reverse, None)?
        .map(|pair| pair.map(|(key, _)| String::from_utf8_lossy(&key).into_owned()))
        .collect::<Result<_, _>>()?;
    println!("keys now, newest first        -> {}", now.join(", "));
    let old = engine.get_at(&before, b"song#2")?;
    println!(
        "song#2 in the earlier snapshot -> {:?}",
        old.map(|value| String::from_utf8_lossy(&value).into_owned())
    );
    drop(before);

    let copy = path.with_file_name("engine-checkpoint");
    engine.checkpoint(&copy)?;
    engine.close()?;
    let reopened = Engine::open(&copy, EngineOptions::default())?;
    println!(
        "checkpoint reopened, song#3    -> {:?}",
        reopened
            .get(b"song#3")?
            .map(|v| String::from_utf8_lossy(&v).into_owned())
    );
    reopened.verify()?;
    println!("verify: every checksum of every live file is intact");
    reopened.close()?;
    Ok(())
}

fn section(title: &str) {
    println!("\n== {title}");
}
