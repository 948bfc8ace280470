//! The value model's hot paths: key encoding, number parsing, item size and
//! DynamoDB JSON decoding. Run with `cargo bench --bench value`.

// criterion's macros generate undocumented functions.
#![allow(missing_docs, clippy::unwrap_used)]

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use nimbus::value::{decode_key_value, encode_key_value, item_size};
use nimbus::{AttributeValue, Item, Number, ScalarType, item};

fn key_encoding(c: &mut Criterion) {
    let mut group = c.benchmark_group("key_encoding");
    let values = [
        ("S/16", AttributeValue::from("user#0001234567")),
        ("N/int", AttributeValue::from(1_700_000_000_123i64)),
        (
            "N/38digits",
            AttributeValue::N(format!("-{}e-20", "7".repeat(38)).parse().unwrap()),
        ),
        ("B/32", AttributeValue::B((0..32).collect())),
    ];
    for (name, value) in &values {
        let mut out = Vec::with_capacity(64);
        group.bench_with_input(BenchmarkId::new("encode", name), value, |b, value| {
            b.iter(|| {
                out.clear();
                encode_key_value(black_box(value), &mut out).unwrap();
                out.len()
            })
        });
        let mut encoded = Vec::new();
        encode_key_value(value, &mut encoded).unwrap();
        let key_type = match value {
            AttributeValue::S(_) => ScalarType::S,
            AttributeValue::N(_) => ScalarType::N,
            _ => ScalarType::B,
        };
        group.bench_with_input(BenchmarkId::new("decode", name), &encoded, |b, encoded| {
            b.iter(|| decode_key_value(key_type, black_box(encoded)).unwrap())
        });
    }
    group.finish();
}

fn number_parsing(c: &mut Criterion) {
    let mut group = c.benchmark_group("number_parse");
    let long = format!("{}.9876543210", "1234567890".repeat(2));
    for text in ["42", "-1234.5678", "1.5e-7", long.as_str(), "01000.000"] {
        group.bench_with_input(BenchmarkId::from_parameter(text), text, |b, text| {
            b.iter(|| black_box(text).parse::<Number>().unwrap())
        });
    }
    let number: Number = long.parse().unwrap();
    group.bench_function("display", |b| b.iter(|| black_box(&number).to_string()));
    group.finish();
}

/// An item of about 1 KB with every kind of attribute.
fn one_kb_item() -> Item {
    let mut item = item! {
        "pk" => "customer#000123",
        "sk" => "order#2026-11-21T10:00:00Z",
        "total" => AttributeValue::N("1234.56".parse().unwrap()),
        "paid" => true,
        "note" => "x".repeat(200),
        "tags" => AttributeValue::string_set(["gift", "express", "fragile"]),
        "blob" => AttributeValue::B(vec![7; 120]),
    };
    let lines: Vec<AttributeValue> = (0..6)
        .map(|i| {
            AttributeValue::from(item! {
                "sku" => format!("SKU-{i:06}"),
                "qty" => i + 1,
                "price" => AttributeValue::N(format!("{i}9.99").parse().unwrap()),
                "desc" => "a product description of some length",
            })
        })
        .collect();
    item.insert("lines".into(), AttributeValue::L(lines));
    item
}

fn item_size_and_json(c: &mut Criterion) {
    let item = one_kb_item();
    let json = item.to_json();
    let mut group = c.benchmark_group("item");
    group.throughput(Throughput::Bytes(json.len() as u64));
    group.bench_function("size", |b| b.iter(|| item_size(black_box(&item))));
    group.bench_function("json_decode_1kb", |b| {
        b.iter(|| Item::from_json(black_box(&json)).unwrap())
    });
    group.bench_function("json_encode_1kb", |b| b.iter(|| black_box(&item).to_json()));
    group.finish();
}

criterion_group!(benches, key_encoding, number_parsing, item_size_and_json);
criterion_main!(benches);
