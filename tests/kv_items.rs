//! Behaviour tests of PutItem, GetItem, UpdateItem and DeleteItem: keys,
//! limits, conditions, return values and atomic conditional writes.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use nimbus::kv::{Error, ReturnValue, ReturnValuesOnConditionCheckFailure};
use nimbus::{AttributeValue, Database, Item, Number, ScalarType, item};

fn db_with_music() -> Database {
    let db = Database::memory().unwrap();
    db.create_table("Music")
        .partition_key("Artist", ScalarType::S)
        .sort_key("SongTitle", ScalarType::S)
        .send()
        .unwrap();
    db
}

fn key(artist: &str, song: &str) -> Item {
    item! { "Artist" => artist, "SongTitle" => song }
}

fn validation<T: std::fmt::Debug>(result: Result<T, Error>) -> String {
    match result {
        Err(Error::Validation(message)) => message,
        other => panic!("expected a ValidationException, got {other:?}"),
    }
}

fn get(db: &Database, artist: &str, song: &str) -> Option<Item> {
    db.get_item("Music")
        .key(key(artist, song))
        .send()
        .unwrap()
        .item
}

fn number(text: &str) -> AttributeValue {
    AttributeValue::N(text.parse::<Number>().unwrap())
}

#[test]
fn put_get_delete_round_trip_with_projection() {
    let db = db_with_music();
    let song = item! { "Artist" => "Acme", "SongTitle" => "Hi", "Year" => 2020,
    "Info" => AttributeValue::M([("Genre".to_string(), "Rock".into())].into()) };
    db.put_item("Music").item(song.clone()).send().unwrap();
    assert_eq!(get(&db, "Acme", "Hi"), Some(song));
    let projected = db
        .get_item("Music")
        .key(key("Acme", "Hi"))
        .projection_expression("#y, Info.Genre")
        .name("#y", "Year")
        .send()
        .unwrap();
    assert_eq!(
        projected.item,
        Some(item! { "Year" => 2020,
        "Info" => AttributeValue::M([("Genre".to_string(), "Rock".into())].into()) })
    );
    let deleted = db
        .delete_item("Music")
        .key(key("Acme", "Hi"))
        .return_values(ReturnValue::AllOld)
        .send()
        .unwrap();
    assert_eq!(deleted.attributes.unwrap()["Year"], 2020.into());
    assert_eq!(get(&db, "Acme", "Hi"), None);
    assert!(matches!(
        db.get_item("Nope").key(key("a", "b")).send(),
        Err(Error::ResourceNotFound(m)) if m == "Requested resource not found"
    ));
}

#[test]
fn keys_are_validated_against_the_schema() {
    let db = db_with_music();
    let mismatch = "The provided key element does not match the schema";
    assert_eq!(
        validation(db.get_item("Music").key(item! { "Artist" => "a" }).send()),
        mismatch
    );
    assert_eq!(
        validation(
            db.get_item("Music")
                .key(item! { "Artist" => "a", "SongTitle" => 1 })
                .send()
        ),
        mismatch
    );
    assert_eq!(
        validation(
            db.get_item("Music")
                .key(item! { "Artist" => "a", "SongTitle" => "b", "x" => 1 })
                .send()
        ),
        mismatch
    );
    assert_eq!(
        validation(db.put_item("Music").item(item! { "Artist" => "a" }).send()),
        "One or more parameter values were invalid: Missing the key SongTitle in the item"
    );
    assert!(
        validation(db.put_item("Music").item(key("", "b")).send())
            .contains("cannot contain an empty string value")
    );
    // 2,048 bytes of partition key and 1,024 of sort key are the limits.
    db.put_item("Music")
        .item(key(&"p".repeat(2048), &"s".repeat(1024)))
        .send()
        .unwrap();
    assert!(
        validation(
            db.put_item("Music")
                .item(key(&"p".repeat(2049), "s"))
                .send()
        )
        .contains("Size of hashkey has exceeded the maximum size limit of2048 bytes")
    );
    assert!(
        validation(
            db.put_item("Music")
                .item(key("p", &"s".repeat(1025)))
                .send()
        )
        .contains("Aggregated size of all range keys has exceeded the size limit of 1024 bytes")
    );
}

#[test]
fn numbers_are_canonical_in_keys() {
    let db = Database::memory().unwrap();
    db.create_table("Numbers")
        .partition_key("n", ScalarType::N)
        .send()
        .unwrap();
    db.put_item("Numbers")
        .item(item! { "n" => number("1e3"), "v" => "first" })
        .send()
        .unwrap();
    db.put_item("Numbers")
        .item(item! { "n" => number("1000.0"), "v" => "second" })
        .send()
        .unwrap();
    let got = db
        .get_item("Numbers")
        .key(item! { "n" => 1000 })
        .send()
        .unwrap()
        .item
        .unwrap();
    assert_eq!(got["v"], "second".into(), "1e3 and 1000.0 are one key");
    assert_eq!(got["n"].to_string(), number("1000").to_string());
    assert_eq!(db.scan("Numbers").send().unwrap().count, 1);
}

#[test]
fn items_over_400_kb_are_rejected_and_nothing_is_written() {
    let db = db_with_music();
    let mut big = key("a", "b");
    big.insert("blob".into(), AttributeValue::B(vec![0; 400 * 1024]));
    assert_eq!(
        validation(db.put_item("Music").item(big).send()),
        "Item size has exceeded the maximum allowed size"
    );
    assert_eq!(get(&db, "a", "b"), None);
    let mut fits = key("a", "b");
    let room = 400 * 1024 - nimbus::value::item_size(&fits) - "blob".len();
    fits.insert("blob".into(), AttributeValue::B(vec![0; room]));
    db.put_item("Music").item(fits).send().unwrap();
    let grow = db
        .update_item("Music")
        .key(key("a", "b"))
        .update_expression("SET extra = :x")
        .value(":x", "x")
        .send();
    assert_eq!(
        validation(grow),
        "Item size to update has exceeded the maximum allowed size"
    );
}

#[test]
fn conditions_follow_missing_attribute_and_type_rules() {
    let db = db_with_music();
    db.put_item("Music")
        .item(item! { "Artist" => "a", "SongTitle" => "b", "Plays" => 5, "Tag" => "x" })
        .send()
        .unwrap();
    let check = |condition: &str, values: Vec<(&str, AttributeValue)>| {
        let mut request = db
            .update_item("Music")
            .key(key("a", "b"))
            .update_expression("SET touched = :t")
            .value(":t", true)
            .condition_expression(condition);
        for (name, value) in values {
            request = request.value(name, value);
        }
        match request.send() {
            Ok(_) => true,
            Err(Error::ConditionalCheckFailed { .. }) => false,
            Err(other) => panic!("{condition}: {other:?}"),
        }
    };
    // A missing attribute: = is false, <> is true, ordering is false.
    assert!(!check("nothere = :v", vec![(":v", 1.into())]));
    assert!(check("nothere <> :v", vec![(":v", 1.into())]));
    assert!(!check("nothere < :v", vec![(":v", 1.into())]));
    // A type mismatch between item values is false, not an error.
    assert!(!check("Tag < :v", vec![(":v", 1.into())]));
    assert!(check(
        "Plays BETWEEN :lo AND :hi",
        vec![(":lo", 1.into()), (":hi", 9.into())]
    ));
    assert!(check(
        "attribute_type(Plays, :n) AND size(Tag) = :one",
        vec![(":n", "N".into()), (":one", 1.into())]
    ));
    assert!(check(
        "NOT attribute_exists(nothere) AND (Plays IN (:a, :b) OR begins_with(Tag, :p))",
        vec![(":a", 4.into()), (":b", 5.into()), (":p", "y".into())]
    ));
    assert!(check("contains(Tag, :s)", vec![(":s", "x".into())]));
}

#[test]
fn failed_conditions_change_nothing_and_can_return_the_item() {
    let db = db_with_music();
    let stored = item! { "Artist" => "a", "SongTitle" => "b", "v" => 1 };
    db.put_item("Music").item(stored.clone()).send().unwrap();
    let failed = db
        .put_item("Music")
        .item(item! { "Artist" => "a", "SongTitle" => "b", "v" => 2 })
        .condition_expression("attribute_not_exists(Artist)")
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .send();
    match failed {
        Err(Error::ConditionalCheckFailed { item }) => assert_eq!(item, Some(stored.clone())),
        other => panic!("{other:?}"),
    }
    let without = db
        .delete_item("Music")
        .key(key("a", "b"))
        .condition_expression("v = :two")
        .value(":two", 2)
        .send();
    assert!(matches!(
        without,
        Err(Error::ConditionalCheckFailed { item: None })
    ));
    assert_eq!(get(&db, "a", "b"), Some(stored));
}

#[test]
fn update_return_values_match_dynamodb() {
    let db = db_with_music();
    db.put_item("Music")
        .item(
            item! { "Artist" => "a", "SongTitle" => "b", "n" => 1, "keep" => "k",
            "songs" => AttributeValue::L(vec![1.into()]) },
        )
        .send()
        .unwrap();
    let update = |rv: ReturnValue| {
        db.update_item("Music")
            .key(key("a", "b"))
            .update_expression("SET n = n + :one, songs[100] = :x REMOVE gone")
            .value(":one", 1)
            .value(":x", "appended")
            .return_values(rv)
            .send()
            .unwrap()
            .attributes
    };
    assert_eq!(update(ReturnValue::None), None);
    assert_eq!(update(ReturnValue::UpdatedOld), Some(item! { "n" => 2 }));
    // UPDATED_NEW omits songs[100]: the value landed at index 3, not 100.
    assert_eq!(update(ReturnValue::UpdatedNew), Some(item! { "n" => 4 }));
    let all_old = update(ReturnValue::AllOld).unwrap();
    assert_eq!(all_old["n"], 4.into());
    let all_new = update(ReturnValue::AllNew).unwrap();
    assert_eq!(all_new["n"], 6.into());
    assert_eq!(all_new["keep"], "k".into());
    assert!(
        validation(
            db.put_item("Music")
                .item(key("a", "c"))
                .return_values(ReturnValue::AllNew)
                .send()
        )
        .contains("ReturnValues can only be ALL_OLD or NONE")
    );
}

#[test]
fn update_creates_missing_items_and_accepts_remove_of_nested_paths() {
    let db = db_with_music();
    let created = db
        .update_item("Music")
        .key(key("new", "item"))
        .update_expression("SET c = if_not_exists(c, :zero) + :one ADD tags :t REMOVE x.y")
        .value(":zero", 0)
        .value(":one", 1)
        .value(":t", AttributeValue::Ss(["a".to_string()].into()))
        .return_values(ReturnValue::AllNew)
        .send()
        .unwrap();
    assert_eq!(
        created.attributes,
        Some(item! { "Artist" => "new", "SongTitle" => "item", "c" => 1,
        "tags" => AttributeValue::Ss(["a".to_string()].into()) })
    );
    let key_update = db
        .update_item("Music")
        .key(key("new", "item"))
        .update_expression("SET Artist = :a")
        .value(":a", "x")
        .send();
    assert!(validation(key_update).contains("This attribute is part of the key"));
}

#[test]
fn expressions_are_validated_strictly() {
    let db = db_with_music();
    let unused = db
        .put_item("Music")
        .item(key("a", "b"))
        .condition_expression("attribute_not_exists(Artist)")
        .value(":unused", 1)
        .send();
    assert!(validation(unused).contains("unused"));
    let reserved = db
        .update_item("Music")
        .key(key("a", "b"))
        .update_expression("SET Year = :y")
        .value(":y", 1)
        .send();
    assert!(validation(reserved).contains("reserved keyword"));
    let redundant = db
        .put_item("Music")
        .item(key("a", "b"))
        .condition_expression("((attribute_not_exists(Artist)))")
        .send();
    assert!(validation(redundant).contains("redundant parentheses"));
    let without_expression = db
        .put_item("Music")
        .item(key("a", "b"))
        .value(":v", 1)
        .send();
    assert!(
        validation(without_expression).contains("can only be specified when using expressions")
    );
    assert_eq!(get(&db, "a", "b"), None, "no failed request wrote anything");
}

#[test]
fn update_functions_are_refused_in_conditions_and_unknown_names_are_invalid() {
    // aws-dax-go parser/expression.go (funcAllowedInFilter); ALT
    // test_condition_expression.py test_update_condition_other_funcs.
    let db = db_with_music();
    for (condition, message) in [
        (
            "if_not_exists(s, s) = :v",
            "Invalid ConditionExpression: The function is not allowed in a condition expression; \
             function: if_not_exists",
        ),
        (
            "list_append(l, :v) = :v",
            "Invalid ConditionExpression: The function is not allowed in a condition expression; \
             function: list_append",
        ),
        (
            "foo(s) = :v",
            "Invalid ConditionExpression: Invalid function name; function: foo",
        ),
    ] {
        let result = db
            .put_item("Music")
            .item(key("a", "b"))
            .condition_expression(condition)
            .value(":v", 1)
            .send();
        assert_eq!(validation(result), message, "{condition}");
    }
    assert_eq!(get(&db, "a", "b"), None, "no failed request wrote anything");
}

#[test]
fn condition_functions_are_refused_in_update_expressions() {
    // aws-dax-go parser/expression.go (funcAllowedInUpdate).
    let db = db_with_music();
    for (function, call) in [
        ("size", "size(s)"),
        ("attribute_exists", "attribute_exists(s)"),
        ("attribute_not_exists", "attribute_not_exists(s)"),
        ("contains", "contains(s, :v)"),
        ("begins_with", "begins_with(s, :v)"),
        ("attribute_type", "attribute_type(s, :v)"),
    ] {
        let result = db
            .update_item("Music")
            .key(key("a", "b"))
            .update_expression(format!("SET x = {call}, y = :v"))
            .value(":v", "S")
            .send();
        assert_eq!(
            validation(result),
            format!(
                "Invalid UpdateExpression: The function is not allowed in an update expression; \
                 function: {function}"
            ),
        );
    }
    assert_eq!(get(&db, "a", "b"), None, "no failed request wrote anything");
}

#[test]
fn invalid_expression_attribute_values_name_their_placeholder() {
    // AWS's message as quoted in moto issue #7595 and checked by moto's
    // aws_verified test_update_item_add_empty_set; dynalite validations.
    let db = db_with_music();
    let empty_strings = AttributeValue::Ss(Default::default());
    let add = db
        .update_item("Music")
        .key(key("a", "b"))
        .update_expression("ADD s :v")
        .value(":v", empty_strings.clone())
        .send();
    let set = db
        .update_item("Music")
        .key(key("a", "b"))
        .update_expression("SET x = :v")
        .value(":v", empty_strings.clone())
        .send();
    let condition = db
        .put_item("Music")
        .item(key("a", "b"))
        .condition_expression("x <> :v")
        .value(":v", empty_strings.clone())
        .send();
    for result in [validation(add), validation(set), validation(condition)] {
        assert_eq!(
            result,
            "ExpressionAttributeValues contains invalid value: One or more parameter values were \
             invalid: An string set  may not be empty for key :v"
        );
    }
    let nested = db
        .update_item("Music")
        .key(key("a", "b"))
        .update_expression("SET x = :list")
        .value(
            ":list",
            AttributeValue::L(vec![AttributeValue::Ns(Default::default())]),
        )
        .send();
    assert_eq!(
        validation(nested),
        "ExpressionAttributeValues contains invalid value: One or more parameter values were \
         invalid: An number set  may not be empty for key :list"
    );
    assert_eq!(get(&db, "a", "b"), None, "no failed request wrote anything");
}

#[test]
fn racing_conditional_creates_have_exactly_one_winner() {
    let db = db_with_music();
    let winners = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..16)
        .map(|n| {
            let db = db.clone();
            let winners = Arc::clone(&winners);
            std::thread::spawn(move || {
                let result = db
                    .put_item("Music")
                    .item(item! { "Artist" => "race", "SongTitle" => "one", "by" => n })
                    .condition_expression("attribute_not_exists(Artist)")
                    .send();
                match result {
                    Ok(_) => {
                        winners.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(Error::ConditionalCheckFailed { .. }) => {}
                    Err(other) => panic!("{other:?}"),
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    assert_eq!(winners.load(Ordering::SeqCst), 1);
    // Counter increments from many threads lose nothing.
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let db = db.clone();
            std::thread::spawn(move || {
                for _ in 0..50 {
                    db.update_item("Music")
                        .key(key("race", "one"))
                        .update_expression("ADD hits :one")
                        .value(":one", 1)
                        .send()
                        .unwrap();
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    assert_eq!(get(&db, "race", "one").unwrap()["hits"], 400.into());
}

#[test]
fn eventually_consistent_reads_are_never_older_than_the_configured_bound() {
    use nimbus::DatabaseOptions;
    use nimbus::time::ManualClock;
    use std::time::{Duration, UNIX_EPOCH};

    let clock = ManualClock::at(UNIX_EPOCH + Duration::from_secs(1_800_000_000));
    let options = DatabaseOptions::default()
        .clock(clock.clone())
        .eventual_read_staleness(Duration::from_secs(1));
    let db = Database::memory_with(options).unwrap();
    db.create_table("T3s")
        .partition_key("k", ScalarType::S)
        .send()
        .unwrap();
    let put = |v: i64| {
        db.put_item("T3s")
            .item(item! { "k" => "a", "v" => v })
            .send()
            .unwrap()
    };
    let read = |consistent: bool| {
        let item = db
            .get_item("T3s")
            .key(item! { "k" => "a" })
            .consistent_read(consistent)
            .send()
            .unwrap()
            .item;
        item.map(|i| i["v"].clone())
    };
    put(1);
    assert_eq!(read(false), Some(1.into()));
    put(2);
    assert_eq!(
        read(true),
        Some(2.into()),
        "a consistent read sees the latest write"
    );
    assert_eq!(
        read(false),
        Some(1.into()),
        "an eventual read may lag, within the bound"
    );
    clock.advance(Duration::from_millis(1001));
    assert_eq!(
        read(false),
        Some(2.into()),
        "but never by more than the bound"
    );
    let scan = db.scan("T3s").send().unwrap();
    assert_eq!(scan.items[0]["v"], 2.into());
    // With the default bound of zero every read is the latest.
    let latest = Database::memory().unwrap();
    latest
        .create_table("T3s")
        .partition_key("k", ScalarType::S)
        .send()
        .unwrap();
    for v in 0..3 {
        latest
            .put_item("T3s")
            .item(item! { "k" => "a", "v" => v })
            .send()
            .unwrap();
        let got = latest
            .get_item("T3s")
            .key(item! { "k" => "a" })
            .send()
            .unwrap()
            .item;
        assert_eq!(got.unwrap()["v"], v.into());
    }
}
