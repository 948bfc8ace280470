//! Behaviour tests of BatchGetItem, BatchWriteItem, TransactWriteItems and
//! TransactGetItems: limits, duplicates, cancellation reasons, idempotency
//! and serializability under concurrency.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use std::time::Duration;

use nimbus::kv::{
    ConditionCheck, Error, ReturnValuesOnConditionCheckFailure, TransactDelete, TransactGet,
    TransactPut, TransactUpdate, WriteRequest,
};
use nimbus::time::ManualClock;
use nimbus::{AttributeValue, Database, DatabaseOptions, Item, ScalarType, item};

fn db_with(clock: Option<ManualClock>) -> Database {
    let options = match clock {
        Some(clock) => DatabaseOptions::default().clock(clock),
        None => DatabaseOptions::default(),
    };
    let db = Database::memory_with(options).unwrap();
    for table in ["Accounts", "Audit"] {
        db.create_table(table)
            .partition_key("id", ScalarType::S)
            .send()
            .unwrap();
    }
    db
}

fn validation<T: std::fmt::Debug>(result: Result<T, Error>) -> String {
    match result {
        Err(Error::Validation(message)) => message,
        other => panic!("expected a ValidationException, got {other:?}"),
    }
}

fn balance(db: &Database, id: &str) -> Option<i64> {
    let item = db
        .get_item("Accounts")
        .key(item! { "id" => id })
        .send()
        .unwrap()
        .item?;
    match &item["balance"] {
        AttributeValue::N(n) => n.to_i64(),
        _ => None,
    }
}

#[test]
fn batch_write_and_get_round_trip_with_limits() {
    let db = db_with(None);
    let puts: Vec<WriteRequest> = (0..25)
        .map(|n| WriteRequest::Put(item! { "id" => format!("a{n}"), "balance" => n }))
        .collect();
    db.batch_write_item()
        .request_items("Accounts", puts)
        .send()
        .unwrap();
    let too_many: Vec<WriteRequest> = (0..26)
        .map(|n| WriteRequest::Put(item! { "id" => format!("b{n}") }))
        .collect();
    assert!(
        validation(
            db.batch_write_item()
                .request_items("Accounts", too_many)
                .send()
        )
        .contains("less than or equal to 25")
    );
    let duplicate = db
        .batch_write_item()
        .put("Accounts", item! { "id" => "x" })
        .delete("Accounts", item! { "id" => "x" })
        .send();
    assert_eq!(
        validation(duplicate),
        "Provided list of item keys contains duplicates"
    );
    assert_eq!(balance(&db, "x"), None, "a rejected batch writes nothing");

    let mut get = db.batch_get_item();
    for n in 0..25 {
        get = get.key("Accounts", item! { "id" => format!("a{n}") });
    }
    let got = get
        .key("Accounts", item! { "id" => "missing" })
        .send()
        .unwrap();
    assert_eq!(got.responses["Accounts"].len(), 25);
    assert!(got.unprocessed_keys.is_empty());
    let mut over = db.batch_get_item();
    for n in 0..101 {
        over = over.key("Accounts", item! { "id" => format!("a{n}") });
    }
    assert!(validation(over.send()).contains("less than or equal to 100"));
    let dup = db
        .batch_get_item()
        .key("Accounts", item! { "id" => "a1" })
        .key("Accounts", item! { "id" => "a1" })
        .send();
    assert_eq!(
        validation(dup),
        "Provided list of item keys contains duplicates"
    );
    assert!(matches!(
        db.batch_get_item()
            .key("Nope", item! { "id" => "a" })
            .send(),
        Err(Error::ResourceNotFound(_))
    ));
    db.batch_write_item()
        .delete("Accounts", item! { "id" => "a0" })
        .send()
        .unwrap();
    assert_eq!(balance(&db, "a0"), None);
}

#[test]
fn batch_get_returns_unprocessed_keys_past_16_mb() {
    let db = db_with(None);
    let blob = AttributeValue::B(vec![1; 300 * 1024]);
    for n in 0..60 {
        db.put_item("Accounts")
            .item(item! { "id" => format!("k{n:02}"), "blob" => blob.clone() })
            .send()
            .unwrap();
    }
    let mut get = db.batch_get_item();
    for n in 0..60 {
        get = get.key("Accounts", item! { "id" => format!("k{n:02}") });
    }
    let out = get.send().unwrap();
    let returned = out.responses["Accounts"].len();
    let unprocessed = out.unprocessed_keys["Accounts"].keys.len();
    assert_eq!(returned + unprocessed, 60);
    assert!(returned < 60 && returned * 300 * 1024 <= 16 * 1024 * 1024 + 300 * 1024);
}

#[test]
fn transactions_apply_all_or_nothing_with_reasons_in_order() {
    let db = db_with(None);
    db.put_item("Accounts")
        .item(item! { "id" => "alice", "balance" => 100 })
        .send()
        .unwrap();
    db.put_item("Accounts")
        .item(item! { "id" => "bob", "balance" => 0 })
        .send()
        .unwrap();
    let transfer = |amount: i64| {
        db.transact_write_items()
            .item(
                TransactUpdate::new(
                    "Accounts",
                    item! { "id" => "alice" },
                    "SET balance = balance - :a",
                )
                .condition_expression("balance >= :a")
                .value(":a", amount)
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                ),
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
                "Audit",
                item! { "id" => format!("t{amount}"), "amount" => amount },
            ))
            .send()
    };
    transfer(30).unwrap();
    assert_eq!(
        (balance(&db, "alice"), balance(&db, "bob")),
        (Some(70), Some(30))
    );
    match transfer(500) {
        Err(Error::TransactionCanceled { reasons }) => {
            let codes: Vec<&str> = reasons.iter().map(|r| r.code.as_str()).collect();
            assert_eq!(codes, ["ConditionalCheckFailed", "None", "None"]);
            assert_eq!(reasons[0].item.as_ref().unwrap()["balance"], 70.into());
            assert_eq!(
                reasons[0].message.as_deref(),
                Some("The conditional request failed")
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        (balance(&db, "alice"), balance(&db, "bob")),
        (Some(70), Some(30))
    );
    assert!(
        db.get_item("Audit")
            .key(item! { "id" => "t500" })
            .send()
            .unwrap()
            .item
            .is_none()
    );

    let check = db
        .transact_write_items()
        .item(
            ConditionCheck::new("Accounts", item! { "id" => "bob" })
                .condition_expression("balance = :b")
                .value(":b", 30),
        )
        .item(TransactDelete::new("Audit", item! { "id" => "t30" }))
        .send();
    check.unwrap();
    assert!(
        db.get_item("Audit")
            .key(item! { "id" => "t30" })
            .send()
            .unwrap()
            .item
            .is_none()
    );
}

#[test]
fn transactions_reject_duplicate_targets_and_bad_shapes() {
    let db = db_with(None);
    let duplicate = db
        .transact_write_items()
        .item(TransactPut::new("Accounts", item! { "id" => "a" }))
        .item(TransactDelete::new("Accounts", item! { "id" => "a" }))
        .send();
    assert_eq!(
        validation(duplicate),
        "Transaction request cannot include multiple operations on one item"
    );
    let mut many = db.transact_write_items();
    for n in 0..101 {
        many = many.item(TransactPut::new(
            "Accounts",
            item! { "id" => format!("x{n}") },
        ));
    }
    assert!(validation(many.send()).contains("less than or equal to 100"));
    assert!(validation(db.transact_write_items().send()).contains("greater than or equal to 1"));
    let unconditional = db
        .transact_write_items()
        .item(ConditionCheck::new("Accounts", item! { "id" => "a" }))
        .send();
    assert!(validation(unconditional).contains("conditionExpression"));
    let bad_key = db
        .transact_write_items()
        .item(TransactPut::new("Accounts", item! { "id" => "ok" }))
        .item(TransactPut::new("Accounts", item! { "id" => 5 }))
        .send();
    match bad_key {
        Err(Error::TransactionCanceled { reasons }) => {
            assert_eq!(reasons[0].code, "None");
            assert_eq!(reasons[1].code, "ValidationError");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        db.scan("Accounts").send().unwrap().count,
        0,
        "nothing was written"
    );
}

#[test]
fn client_request_tokens_are_idempotent_for_ten_minutes() {
    let clock = ManualClock::at(std::time::UNIX_EPOCH + Duration::from_secs(1_800_000_000));
    let db = db_with(Some(clock.clone()));
    db.put_item("Accounts")
        .item(item! { "id" => "c", "balance" => 0 })
        .send()
        .unwrap();
    let bump = |amount: i64| {
        db.transact_write_items()
            .client_request_token("token-1")
            .item(
                TransactUpdate::new("Accounts", item! { "id" => "c" }, "ADD balance :a")
                    .value(":a", amount),
            )
            .send()
    };
    bump(5).unwrap();
    bump(5).unwrap();
    assert_eq!(balance(&db, "c"), Some(5), "the retry changed nothing");
    assert!(matches!(
        bump(6),
        Err(Error::IdempotentParameterMismatch(_))
    ));
    clock.advance(Duration::from_secs(601));
    bump(6).unwrap();
    assert_eq!(
        balance(&db, "c"),
        Some(11),
        "after ten minutes the token is new again"
    );
    let long = db
        .transact_write_items()
        .client_request_token("x".repeat(37))
        .item(TransactPut::new("Accounts", item! { "id" => "d" }))
        .send();
    assert!(validation(long).contains("less than or equal to 36"));
}

#[test]
fn concurrent_transfers_are_serializable() {
    let db = db_with(None);
    for id in ["a", "b", "c", "d"] {
        db.put_item("Accounts")
            .item(item! { "id" => id, "balance" => 1000 })
            .send()
            .unwrap();
    }
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let db = db.clone();
            std::thread::spawn(move || {
                let ids = ["a", "b", "c", "d"];
                let (mut done, mut conflicts) = (0, 0);
                for n in 0..100 {
                    let from = ids[(t + n) % 4];
                    let to = ids[(t + n + 1) % 4];
                    let result = db
                        .transact_write_items()
                        .item(
                            TransactUpdate::new(
                                "Accounts",
                                item! { "id" => from },
                                "SET balance = balance - :a",
                            )
                            .condition_expression("balance >= :a")
                            .value(":a", 7),
                        )
                        .item(
                            TransactUpdate::new(
                                "Accounts",
                                item! { "id" => to },
                                "SET balance = balance + :a",
                            )
                            .value(":a", 7),
                        )
                        .send();
                    match result {
                        Ok(_) => done += 1,
                        Err(Error::TransactionCanceled { reasons }) => {
                            assert!(reasons.iter().all(|r| {
                                ["None", "TransactionConflict", "ConditionalCheckFailed"]
                                    .contains(&r.code.as_str())
                            }));
                            conflicts += 1;
                        }
                        Err(other) => panic!("{other:?}"),
                    }
                    // Reads in one snapshot always see a conserved total.
                    let read = db
                        .transact_get_items()
                        .item(TransactGet::new("Accounts", item! { "id" => "a" }))
                        .item(TransactGet::new("Accounts", item! { "id" => "b" }))
                        .item(TransactGet::new("Accounts", item! { "id" => "c" }))
                        .item(TransactGet::new("Accounts", item! { "id" => "d" }))
                        .send()
                        .unwrap();
                    let total: i64 = read
                        .responses
                        .iter()
                        .map(|i| {
                            let i: &Item = i.as_ref().unwrap();
                            match &i["balance"] {
                                AttributeValue::N(n) => n.to_i64().unwrap(),
                                _ => 0,
                            }
                        })
                        .sum();
                    assert_eq!(total, 4000);
                }
                (done, conflicts)
            })
        })
        .collect();
    let mut done = 0;
    for thread in threads {
        done += thread.join().unwrap().0;
    }
    assert!(done > 0);
    let total: i64 = ["a", "b", "c", "d"]
        .iter()
        .map(|id| balance(&db, id).unwrap())
        .sum();
    assert_eq!(total, 4000, "no transfer was half-applied");
}

#[test]
fn a_transaction_meeting_an_in_flight_one_is_cancelled_with_transaction_conflict() {
    use nimbus::storage::sim::SimFileSystem;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    let disk = SimFileSystem::new();
    let fs: Arc<dyn nimbus::storage::fs::FileSystem> = Arc::new(disk.session());
    let db = Database::open_on(fs, "/db", DatabaseOptions::default()).unwrap();
    db.create_table("Accounts")
        .partition_key("id", ScalarType::S)
        .send()
        .unwrap();
    // Every fsync now takes a second: the first transaction holds its item
    // that long while it commits.
    disk.set_sync_latency(Duration::from_secs(1));
    // Two writers put the same item until one of them is cancelled: the
    // first to take the item holds it across its one-second commit, longer
    // than the other's patience.
    let conflict_seen = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = ["one", "two"]
        .into_iter()
        .map(|by| {
            let (db, conflict_seen) = (db.clone(), Arc::clone(&conflict_seen));
            std::thread::spawn(move || {
                while !conflict_seen.load(Ordering::SeqCst) {
                    let result = db
                        .transact_write_items()
                        .item(TransactPut::new(
                            "Accounts",
                            item! { "id" => "hot", "by" => by },
                        ))
                        .send();
                    match result {
                        Ok(_) => {}
                        Err(Error::TransactionCanceled { reasons }) => {
                            conflict_seen.store(true, Ordering::SeqCst);
                            return Some(reasons);
                        }
                        Err(other) => panic!("{other:?}"),
                    }
                }
                None
            })
        })
        .collect();
    let mut cancellations: Vec<_> = writers
        .into_iter()
        .filter_map(|writer| writer.join().unwrap())
        .collect();
    let reasons = cancellations
        .pop()
        .expect("one transaction met the other in flight");
    assert_eq!(reasons[0].code, "TransactionConflict");
}
