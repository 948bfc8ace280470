//! The expression layer's hot paths: parsing and evaluating a typical
//! condition, parsing and applying a typical update (a counter increment
//! plus a timestamp), and projecting an item. Run with
//! `cargo bench --bench kv_expr`.

// criterion's macros generate undocumented functions.
#![allow(missing_docs, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use nimbus::kv::expr::{ItemState, Placeholders, parse_condition, parse_projection, parse_update};
use nimbus::{AttributeValue, Item, item};

const CONDITION: &str = "attribute_exists(pk) AND #st = :open AND (score BETWEEN :low AND :high \
                         OR contains(tags, :tag)) AND size(title) < :max";
const UPDATE: &str = "SET #c = if_not_exists(#c, :zero) + :one, updated = :now ADD tags :new";
const PROJECTION: &str = "pk, title, meta.author, tags";

fn names() -> BTreeMap<String, String> {
    [("#st", "status"), ("#c", "count")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn values() -> BTreeMap<String, AttributeValue> {
    [
        (":open", AttributeValue::from("open")),
        (":low", AttributeValue::from(10)),
        (":high", AttributeValue::from(90)),
        (":tag", AttributeValue::from("rust")),
        (":max", AttributeValue::from(200)),
        (":zero", AttributeValue::from(0)),
        (":one", AttributeValue::from(1)),
        (":now", AttributeValue::from(1_700_000_000u64)),
        (":new", AttributeValue::string_set(["db"])),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// A typical item of a few hundred bytes.
fn sample_item() -> Item {
    let meta: BTreeMap<String, AttributeValue> = [
        ("author".to_owned(), AttributeValue::from("Ada")),
        ("pages".to_owned(), AttributeValue::from(321)),
    ]
    .into();
    item! {
        "pk" => "article#00042",
        "title" => "Log-structured merge trees in practice",
        "status" => "open",
        "score" => 57,
        "count" => 41,
        "tags" => AttributeValue::string_set(["rust", "storage", "lsm"]),
        "meta" => AttributeValue::M(meta),
        "body" => "x".repeat(200),
    }
}

fn condition(c: &mut Criterion) {
    let (names, values, item) = (names(), values(), sample_item());
    let mut group = c.benchmark_group("kv_expr_condition");
    group.bench_function("parse", |b| {
        b.iter(|| {
            let mut placeholders = Placeholders::new(&names, &values).unwrap();
            parse_condition(black_box(CONDITION), &mut placeholders).unwrap()
        })
    });
    let mut placeholders = Placeholders::new(&names, &values).unwrap();
    let parsed = parse_condition(CONDITION, &mut placeholders).unwrap();
    group.bench_function("evaluate", |b| b.iter(|| parsed.evaluate(black_box(&item))));
    group.bench_function("parse_and_evaluate", |b| {
        b.iter(|| {
            let mut placeholders = Placeholders::new(&names, &values).unwrap();
            let parsed = parse_condition(black_box(CONDITION), &mut placeholders).unwrap();
            parsed.evaluate(&item)
        })
    });
    group.finish();
}

fn update(c: &mut Criterion) {
    let (names, values, item) = (names(), values(), sample_item());
    let mut group = c.benchmark_group("kv_expr_update");
    group.bench_function("parse", |b| {
        b.iter(|| {
            let mut placeholders = Placeholders::new(&names, &values).unwrap();
            parse_update(black_box(UPDATE), &mut placeholders).unwrap()
        })
    });
    let mut placeholders = Placeholders::new(&names, &values).unwrap();
    let parsed = parse_update(UPDATE, &mut placeholders).unwrap();
    group.bench_function("apply", |b| {
        b.iter_batched_ref(
            || item.clone(),
            |target| parsed.apply(target, ItemState::Existing).unwrap(),
            criterion::BatchSize::SmallInput,
        )
    });
    group.finish();
}

fn projection(c: &mut Criterion) {
    let item = sample_item();
    let empty_names = BTreeMap::new();
    let empty_values = BTreeMap::new();
    let mut placeholders = Placeholders::new(&empty_names, &empty_values).unwrap();
    let parsed = parse_projection(PROJECTION, &mut placeholders).unwrap();
    c.bench_function("kv_expr_projection/apply", |b| {
        b.iter(|| parsed.apply(black_box(&item)))
    });
}

criterion_group!(benches, condition, update, projection);
criterion_main!(benches);
