//! Behaviour tests of Query and Scan: key conditions, ordering (binary keys
//! as unsigned bytes), filters, projections, Select, Limit, the 1 MiB page
//! counted before the filter, pagination and parallel scan segments.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use std::collections::BTreeSet;

use nimbus::kv::{Error, MAX_PAGE_BYTES, Select};
use nimbus::{AttributeValue, Database, Item, ScalarType, item};

fn db_with_events(count: i64) -> Database {
    let db = Database::memory().unwrap();
    db.create_table("Events")
        .partition_key("user", ScalarType::S)
        .sort_key("at", ScalarType::N)
        .send()
        .unwrap();
    for at in 0..count {
        db.put_item("Events")
            .item(item! { "user" => "u1", "at" => at, "kind" => if at % 2 == 0 { "even" } else { "odd" } })
            .send()
            .unwrap();
        db.put_item("Events")
            .item(item! { "user" => "u2", "at" => at })
            .send()
            .unwrap();
    }
    db
}

fn ats(items: &[Item]) -> Vec<i64> {
    items
        .iter()
        .map(|i| match &i["at"] {
            AttributeValue::N(n) => n.to_i64().unwrap(),
            other => panic!("{other:?}"),
        })
        .collect()
}

fn validation<T: std::fmt::Debug>(result: Result<T, Error>) -> String {
    match result {
        Err(Error::Validation(message)) => message,
        other => panic!("expected a ValidationException, got {other:?}"),
    }
}

#[test]
fn query_reads_one_partition_in_sort_order_both_ways() {
    let db = db_with_events(10);
    let query = |condition: &str| {
        db.query("Events")
            .key_condition_expression(condition)
            .value(":u", "u1")
            .value(":a", 3)
            .value(":b", 6)
    };
    let all = db
        .query("Events")
        .key_condition_expression("#u = :u")
        .name("#u", "user")
        .value(":u", "u1")
        .send()
        .unwrap();
    assert_eq!(ats(&all.items), (0..10).collect::<Vec<_>>());
    assert_eq!(
        (all.count, all.scanned_count, all.last_evaluated_key),
        (10, 10, None)
    );
    let between = query("#u = :u AND #a BETWEEN :a AND :b")
        .name("#u", "user")
        .name("#a", "at")
        .send()
        .unwrap();
    assert_eq!(ats(&between.items), [3, 4, 5, 6]);
    let less = db
        .query("Events")
        .key_condition_expression("#u = :u AND #a < :a")
        .name("#u", "user")
        .name("#a", "at")
        .value(":u", "u1")
        .value(":a", 3)
        .send()
        .unwrap();
    assert_eq!(ats(&less.items), [0, 1, 2]);
    let backward = db
        .query("Events")
        .key_condition_expression("#u = :u AND #a >= :a")
        .name("#u", "user")
        .name("#a", "at")
        .value(":u", "u1")
        .value(":a", 7)
        .scan_index_forward(false)
        .send()
        .unwrap();
    assert_eq!(ats(&backward.items), [9, 8, 7]);
}

#[test]
fn binary_sort_keys_order_as_unsigned_bytes_and_begins_with_works() {
    let db = Database::memory().unwrap();
    db.create_table("Bin")
        .partition_key("p", ScalarType::S)
        .sort_key("s", ScalarType::B)
        .send()
        .unwrap();
    let keys: Vec<Vec<u8>> = vec![
        vec![0xff],
        vec![0x00],
        vec![0x7f],
        vec![0x80, 1],
        vec![0x80],
        vec![0x00, 0x00],
    ];
    for k in &keys {
        db.put_item("Bin")
            .item(item! { "p" => "x", "s" => k.clone() })
            .send()
            .unwrap();
    }
    let out = db
        .query("Bin")
        .key_condition_expression("p = :p")
        .value(":p", "x")
        .send()
        .unwrap();
    let got: Vec<Vec<u8>> = out
        .items
        .iter()
        .map(|i| match &i["s"] {
            AttributeValue::B(b) => b.clone(),
            _ => unreachable!(),
        })
        .collect();
    let mut expected = keys.clone();
    expected.sort();
    assert_eq!(got, expected);
    let prefixed = db
        .query("Bin")
        .key_condition_expression("p = :p AND begins_with(s, :b)")
        .value(":p", "x")
        .value(":b", vec![0x80u8])
        .send()
        .unwrap();
    assert_eq!(prefixed.count, 2);
    let zero = db
        .query("Bin")
        .key_condition_expression("p = :p AND begins_with(s, :b)")
        .value(":p", "x")
        .value(":b", vec![0x00u8])
        .send()
        .unwrap();
    assert_eq!(zero.count, 2, "a zero prefix matches [0] and [0, 0] only");
}

#[test]
fn filters_count_after_limit_and_pages_resume() {
    let db = db_with_events(10);
    let page = |start: Option<Item>| {
        let mut q = db
            .query("Events")
            .key_condition_expression("#u = :u")
            .filter_expression("kind = :k")
            .name("#u", "user")
            .value(":u", "u1")
            .value(":k", "odd")
            .limit(4);
        if let Some(start) = start {
            q = q.exclusive_start_key(start);
        }
        q.send().unwrap()
    };
    let first = page(None);
    assert_eq!((first.scanned_count, first.count), (4, 2));
    assert_eq!(ats(&first.items), [1, 3]);
    assert_eq!(
        first.last_evaluated_key,
        Some(item! { "user" => "u1", "at" => 3 })
    );
    let second = page(first.last_evaluated_key);
    assert_eq!(ats(&second.items), [5, 7]);
    let third = page(second.last_evaluated_key);
    assert_eq!(ats(&third.items), [9]);
    assert_eq!(third.last_evaluated_key, None);
    // The iterator pages by itself.
    let all: Vec<Item> = db
        .query("Events")
        .key_condition_expression("#u = :u")
        .name("#u", "user")
        .value(":u", "u1")
        .limit(3)
        .items()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(ats(&all), (0..10).collect::<Vec<_>>());
}

#[test]
fn a_page_stops_at_one_mib_read_before_the_filter() {
    let db = Database::memory().unwrap();
    db.create_table("Big")
        .partition_key("p", ScalarType::S)
        .sort_key("s", ScalarType::N)
        .send()
        .unwrap();
    let blob = AttributeValue::B(vec![7; 100 * 1024]);
    for s in 0..25 {
        db.put_item("Big")
            .item(item! { "p" => "x", "s" => s, "blob" => blob.clone() })
            .send()
            .unwrap();
    }
    let query = |start: Option<Item>| {
        let mut q = db
            .query("Big")
            .key_condition_expression("p = :p")
            .filter_expression("attribute_exists(nothere)")
            .value(":p", "x");
        if let Some(start) = start {
            q = q.exclusive_start_key(start);
        }
        q.send().unwrap()
    };
    let first = query(None);
    assert_eq!(first.count, 0, "the filter matched nothing");
    assert!(
        first.last_evaluated_key.is_some(),
        "but the page stopped early at 1 MiB"
    );
    let item_bytes = 100 * 1024 + 4 + 10;
    assert_eq!(first.scanned_count, MAX_PAGE_BYTES.div_ceil(item_bytes));
    let mut pages = 1;
    let mut scanned = first.scanned_count;
    let mut next = first.last_evaluated_key;
    while let Some(start) = next {
        let page = query(Some(start));
        scanned += page.scanned_count;
        next = page.last_evaluated_key;
        pages += 1;
    }
    assert_eq!((scanned, pages), (25, 3));
    // The same holds for Scan.
    let scan = db.scan("Big").send().unwrap();
    assert!(scan.last_evaluated_key.is_some() && scan.scanned_count < 25);
}

#[test]
fn select_and_projection_rules() {
    let db = db_with_events(4);
    let count = db
        .query("Events")
        .key_condition_expression("#u = :u")
        .name("#u", "user")
        .value(":u", "u1")
        .select(Select::Count)
        .send()
        .unwrap();
    assert_eq!((count.count, count.items.len()), (4, 0));
    let projected = db
        .query("Events")
        .key_condition_expression("#u = :u")
        .name("#u", "user")
        .value(":u", "u1")
        .projection_expression("kind")
        .send()
        .unwrap();
    assert_eq!(projected.items[0], item! { "kind" => "even" });
    let both = db
        .query("Events")
        .key_condition_expression("#u = :u")
        .name("#u", "user")
        .value(":u", "u1")
        .projection_expression("kind")
        .select(Select::Count)
        .send();
    assert!(
        validation(both).contains(
            "Cannot specify the ProjectionExpression when choosing to get only the Count"
        )
    );
    let projected_attrs = db
        .scan("Events")
        .select(Select::AllProjectedAttributes)
        .send();
    assert!(validation(projected_attrs).contains("ALL_PROJECTED_ATTRIBUTES can be used only"));
    let key_filter = db
        .query("Events")
        .key_condition_expression("#u = :u")
        .filter_expression("#u = :u")
        .name("#u", "user")
        .value(":u", "u1")
        .send();
    assert!(
        validation(key_filter)
            .contains("Filter Expression can only contain non-primary key attributes")
    );
    let no_condition = db.query("Events").send();
    assert!(
        validation(no_condition).contains("KeyConditionExpression parameter must be specified")
    );
    let zero = db.scan("Events").limit(0).send();
    assert!(validation(zero).contains("greater than or equal to 1"));
    let outside = db
        .query("Events")
        .key_condition_expression("#u = :u")
        .name("#u", "user")
        .value(":u", "u1")
        .exclusive_start_key(item! { "user" => "u2", "at" => 1 })
        .send();
    assert!(validation(outside).contains("outside query boundaries"));
    let bad_start = db
        .query("Events")
        .key_condition_expression("#u = :u")
        .name("#u", "user")
        .value(":u", "u1")
        .exclusive_start_key(item! { "user" => "u1" })
        .send();
    assert!(validation(bad_start).starts_with("The provided starting key is invalid"));
}

#[test]
fn update_functions_are_refused_in_filters() {
    // aws-dax-go parser/expression.go names the expression kind in the
    // message ("Invalid FilterExpression: ... in a filter expression").
    let db = db_with_events(2);
    let scan = db
        .scan("Events")
        .filter_expression("if_not_exists(kind, kind) = :v")
        .value(":v", "even")
        .send();
    assert_eq!(
        validation(scan),
        "Invalid FilterExpression: The function is not allowed in a filter expression; \
         function: if_not_exists"
    );
    let query = db
        .query("Events")
        .key_condition_expression("#u = :u")
        .filter_expression("size(list_append(kind, :v)) > :u")
        .name("#u", "user")
        .value(":u", "u1")
        .value(":v", "even")
        .send();
    assert_eq!(
        validation(query),
        "Invalid FilterExpression: The function is not allowed in a filter expression; \
         function: list_append"
    );
    let unknown = db
        .scan("Events")
        .filter_expression("foo(kind) = :v")
        .value(":v", "even")
        .send();
    assert_eq!(
        validation(unknown),
        "Invalid FilterExpression: Invalid function name; function: foo"
    );
}

#[test]
fn parallel_scan_segments_are_disjoint_and_cover_the_table() {
    let db = Database::memory().unwrap();
    db.create_table("Many")
        .partition_key("id", ScalarType::N)
        .send()
        .unwrap();
    for id in 0..300 {
        db.put_item("Many")
            .item(item! { "id" => id })
            .send()
            .unwrap();
    }
    for total in [1u32, 3, 7] {
        let mut seen = BTreeSet::new();
        for segment in 0..total {
            let items: Vec<Item> = db
                .scan("Many")
                .segment(segment)
                .total_segments(total)
                .limit(40)
                .items()
                .collect::<Result<_, _>>()
                .unwrap();
            for item in items {
                let AttributeValue::N(n) = &item["id"] else {
                    unreachable!()
                };
                assert!(seen.insert(n.to_i64().unwrap()), "segments overlap");
            }
        }
        assert_eq!(seen.len(), 300, "segments of {total} cover the table");
    }
    let lonely = db.scan("Many").segment(1).send();
    assert!(validation(lonely).starts_with("The TotalSegments parameter is required"));
    let alone = db.scan("Many").total_segments(2).send();
    assert!(validation(alone).starts_with("The Segment parameter is required"));
    let beyond = db.scan("Many").segment(2).total_segments(2).send();
    assert!(validation(beyond).contains("Segment: 2 is not less than TotalSegments: 2"));
    // A start key from another segment is refused.
    let first_of_0 = db
        .scan("Many")
        .segment(0)
        .total_segments(2)
        .limit(1)
        .send()
        .unwrap()
        .last_evaluated_key
        .unwrap();
    let wrong = db
        .scan("Many")
        .segment(1)
        .total_segments(2)
        .exclusive_start_key(first_of_0)
        .send();
    assert!(validation(wrong).contains("Please use ExclusiveStartKey with correct Segment"));
}
