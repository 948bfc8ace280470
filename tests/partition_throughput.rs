//! Provisioned throughput with a manual clock: table buckets and their
//! burst credit, the per-partition ceiling, global index back-pressure,
//! throttled requests having no effect, failed conditions being charged,
//! on-demand tables never throttling, and the limit on switching modes.
//! Also pins capacity arithmetic to DynamoDB's documented examples.

// Tests fail loudly on any unexpected error.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, UNIX_EPOCH};

use nimbus::kv::{
    BillingMode, Error, GlobalSecondaryIndex, ReturnConsumedCapacity, TABLE_THROTTLED,
};
use nimbus::time::ManualClock;
use nimbus::{Database, DatabaseOptions, ScalarType, item};

fn setup(read: u64, write: u64) -> (Database, ManualClock) {
    let clock = ManualClock::at(UNIX_EPOCH + Duration::from_secs(1_700_000_000));
    let db = Database::memory_with(
        DatabaseOptions::default()
            .clock(clock.clone())
            .partition_heat_split(None, Duration::from_secs(60)),
    )
    .unwrap();
    db.create_table("Tbl")
        .partition_key("pk", ScalarType::S)
        .billing_mode(BillingMode::Provisioned)
        .provisioned_throughput(read, write)
        .send()
        .unwrap();
    (db, clock)
}

fn put(db: &Database, pk: &str, bytes: usize) -> Result<(), Error> {
    db.put_item("Tbl")
        .item(item! { "pk" => pk, "data" => "x".repeat(bytes) })
        .send()
        .map(|_| ())
}

fn throttled(result: Result<(), Error>) -> bool {
    match result {
        Err(Error::ProvisionedThroughputExceeded(message)) => {
            assert!(message.starts_with("The level of configured provisioned throughput"));
            true
        }
        Err(other) => panic!("unexpected error {other:?}"),
        Ok(()) => false,
    }
}

#[test]
fn a_table_serves_its_rate_then_throttles_with_no_effect() {
    let (db, clock) = setup(5, 5);
    for i in 0..5 {
        put(&db, &format!("k{i}"), 10).unwrap();
    }
    let refused = put(&db, "k5", 10);
    assert!(
        matches!(&refused, Err(Error::ProvisionedThroughputExceeded(m)) if m == TABLE_THROTTLED)
    );
    let got = db
        .get_item("Tbl")
        .key(item! { "pk" => "k5" })
        .send()
        .unwrap();
    assert_eq!(got.item, None, "a throttled write has no effect");
    assert_eq!(db.describe_table("Tbl").send().unwrap().table.item_count, 5);
    // A fifth of a second refills one unit.
    clock.advance(Duration::from_millis(200));
    put(&db, "k5", 10).unwrap();
    assert!(throttled(put(&db, "k6", 10)));
}

#[test]
fn a_write_costs_one_unit_per_kilobyte_of_its_larger_image() {
    let (db, clock) = setup(5, 5);
    // 4.5 KB costs 5 units: the whole second's capacity.
    put(&db, "big", 4608).unwrap();
    assert!(throttled(put(&db, "small", 10)));
    clock.advance(Duration::from_secs(1));
    // Shrinking it still costs the larger (old) image: 5 units.
    put(&db, "big", 10).unwrap();
    assert!(throttled(put(&db, "small", 10)));
}

#[test]
fn unused_capacity_banks_up_to_300_seconds_of_burst() {
    let (db, clock) = setup(5, 1);
    clock.advance(Duration::from_secs(1000));
    // 300 s × 1 unit banked (not 1000), plus nothing else.
    for i in 0..300 {
        put(&db, &format!("k{i}"), 10).unwrap();
    }
    assert!(throttled(put(&db, "one-more", 10)));
}

#[test]
fn reads_are_admitted_on_their_minimum_and_charged_their_size() {
    let (db, clock) = setup(2, 100);
    put(&db, "item", 9000).unwrap();
    // 9000 bytes: 3 read units strongly consistent; the bucket holds 2,
    // so the read is served and leaves a debt of 1 unit.
    let get = |consistent: bool| {
        db.get_item("Tbl")
            .key(item! { "pk" => "item" })
            .consistent_read(consistent)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
    };
    let first = get(true).unwrap();
    assert_eq!(first.consumed_capacity.unwrap().capacity_units, 3.0);
    assert!(matches!(
        get(false),
        Err(Error::ProvisionedThroughputExceeded(_))
    ));
    clock.advance(Duration::from_secs(1));
    // One unit back: an eventually consistent read costs 1.5 and passes.
    assert_eq!(
        get(false)
            .unwrap()
            .consumed_capacity
            .unwrap()
            .capacity_units,
        1.5
    );
}

#[test]
fn a_failed_condition_is_charged_and_changes_nothing() {
    let (db, _clock) = setup(5, 3);
    put(&db, "k", 10).unwrap();
    for _ in 0..2 {
        let failed = db
            .put_item("Tbl")
            .item(item! { "pk" => "k", "v" => 1 })
            .condition_expression("attribute_not_exists(pk)")
            .send();
        assert!(matches!(failed, Err(Error::ConditionalCheckFailed { .. })));
    }
    // 3 units: one put and two charged failures.
    assert!(throttled(put(&db, "other", 10)));
}

#[test]
fn a_partition_never_exceeds_its_ceiling_even_under_a_larger_table_rate() {
    let (db, clock) = setup(10_000, 10_000);
    clock.advance(Duration::from_secs(10));
    // 1,000 units per partition per second: 10 writes of 100 KB (the
    // payload plus 9 bytes of names and key).
    let payload = 100 * 1024 - 9;
    for _ in 0..10 {
        put(&db, "hot", payload).unwrap();
    }
    assert!(throttled(put(&db, "hot", payload)));
    clock.advance(Duration::from_secs(1));
    put(&db, "hot", payload).unwrap();
}

#[test]
fn two_partitions_double_what_one_hot_partition_could_take() {
    let clock = ManualClock::at(UNIX_EPOCH + Duration::from_secs(1_700_000_000));
    let db = Database::memory_with(
        DatabaseOptions::default()
            .clock(clock.clone())
            .initial_partitions(2)
            .partition_heat_split(None, Duration::from_secs(60)),
    )
    .unwrap();
    db.create_table("Tbl")
        .partition_key("pk", ScalarType::S)
        .billing_mode(BillingMode::Provisioned)
        .provisioned_throughput(10_000, 10_000)
        .send()
        .unwrap();
    clock.advance(Duration::from_secs(10));
    // Keys spread over both partitions: 2,000 units in one second pass.
    let mut passed = 0;
    for i in 0..40 {
        if put(&db, &format!("k{i}"), 50 * 1024).is_ok() {
            passed += 1;
        }
    }
    assert!(passed > 20, "only {passed} of 40 writes of 50 units passed");
}

#[test]
fn a_global_index_out_of_capacity_throttles_the_base_write() {
    let clock = ManualClock::at(UNIX_EPOCH + Duration::from_secs(1_700_000_000));
    let db = Database::memory_with(DatabaseOptions::default().clock(clock.clone())).unwrap();
    db.create_table("Tbl")
        .partition_key("pk", ScalarType::S)
        .attribute_definition("g", ScalarType::S)
        .billing_mode(BillingMode::Provisioned)
        .provisioned_throughput(100, 100)
        .global_secondary_index(GlobalSecondaryIndex::new("ByG", "g").provisioned_throughput(1, 1))
        .send()
        .unwrap();
    db.put_item("Tbl")
        .item(item! { "pk" => "a", "g" => "x" })
        .send()
        .unwrap();
    let refused = db
        .put_item("Tbl")
        .item(item! { "pk" => "b", "g" => "y" })
        .send();
    match refused {
        Err(Error::ProvisionedThroughputExceeded(m)) => {
            assert!(m.contains("global secondary indexes"), "{m}")
        }
        other => panic!("expected GSI throttling, got {other:?}"),
    }
    let got = db
        .get_item("Tbl")
        .key(item! { "pk" => "b" })
        .send()
        .unwrap();
    assert_eq!(got.item, None);
    // A write that touches no index entry is not held back by it.
    put(&db, "c", 10).unwrap();

    // Raising the index's capacity admits the write at once.
    db.update_table("Tbl")
        .update_global_secondary_index("ByG", 50, 50)
        .send()
        .unwrap();
    db.put_item("Tbl")
        .item(item! { "pk" => "b", "g" => "y" })
        .send()
        .unwrap();
    let described = db.describe_table("Tbl").send().unwrap().table;
    let index = &described.global_secondary_indexes[0];
    let throughput = index.provisioned_throughput.unwrap();
    assert_eq!(
        (
            throughput.read_capacity_units,
            throughput.write_capacity_units
        ),
        (50, 50)
    );
    // A no-op change, an unknown index and zero units are refused.
    let same = db
        .update_table("Tbl")
        .update_global_secondary_index("ByG", 50, 50)
        .send();
    assert!(
        matches!(&same, Err(Error::Validation(m)) if m.contains("will not change")),
        "{same:?}"
    );
    assert!(matches!(
        db.update_table("Tbl")
            .update_global_secondary_index("Nope", 5, 5)
            .send(),
        Err(Error::ResourceNotFound(_))
    ));
    assert!(matches!(
        db.update_table("Tbl")
            .update_global_secondary_index("ByG", 0, 5)
            .send(),
        Err(Error::Validation(_))
    ));
}

#[test]
fn an_on_demand_index_has_no_throughput_to_update() {
    let db = Database::memory().unwrap();
    db.create_table("Tbl")
        .partition_key("pk", ScalarType::S)
        .attribute_definition("g", ScalarType::S)
        .global_secondary_index(GlobalSecondaryIndex::new("ByG", "g"))
        .send()
        .unwrap();
    let refused = db
        .update_table("Tbl")
        .update_global_secondary_index("ByG", 5, 5)
        .send();
    assert!(
        matches!(&refused, Err(Error::Validation(m)) if m.contains("PAY_PER_REQUEST")),
        "{refused:?}"
    );
    let described = db.describe_table("Tbl").send().unwrap().table;
    assert_eq!(
        described.global_secondary_indexes[0].provisioned_throughput,
        None
    );
}

#[test]
fn a_batch_write_beyond_capacity_is_refused_whole() {
    let (db, clock) = setup(5, 5);
    let batch = |from: usize, count: usize| {
        let mut request = db.batch_write_item();
        for i in from..from + count {
            request = request.put("Tbl", item! { "pk" => format!("k{i}") });
        }
        request.send().map(|_| ())
    };
    batch(0, 3).unwrap();
    // 3 more units do not fit in the 2 left: nothing of the batch lands.
    assert!(throttled(batch(3, 3)));
    assert_eq!(db.describe_table("Tbl").send().unwrap().table.item_count, 3);
    clock.advance(Duration::from_secs(1));
    batch(3, 3).unwrap();
}

#[test]
fn a_transaction_costs_double_and_is_cancelled_when_throttled() {
    let (db, clock) = setup(5, 5);
    let transaction = |keys: &[&str]| {
        let mut request = db.transact_write_items();
        for key in keys {
            request = request.item(nimbus::kv::TransactPut::new("Tbl", item! { "pk" => *key }));
        }
        request.send()
    };
    // Two items: 4 units of the 5.
    transaction(&["a", "b"]).unwrap();
    match transaction(&["c"]) {
        Err(Error::TransactionCanceled { reasons }) => {
            assert_eq!(reasons[0].code, "ProvisionedThroughputExceeded");
        }
        other => panic!("expected a throttled transaction, got {other:?}"),
    }
    let got = db
        .get_item("Tbl")
        .key(item! { "pk" => "c" })
        .send()
        .unwrap();
    assert_eq!(got.item, None);
    clock.advance(Duration::from_secs(1));
    transaction(&["c"]).unwrap();
}

#[test]
fn on_demand_tables_never_throttle() {
    let db = Database::memory().unwrap();
    db.create_table("Tbl")
        .partition_key("pk", ScalarType::S)
        .send()
        .unwrap();
    for i in 0..50 {
        put(&db, &format!("k{i}"), 100 * 1024).unwrap();
    }
}

#[test]
fn switching_to_on_demand_is_limited_to_four_times_a_day() {
    let (db, clock) = setup(5, 5);
    let switch = |mode: BillingMode| {
        let request = db.update_table("Tbl").billing_mode(mode);
        match mode {
            BillingMode::Provisioned => request.provisioned_throughput(5, 5),
            BillingMode::PayPerRequest => request,
        }
        .send()
    };
    for _ in 0..4 {
        switch(BillingMode::PayPerRequest).unwrap();
        // Unthrottled now.
        for i in 0..10 {
            put(&db, &format!("k{i}"), 10).unwrap();
        }
        switch(BillingMode::Provisioned).unwrap();
        clock.advance(Duration::from_secs(60 * 60));
    }
    let refused = switch(BillingMode::PayPerRequest);
    assert!(
        matches!(refused, Err(Error::LimitExceeded(_))),
        "{refused:?}"
    );
    // Back to provisioned any time; a day after the first switch, one
    // more switch to on-demand is allowed.
    clock.advance(Duration::from_secs(20 * 60 * 60));
    switch(BillingMode::PayPerRequest).unwrap();
}

/// DynamoDB's documented examples of capacity arithmetic.
mod arithmetic {
    use super::*;

    fn units_of_put(bytes: usize) -> f64 {
        let db = Database::memory().unwrap();
        db.create_table("Tbl")
            .partition_key("pk", ScalarType::S)
            .send()
            .unwrap();
        // "pk" + "p" and "data" + payload: subtract the 7 bytes of names
        // and key so the item is exactly `bytes`.
        db.put_item("Tbl")
            .item(item! { "pk" => "p", "data" => "x".repeat(bytes - 7) })
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .unwrap()
            .consumed_capacity
            .unwrap()
            .capacity_units
    }

    #[test]
    fn six_items_a_second_of_4_5_kb_need_30_write_units() {
        assert_eq!(6.0 * units_of_put(4608), 30.0);
    }

    #[test]
    fn a_3_5_kb_read_costs_one_unit_and_a_10_kb_read_three() {
        let db = Database::memory().unwrap();
        db.create_table("Tbl")
            .partition_key("pk", ScalarType::S)
            .send()
            .unwrap();
        let read = |bytes: usize, consistent: bool| {
            db.put_item("Tbl")
                .item(item! { "pk" => "p", "data" => "x".repeat(bytes - 7) })
                .send()
                .unwrap();
            db.get_item("Tbl")
                .key(item! { "pk" => "p" })
                .consistent_read(consistent)
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .unwrap()
                .consumed_capacity
                .unwrap()
                .capacity_units
        };
        assert_eq!(read(3584, true), 1.0);
        assert_eq!(read(10 * 1024, true), 3.0);
        assert_eq!(read(10 * 1024, false), 1.5);
    }

    fn table() -> Database {
        let db = Database::memory().unwrap();
        db.create_table("Tbl")
            .partition_key("pk", ScalarType::S)
            .send()
            .unwrap();
        db
    }

    #[test]
    fn batch_writes_round_each_item_500_bytes_and_3_5_kb_cost_five() {
        assert_eq!(units_of_put(500) + units_of_put(3584), 5.0);
        let db = table();
        let out = db
            .batch_write_item()
            .put("Tbl", item! { "pk" => "a", "data" => "x".repeat(500 - 7) })
            .put("Tbl", item! { "pk" => "b", "data" => "x".repeat(3584 - 7) })
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .unwrap();
        assert_eq!(out.consumed_capacity[0].capacity_units, 5.0);
    }

    #[test]
    fn batch_gets_round_each_item_1_5_kb_and_6_5_kb_cost_12_kb() {
        let db = table();
        db.put_item("Tbl")
            .item(item! { "pk" => "a", "data" => "x".repeat(1536 - 7) })
            .send()
            .unwrap();
        db.put_item("Tbl")
            .item(item! { "pk" => "b", "data" => "x".repeat(6656 - 7) })
            .send()
            .unwrap();
        let out = db
            .batch_get_item()
            .key("Tbl", item! { "pk" => "a" })
            .key("Tbl", item! { "pk" => "b" })
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .unwrap();
        // 12 KB eventually consistent: 3 units halved (a single sum of
        // 8 KB would have been 1).
        assert_eq!(out.consumed_capacity[0].capacity_units, 1.5);
    }

    #[test]
    fn a_query_sums_its_items_then_rounds_once() {
        let db = Database::memory().unwrap();
        db.create_table("Tbl")
            .partition_key("pk", ScalarType::S)
            .sort_key("sk", ScalarType::N)
            .send()
            .unwrap();
        // 1,500 items of about 64 bytes: DynamoDB's example (96 KB).
        let mut total = 0;
        for n in 0..1500 {
            let item = item! { "pk" => "p", "sk" => n, "d" => "x".repeat(50) };
            total += nimbus::value::item_size(&item);
            db.put_item("Tbl").item(item).send().unwrap();
        }
        let out = db
            .query("Tbl")
            .key_condition_expression("pk = :p")
            .value(":p", "p")
            .consistent_read(true)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .unwrap();
        assert_eq!(out.count, 1500);
        // One rounding of the sum, not 1,500 of one unit each.
        let units = out.consumed_capacity.unwrap().capacity_units;
        assert_eq!(units, total.div_ceil(4096) as f64);
        assert!(units < 30.0);
    }
}

#[test]
fn a_batch_get_beyond_capacity_returns_unprocessed_keys_then_fails_whole() {
    let (db, clock) = setup(2, 100);
    for i in 0..4 {
        put(&db, &format!("k{i}"), 5000).unwrap();
    }
    clock.advance(Duration::from_secs(1));
    let batch = || {
        (0..4).fold(db.batch_get_item(), |batch, i| {
            batch.key("Tbl", item! { "pk" => format!("k{i}") })
        })
    };
    // Spend the bucket (and its burst credit) with single reads of one
    // unit each (5 KB, eventually consistent) until one is refused.
    let get = || db.get_item("Tbl").key(item! { "pk" => "k0" }).send();
    for _ in 0..10_000 {
        if get().is_err() {
            break;
        }
    }
    assert!(matches!(
        get(),
        Err(Error::ProvisionedThroughputExceeded(_))
    ));
    // One second refills two units: two keys are read, two come back.
    clock.advance(Duration::from_secs(1));
    let output = batch().send().unwrap();
    assert_eq!(output.responses["Tbl"].len(), 2);
    assert_eq!(output.unprocessed_keys["Tbl"].keys.len(), 2);
    // Nothing left: no key can be read, so the call fails whole.
    assert!(matches!(
        batch().send(),
        Err(Error::ProvisionedThroughputExceeded(_))
    ));
}

#[test]
fn a_read_transaction_beyond_capacity_is_cancelled_before_reading() {
    let (db, clock) = setup(4, 100);
    put(&db, "a", 100).unwrap();
    put(&db, "b", 100).unwrap();
    clock.advance(Duration::from_secs(1));
    let transaction = || {
        db.transact_get_items()
            .item(nimbus::kv::TransactGet::new("Tbl", item! { "pk" => "a" }))
            .item(nimbus::kv::TransactGet::new("Tbl", item! { "pk" => "b" }))
            .send()
    };
    // Two items of 100 bytes cost 2 units each (transactional reads are
    // double): served while the bucket lasts, then cancelled whole.
    let mut served = 0;
    loop {
        match transaction() {
            Ok(output) => {
                assert_eq!(output.responses.iter().flatten().count(), 2);
                served += 1;
                assert!(served < 10_000, "the bucket never ran out");
            }
            Err(Error::TransactionCanceled { reasons }) => {
                let codes: Vec<&str> = reasons.iter().map(|r| r.code.as_str()).collect();
                assert!(
                    codes.contains(&"ProvisionedThroughputExceeded"),
                    "{codes:?}"
                );
                break;
            }
            Err(other) => panic!("{other:?}"),
        }
    }
    assert!(served >= 1);
}

#[test]
fn a_scan_is_held_to_the_partition_ceilings_it_reads() {
    let clock = ManualClock::at(UNIX_EPOCH + Duration::from_secs(1_700_000_000));
    let db = Database::memory_with(
        DatabaseOptions::default()
            .clock(clock.clone())
            .partition_heat_split(None, Duration::from_secs(60)),
    )
    .unwrap();
    db.create_table("Tbl")
        .partition_key("pk", ScalarType::S)
        .send()
        .unwrap();
    // 16 items of about 256 KB in the one partition, loaded on demand.
    for i in 0..16 {
        put(&db, &format!("k{i:02}"), 256 * 1024).unwrap();
    }
    db.update_table("Tbl")
        .billing_mode(BillingMode::Provisioned)
        .provisioned_throughput(40_000, 100)
        .send()
        .unwrap();
    clock.advance(Duration::from_secs(10));
    // The table could serve 40,000 units this second; the partition 3,000.
    let mut consumed = 0.0;
    let mut pages = 0;
    let mut start = None;
    let refused = loop {
        let mut scan = db
            .scan("Tbl")
            .consistent_read(true)
            .return_consumed_capacity(ReturnConsumedCapacity::Total);
        if let Some(key) = start.take() {
            scan = scan.exclusive_start_key(key);
        }
        match scan.send() {
            Ok(page) => {
                consumed += page.consumed_capacity.unwrap().capacity_units;
                pages += 1;
                start = page.last_evaluated_key;
            }
            Err(error) => break error,
        }
        assert!(pages < 100, "never throttled after {consumed} units");
    };
    assert!(matches!(refused, Error::ProvisionedThroughputExceeded(_)));
    assert!(
        (3_000.0..3_000.0 + 260.0).contains(&consumed),
        "throttled after {consumed} units in {pages} pages"
    );
    // A second later the partition serves again.
    clock.advance(Duration::from_secs(1));
    db.scan("Tbl").limit(1).send().unwrap();
}
