//! Composite (multi-attribute) keys of global secondary indexes, as
//! DynamoDB allows since November 2025: up to four HASH and four RANGE
//! attributes of mixed types; Query gives `=` on every HASH attribute and
//! conditions on the RANGE attributes left to right; an item lacking any
//! key attribute is not indexed.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use nimbus::kv::{Error, GlobalSecondaryIndex, KeySchemaElement, KeyType, LocalSecondaryIndex};
use nimbus::{AttributeValue, Database, Item, ScalarType, item};

fn validation(result: Result<impl std::fmt::Debug, Error>) -> String {
    match result {
        Err(Error::Validation(message)) => message,
        other => panic!("expected a ValidationException, got {other:?}"),
    }
}

/// `Matches`: pk `id`; GSI `ByRound` on HASH (`tournament` S, `circuit` N),
/// RANGE (`round` N, `bracket` S, `seq` B).
fn matches_table(db: &Database) {
    db.create_table("Matches")
        .partition_key("id", ScalarType::S)
        .attribute_definition("tournament", ScalarType::S)
        .attribute_definition("circuit", ScalarType::N)
        .attribute_definition("round", ScalarType::N)
        .attribute_definition("bracket", ScalarType::S)
        .attribute_definition("seq", ScalarType::B)
        .global_secondary_index(
            GlobalSecondaryIndex::new("ByRound", "tournament")
                .partition_key("circuit")
                .sort_key("round")
                .sort_key("bracket")
                .sort_key("seq"),
        )
        .send()
        .unwrap();
}

fn game(id: &str, circuit: i64, round: i64, bracket: &str, seq: u8) -> Item {
    item! {
        "id" => id, "tournament" => "open", "circuit" => circuit, "round" => round,
        "bracket" => bracket, "seq" => AttributeValue::B(vec![seq])
    }
}

/// The ids a query on `ByRound` returns, in order, reading every page of
/// `page` items.
fn query_ids(
    db: &Database,
    condition: &str,
    values: &[(&str, AttributeValue)],
    page: usize,
) -> Vec<String> {
    let mut query = db
        .query("Matches")
        .index_name("ByRound")
        .key_condition_expression(condition)
        .limit(page);
    for (name, value) in values {
        query = query.value(*name, value.clone());
    }
    query
        .items()
        .map(|item| item.unwrap()["id"].as_s().unwrap().to_owned())
        .collect()
}

#[test]
fn composite_keys_are_described_in_key_schema_order() {
    let db = Database::memory().unwrap();
    matches_table(&db);
    let table = db.describe_table("Matches").send().unwrap().table;
    let schema: Vec<(String, KeyType)> = table.global_secondary_indexes[0]
        .key_schema
        .iter()
        .map(|e| (e.attribute_name.clone(), e.key_type))
        .collect();
    let expected = [
        ("tournament", KeyType::Hash),
        ("circuit", KeyType::Hash),
        ("round", KeyType::Range),
        ("bracket", KeyType::Range),
        ("seq", KeyType::Range),
    ];
    assert_eq!(schema, expected.map(|(n, t)| (n.to_owned(), t)).to_vec());
    // The definition survives a reopen of an on-disk database.
    let dir = tempfile::tempdir().unwrap();
    let disk = Database::open(dir.path()).unwrap();
    matches_table(&disk);
    disk.put_item("Matches")
        .item(game("g1", 1, 2, "a", 0))
        .send()
        .unwrap();
    disk.close().unwrap();
    drop(disk);
    let disk = Database::open(dir.path()).unwrap();
    let values = [(":t", "open".into()), (":r", 1.into())];
    assert_eq!(
        query_ids(&disk, "tournament = :t AND circuit = :r", &values, 10),
        ["g1"]
    );
}

#[test]
fn queries_fix_every_hash_attribute_and_range_attributes_left_to_right() {
    let db = Database::memory().unwrap();
    matches_table(&db);
    let games = [
        game("a", 1, 2, "x", 1),
        game("b", 1, 1, "y", 0),
        game("c", 1, 1, "x", 9),
        game("d", 1, 1, "x", 3),
        game("e", 2, 1, "x", 3), // another partition (circuit 2)
        game("f", 1, 10, "a", 0),
    ];
    for g in games {
        db.put_item("Matches").item(g).send().unwrap();
    }
    let t = (
        "tournament = :t AND circuit = :r",
        [(":t", AttributeValue::from("open")), (":r", 1.into())],
    );
    // Ordered by round (numerically: 10 after 2), then bracket, then seq.
    for page in [1, 2, 10] {
        assert_eq!(
            query_ids(&db, t.0, &t.1, page),
            ["d", "c", "b", "a", "f"],
            "page {page}"
        );
    }
    let with = |extra: &str, more: &[(&str, AttributeValue)], page| {
        let mut values = t.1.to_vec();
        values.extend(more.iter().cloned());
        query_ids(&db, &format!("{} AND {extra}", t.0), &values, page)
    };
    assert_eq!(
        with("round = :one", &[(":one", 1.into())], 1),
        ["d", "c", "b"]
    );
    assert_eq!(with("round > :one", &[(":one", 1.into())], 1), ["a", "f"]);
    assert_eq!(
        with("round <= :one", &[(":one", 1.into())], 2),
        ["d", "c", "b"]
    );
    assert_eq!(
        with(
            "round = :one AND bracket = :x",
            &[(":one", 1.into()), (":x", "x".into())],
            1
        ),
        ["d", "c"]
    );
    assert_eq!(
        with(
            "round = :one AND bracket = :x AND seq BETWEEN :lo AND :hi",
            &[
                (":one", 1.into()),
                (":x", "x".into()),
                (":lo", AttributeValue::B(vec![2])),
                (":hi", AttributeValue::B(vec![9]))
            ],
            1
        ),
        ["d", "c"]
    );
    assert_eq!(
        with(
            "round = :one AND begins_with(bracket, :p)",
            &[(":one", 1.into()), (":p", "y".into())],
            1
        ),
        ["b"]
    );
    assert_eq!(
        with(
            "round = :one AND bracket < :y",
            &[(":one", 1.into()), (":y", "y".into())],
            1
        ),
        ["d", "c"]
    );
    // Reverse order walks the same entries backwards.
    let reversed: Vec<String> = db
        .query("Matches")
        .index_name("ByRound")
        .key_condition_expression(t.0)
        .value(":t", "open")
        .value(":r", 1)
        .scan_index_forward(false)
        .limit(2)
        .items()
        .map(|i| i.unwrap()["id"].as_s().unwrap().to_owned())
        .collect();
    assert_eq!(reversed, ["f", "a", "b", "c", "d"]);

    // Refused shapes: a HASH attribute missing or not `=`, a gap in the
    // RANGE attributes, a range before the last condition, a filter on a
    // key attribute.
    let refuse = |condition: &str, filter: Option<&str>| {
        let mut query = db
            .query("Matches")
            .index_name("ByRound")
            .key_condition_expression(condition)
            .value(":t", "open")
            .value(":r", 1)
            .value(":x", "x");
        if let Some(filter) = filter {
            query = query.filter_expression(filter);
        }
        validation(query.send())
    };
    assert_eq!(
        refuse("tournament = :t AND bracket = :x AND round = :r", None).as_str(),
        "Query condition missed key schema element: circuit"
    );
    assert_eq!(
        refuse("tournament = :t AND circuit = :r AND bracket = :x", None).as_str(),
        "Query condition missed key schema element: round"
    );
    assert_eq!(
        refuse("tournament = :t AND circuit > :r AND bracket = :x", None).as_str(),
        "Query key condition not supported"
    );
    assert_eq!(
        refuse(
            "tournament = :t AND circuit = :r AND round > :r AND bracket = :x",
            None
        )
        .as_str(),
        "Query key condition not supported"
    );
    assert!(
        refuse("tournament = :t AND circuit = :r", Some("bracket = :x"))
            .contains("Filter Expression can only contain non-primary key attributes"),
    );
}

#[test]
fn items_missing_any_key_attribute_are_not_indexed_and_bad_types_are_refused() {
    let db = Database::memory().unwrap();
    matches_table(&db);
    db.put_item("Matches")
        .item(game("full", 1, 1, "x", 1))
        .send()
        .unwrap();
    let mut partial = game("partial", 1, 1, "x", 1);
    partial.remove("seq");
    db.put_item("Matches").item(partial).send().unwrap();
    let all = [(":t", AttributeValue::from("open")), (":r", 1.into())];
    let condition = "tournament = :t AND circuit = :r";
    assert_eq!(query_ids(&db, condition, &all, 5), ["full"]);
    // Adding the missing attribute indexes the item; removing a HASH
    // attribute takes it out again.
    db.update_item("Matches")
        .key(item! { "id" => "partial" })
        .update_expression("SET seq = :s")
        .value(":s", AttributeValue::B(vec![0]))
        .send()
        .unwrap();
    assert_eq!(query_ids(&db, condition, &all, 5), ["partial", "full"]);
    db.update_item("Matches")
        .key(item! { "id" => "partial" })
        .update_expression("REMOVE circuit")
        .send()
        .unwrap();
    assert_eq!(query_ids(&db, condition, &all, 5), ["full"]);

    let mut wrong = game("wrong", 1, 1, "x", 1);
    wrong.insert("bracket".into(), 5.into());
    let message = validation(db.put_item("Matches").item(wrong).send());
    assert!(
        message.contains("Type mismatch for Index Key bracket"),
        "{message}"
    );
    let mut empty = game("empty", 1, 1, "x", 1);
    empty.insert("tournament".into(), "".into());
    let message = validation(db.put_item("Matches").item(empty).send());
    assert!(message.contains("empty string value"), "{message}");
    assert!(
        db.get_item("Matches")
            .key(item! { "id" => "wrong" })
            .send()
            .unwrap()
            .item
            .is_none()
    );
}

#[test]
fn composite_key_schemas_are_validated() {
    let db = Database::memory().unwrap();
    let attempt = |index: GlobalSecondaryIndex, names: &[&str]| {
        let mut create = db.create_table("Bad").partition_key("id", ScalarType::S);
        for name in names {
            create = create.attribute_definition(*name, ScalarType::S);
        }
        validation(create.global_secondary_index(index).send())
    };
    let five_hash = (1..5).fold(GlobalSecondaryIndex::new("Gsi", "a0"), |g, i| {
        g.partition_key(format!("a{i}"))
    });
    let message = attempt(five_hash, &["a0", "a1", "a2", "a3", "a4"]);
    assert!(message.contains("at most 4 HASH"), "{message}");
    let five_range = (0..5).fold(GlobalSecondaryIndex::new("Gsi", "h"), |g, i| {
        g.sort_key(format!("r{i}"))
    });
    assert!(attempt(five_range, &["h", "r0", "r1", "r2", "r3", "r4"]).contains("at most 4 RANGE"));
    let element = |name: &str, key_type| KeySchemaElement {
        attribute_name: name.to_owned(),
        key_type,
    };
    let mut interleaved = GlobalSecondaryIndex::new("Gsi", "a");
    interleaved.key_schema = vec![
        element("a", KeyType::Hash),
        element("b", KeyType::Range),
        element("c", KeyType::Hash),
    ];
    assert!(attempt(interleaved, &["a", "b", "c"]).contains("must come before"));
    let mut range_first = GlobalSecondaryIndex::new("Gsi", "a");
    range_first.key_schema = vec![element("a", KeyType::Range), element("b", KeyType::Hash)];
    assert!(attempt(range_first, &["a", "b"]).contains("not a HASH key type"));
    let twice = GlobalSecondaryIndex::new("Gsi", "a")
        .partition_key("b")
        .sort_key("a");
    assert!(attempt(twice, &["a", "b"]).contains("Duplicate"));
    let undefined = GlobalSecondaryIndex::new("Gsi", "a").partition_key("b");
    assert!(attempt(undefined, &["a"]).contains("not defined in AttributeDefinitions"));
    // Local indexes keep one sort key attribute.
    let mut local = LocalSecondaryIndex::new("Lsi", "id", "a");
    local.key_schema.push(element("b", KeyType::Range));
    let message = validation(
        db.create_table("Bad")
            .partition_key("id", ScalarType::S)
            .sort_key("sk", ScalarType::S)
            .attribute_definition("a", ScalarType::S)
            .attribute_definition("b", ScalarType::S)
            .local_secondary_index(local)
            .send(),
    );
    assert!(
        message.contains("length less than or equal to 2"),
        "{message}"
    );
    assert!(db.list_tables().send().unwrap().table_names.is_empty());
}

#[test]
fn a_composite_index_added_later_is_backfilled() {
    let db = Database::memory().unwrap();
    db.create_table("Matches")
        .partition_key("id", ScalarType::S)
        .send()
        .unwrap();
    for i in 0..300 {
        let g = game(
            &format!("g{i:03}"),
            i % 3,
            i % 7,
            if i % 2 == 0 { "x" } else { "y" },
            (i % 5) as u8,
        );
        db.put_item("Matches").item(g).send().unwrap();
    }
    db.update_table("Matches")
        .attribute_definition("tournament", ScalarType::S)
        .attribute_definition("circuit", ScalarType::N)
        .attribute_definition("round", ScalarType::N)
        .attribute_definition("bracket", ScalarType::S)
        .create_global_secondary_index(
            GlobalSecondaryIndex::new("ByRound", "tournament")
                .partition_key("circuit")
                .sort_key("round")
                .sort_key("bracket"),
        )
        .send()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while db
        .describe_table("Matches")
        .send()
        .unwrap()
        .table
        .global_secondary_indexes[0]
        .backfilling
    {
        assert!(
            std::time::Instant::now() < deadline,
            "backfill never finished"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let got = query_ids(
        &db,
        "tournament = :t AND circuit = :r AND round = :d AND bracket = :b",
        &[
            (":t", "open".into()),
            (":r", 1.into()),
            (":d", 3.into()),
            (":b", "y".into()),
        ],
        3,
    );
    let mut expected: Vec<String> = (0..300)
        .filter(|i| i % 3 == 1 && i % 7 == 3 && i % 2 == 1)
        .map(|i| format!("g{i:03}"))
        .collect();
    expected.sort();
    assert_eq!(got, expected);
}
