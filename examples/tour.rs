//! A tour of nimbus on a temporary directory. It grows with every service;
//! today it shows the value model every service stores (DynamoDB items,
//! canonical numbers, DynamoDB JSON, serde conversion, validation, the
//! order-preserving key encoding) and the storage engine under them.
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

    storage_engine(&directory.path().join("engine"))
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
