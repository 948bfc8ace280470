//! Behaviour tests of the kv control plane: creating, describing, listing,
//! updating and deleting tables, and their persistence across reopen.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use nimbus::kv::{
    BillingMode, Error, IndexProjection, KeySchemaElement, KeyType, LocalSecondaryIndex,
    StreamSpecification, StreamViewType, TableStatus,
};
use nimbus::{Database, ScalarType, item};

fn music(db: &Database) {
    db.create_table("Music")
        .partition_key("Artist", ScalarType::S)
        .sort_key("SongTitle", ScalarType::S)
        .send()
        .unwrap();
}

fn validation(result: Result<impl std::fmt::Debug, Error>) -> String {
    match result {
        Err(Error::Validation(message)) => message,
        other => panic!("expected a ValidationException, got {other:?}"),
    }
}

#[test]
fn table_names_follow_dynamodb_rules() {
    let db = Database::memory().unwrap();
    let create = |name: &str| {
        db.create_table(name)
            .partition_key("pk", ScalarType::S)
            .send()
    };
    assert!(
        validation(create("ab")).contains("Member must have length greater than or equal to 3")
    );
    assert!(validation(create(&"a".repeat(256))).contains("less than or equal to 255"));
    assert!(validation(create("bad name")).contains("[a-zA-Z0-9_.-]+"));
    create("a.b-c_D9").unwrap();
    create(&"x".repeat(255)).unwrap();
    match create("a.b-c_D9") {
        Err(Error::ResourceInUse(message)) => assert_eq!(message, "Table already exists: a.b-c_D9"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn key_schemas_and_definitions_are_checked() {
    let db = Database::memory().unwrap();
    let no_definition = db
        .create_table("Table1")
        .key_schema([KeySchemaElement {
            attribute_name: "pk".into(),
            key_type: KeyType::Hash,
        }])
        .send();
    assert!(validation(no_definition).contains("not defined in AttributeDefinitions"));
    let range_first = db
        .create_table("Table2")
        .sort_key("sk", ScalarType::S)
        .partition_key("pk", ScalarType::S)
        .send();
    assert_eq!(
        validation(range_first),
        "Invalid KeySchema: The first KeySchemaElement is not a HASH key type"
    );
    let unused = db
        .create_table("Table3")
        .partition_key("pk", ScalarType::S)
        .attribute_definition("other", ScalarType::N)
        .send();
    assert!(validation(unused).contains("does not exactly match"));
    let provisioned = db
        .create_table("Table4")
        .partition_key("pk", ScalarType::S)
        .billing_mode(BillingMode::Provisioned)
        .send();
    assert!(
        validation(provisioned).contains("must both be specified when BillingMode is PROVISIONED")
    );
    let lsi_without_range = db
        .create_table("Table5")
        .partition_key("pk", ScalarType::S)
        .attribute_definition("alt", ScalarType::S)
        .local_secondary_index(LocalSecondaryIndex {
            index_name: "ByAlt".into(),
            key_schema: vec![
                KeySchemaElement {
                    attribute_name: "pk".into(),
                    key_type: KeyType::Hash,
                },
                KeySchemaElement {
                    attribute_name: "alt".into(),
                    key_type: KeyType::Range,
                },
            ],
            projection: IndexProjection::all(),
        })
        .send();
    assert!(validation(lsi_without_range).contains("does not have a range key"));
    assert!(
        db.list_tables().send().unwrap().table_names.is_empty(),
        "nothing was created"
    );
}

#[test]
fn describe_reports_schema_counts_stream_and_indexes() {
    let db = Database::memory().unwrap();
    let created = db
        .create_table("Music")
        .partition_key("Artist", ScalarType::S)
        .sort_key("SongTitle", ScalarType::S)
        .attribute_definition("Year", ScalarType::N)
        .local_secondary_index(LocalSecondaryIndex {
            index_name: "ByYear".into(),
            key_schema: vec![
                KeySchemaElement {
                    attribute_name: "Artist".into(),
                    key_type: KeyType::Hash,
                },
                KeySchemaElement {
                    attribute_name: "Year".into(),
                    key_type: KeyType::Range,
                },
            ],
            projection: IndexProjection::all(),
        })
        .stream_specification(StreamSpecification {
            stream_enabled: true,
            stream_view_type: Some(StreamViewType::NewAndOldImages),
        })
        .send()
        .unwrap();
    assert_eq!(created.table_description.table_status, TableStatus::Active);
    for n in 0..3 {
        db.put_item("Music")
            .item(item! { "Artist" => "A", "SongTitle" => format!("s{n}"), "Year" => 2000 + n })
            .send()
            .unwrap();
    }
    db.delete_item("Music")
        .key(item! { "Artist" => "A", "SongTitle" => "s0" })
        .send()
        .unwrap();
    let table = db.describe_table("Music").send().unwrap().table;
    assert_eq!(table.item_count, 2);
    assert!(table.table_size_bytes > 0);
    assert_eq!(table.key_schema.len(), 2);
    assert_eq!(table.local_secondary_indexes[0].index_name, "ByYear");
    assert!(
        table
            .latest_stream_arn
            .as_deref()
            .unwrap()
            .contains("table/Music/stream/")
    );
    match db.describe_table("Nope").send() {
        Err(Error::ResourceNotFound(message)) => {
            assert_eq!(
                message,
                "Requested resource not found: Table: Nope not found"
            )
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn list_tables_pages_in_name_order() {
    let db = Database::memory().unwrap();
    for name in ["ccc", "aaa", "bbb", "ddd"] {
        db.create_table(name)
            .partition_key("pk", ScalarType::S)
            .send()
            .unwrap();
    }
    let first = db.list_tables().limit(3).send().unwrap();
    assert_eq!(first.table_names, ["aaa", "bbb", "ccc"]);
    assert_eq!(first.last_evaluated_table_name.as_deref(), Some("ccc"));
    let second = db
        .list_tables()
        .limit(3)
        .exclusive_start_table_name("ccc")
        .send()
        .unwrap();
    assert_eq!(second.table_names, ["ddd"]);
    assert_eq!(second.last_evaluated_table_name, None);
    assert!(validation(db.list_tables().limit(101).send()).contains("less than or equal to 100"));
}

#[test]
fn update_table_switches_billing_and_stream() {
    let db = Database::memory().unwrap();
    music(&db);
    let updated = db
        .update_table("Music")
        .billing_mode(BillingMode::Provisioned)
        .provisioned_throughput(5, 7)
        .send()
        .unwrap()
        .table_description;
    assert_eq!(updated.billing_mode, BillingMode::Provisioned);
    assert_eq!(
        updated.provisioned_throughput.unwrap().write_capacity_units,
        7
    );
    let spec = StreamSpecification {
        stream_enabled: true,
        stream_view_type: Some(StreamViewType::KeysOnly),
    };
    let with_stream = db
        .update_table("Music")
        .stream_specification(spec)
        .send()
        .unwrap();
    assert!(with_stream.table_description.latest_stream_arn.is_some());
    assert!(
        validation(db.update_table("Music").stream_specification(spec).send())
            .starts_with("Table already has an enabled stream")
    );
    assert!(validation(db.update_table("Music").send()).starts_with("At least one of"));
}

#[test]
fn delete_table_removes_its_items_and_frees_the_name() {
    let db = Database::memory().unwrap();
    music(&db);
    db.put_item("Music")
        .item(item! { "Artist" => "A", "SongTitle" => "S" })
        .send()
        .unwrap();
    let deleted = db.delete_table("Music").send().unwrap();
    assert_eq!(
        deleted.table_description.table_status,
        TableStatus::Deleting
    );
    assert!(matches!(
        db.get_item("Music")
            .key(item! { "Artist" => "A", "SongTitle" => "S" })
            .send(),
        Err(Error::ResourceNotFound(_))
    ));
    music(&db);
    let scan = db.scan("Music").send().unwrap();
    assert_eq!(scan.count, 0, "a recreated table never sees the old rows");
}

#[test]
fn tables_items_and_counts_survive_reopen_and_crash() {
    use nimbus::DatabaseOptions;
    use nimbus::storage::sim::SimFileSystem;
    use std::sync::Arc;

    let dir = tempfile::tempdir().unwrap();
    {
        let db = Database::open(dir.path()).unwrap();
        music(&db);
        db.put_item("Music")
            .item(item! { "Artist" => "A", "SongTitle" => "S", "Plays" => 3 })
            .send()
            .unwrap();
        db.close().unwrap();
    }
    {
        let db = Database::open(dir.path()).unwrap();
        assert_eq!(
            db.describe_table("Music").send().unwrap().table.item_count,
            1
        );
        let got = db
            .get_item("Music")
            .key(item! { "Artist" => "A", "SongTitle" => "S" })
            .send()
            .unwrap();
        assert_eq!(got.item.unwrap()["Plays"], 3.into());
    }

    // Power loss without a close: the counts were never saved, so the next
    // open recounts them from the rows.
    let disk = SimFileSystem::new();
    {
        let session: Arc<dyn nimbus::storage::fs::FileSystem> = Arc::new(disk.session());
        let db = Database::open_on(session, "/db", DatabaseOptions::default()).unwrap();
        music(&db);
        for n in 0..5 {
            db.put_item("Music")
                .item(item! { "Artist" => "A", "SongTitle" => format!("s{n}") })
                .send()
                .unwrap();
        }
        db.delete_item("Music")
            .key(item! { "Artist" => "A", "SongTitle" => "s0" })
            .send()
            .unwrap();
        disk.crash(7);
    }
    let session: Arc<dyn nimbus::storage::fs::FileSystem> = Arc::new(disk.session());
    let db = Database::open_on(session, "/db", DatabaseOptions::default()).unwrap();
    let table = db.describe_table("Music").send().unwrap().table;
    assert_eq!(
        table.item_count, 4,
        "every acknowledged Sync write survived and was counted"
    );
    assert_eq!(db.scan("Music").send().unwrap().count, 4);
}
