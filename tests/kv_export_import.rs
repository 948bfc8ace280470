//! Export of a table to the object store and import of a new table from
//! it: an export → import round trip keeps every item exactly (every
//! attribute type); bad lines are counted and reported, never fatal; CSV
//! sources; a missing source fails without creating a table.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use nimbus::kv::{ExportStatus, ImportStatus, InputCompressionType, InputFormat};
use nimbus::{AttributeValue, Database, Item, ScalarType, item};

fn all_types(n: u64) -> Item {
    let nested: BTreeMap<String, AttributeValue> = [
        ("inner".to_owned(), AttributeValue::from("v")),
        (
            "list".to_owned(),
            AttributeValue::L(vec![AttributeValue::Null, AttributeValue::Bool(false)]),
        ),
    ]
    .into();
    item! {
        "pk" => format!("p{}", n % 37), "sk" => n,
        "s" => format!("text {n} ✓"), "n" => AttributeValue::N(format!("-{n}.25e3").parse().unwrap()),
        "b" => AttributeValue::B(vec![0, 1, (n % 256) as u8]), "t" => n.is_multiple_of(2),
        "null" => AttributeValue::Null, "m" => AttributeValue::M(nested),
        "l" => AttributeValue::L(vec![AttributeValue::from(1), AttributeValue::from("two")]),
        "ss" => AttributeValue::string_set(["a", "b"]), "ns" => AttributeValue::number_set([n as i64, 7]),
        "bs" => AttributeValue::Bs([vec![1], vec![2, 3]].into())
    }
}

fn table(db: &Database, name: &str) -> nimbus::kv::CreateTable {
    db.create_table(name)
        .partition_key("pk", ScalarType::S)
        .sort_key("sk", ScalarType::N)
}

fn scan_all(db: &Database, name: &str) -> Vec<Item> {
    let mut items: Vec<Item> = db.scan(name).items().map(Result::unwrap).collect();
    items.sort_by_key(|i| i["sk"].as_n().unwrap().to_i64().unwrap());
    items
}

#[test]
fn an_export_imports_back_to_the_same_items() {
    let db = Database::memory().unwrap();
    table(&db, "Source").send().unwrap();
    for n in 0..1500 {
        db.put_item("Source").item(all_types(n)).send().unwrap();
    }
    db.objects().create_bucket("exports").send().unwrap();
    let reports = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&reports);
    let export = db
        .export_table_to_point_in_time("Source")
        .s3_bucket("exports")
        .s3_prefix("nightly")
        .on_progress(move |p| seen.lock().unwrap().push(*p))
        .send()
        .unwrap()
        .export_description;
    assert_eq!(export.export_status, ExportStatus::Completed);
    assert_eq!(export.item_count, 1500);
    let done: Vec<(u64, bool)> = reports
        .lock()
        .unwrap()
        .iter()
        .map(|p| (p.items_done, p.finished))
        .collect();
    assert_eq!(done, [(1024, false), (1500, true)]);
    assert_eq!(reports.lock().unwrap()[0].items_total, Some(1500));
    let summary = db
        .objects()
        .get_object("exports", &export.export_manifest)
        .send()
        .unwrap()
        .body
        .collect()
        .unwrap();
    let summary: serde_json::Value = serde_json::from_slice(&summary).unwrap();
    assert_eq!(summary["itemCount"], 1500);
    assert_eq!(summary["outputFormat"], "DYNAMODB_JSON");
    let root = export
        .export_manifest
        .strip_suffix("manifest-summary.json")
        .unwrap()
        .to_owned();
    assert!(root.starts_with("nightly/AWSDynamoDB/"));

    let imported = db
        .import_table()
        .s3_bucket_source("exports", format!("{root}data/"))
        .input_compression_type(InputCompressionType::Gzip)
        .table_creation_parameters(table(&db, "Copy"))
        .on_progress({
            let reports = Arc::clone(&reports);
            move |p| reports.lock().unwrap().push(*p)
        })
        .send()
        .unwrap()
        .import_table_description;
    assert_eq!(imported.import_status, ImportStatus::Completed);
    assert_eq!(
        (imported.imported_item_count, imported.error_count),
        (1500, 0)
    );
    assert_eq!(imported.table_description.unwrap().item_count, 1500);
    assert_eq!(scan_all(&db, "Copy"), scan_all(&db, "Source"));
    let last = *reports.lock().unwrap().last().unwrap();
    assert!(last.finished && last.items_done == 1500);
}

#[test]
fn bad_lines_are_counted_and_reported_not_fatal() {
    let db = Database::memory().unwrap();
    db.objects().create_bucket("inbox").send().unwrap();
    let lines = [
        r#"{"Item":{"pk":{"S":"a"},"sk":{"N":"1"}}}"#,
        r#"not json"#,
        r#"{"Item":{"pk":{"S":"b"},"sk":{"N":"2"},"x":{"SS":["1","1"]}}}"#,
        "",
        r#"{"Item":{"pk":{"S":"c"}}}"#,
        r#"{"Item":{"pk":{"N":"3"},"sk":{"N":"3"}}}"#,
        r#"{"pk":{"S":"d"},"sk":{"N":"4"}}"#,
        r#"{"Item":{"pk":{"S":"e"},"sk":{"N":"5"},"v":{"BOOL":true}}}"#,
    ];
    db.objects()
        .put_object("inbox", "load/one.json")
        .body(lines.join("\n"))
        .send()
        .unwrap();
    db.objects()
        .put_object("inbox", "load/two.json.gz")
        .body("not gzip at all")
        .send()
        .unwrap();
    let result = db
        .import_table()
        .s3_bucket_source("inbox", "load/one")
        .table_creation_parameters(table(&db, "Loaded"))
        .send()
        .unwrap()
        .import_table_description;
    assert_eq!(result.import_status, ImportStatus::Completed);
    assert_eq!(
        result.processed_item_count, 7,
        "the blank line is not an item"
    );
    assert_eq!(result.imported_item_count, 2);
    assert_eq!(result.error_count, 5);
    let lines: Vec<u64> = result.errors.iter().map(|e| e.line).collect();
    assert_eq!(lines, [2, 3, 5, 6, 7]);
    assert!(
        result
            .errors
            .iter()
            .all(|e| e.object_key == "load/one.json")
    );
    assert_eq!(db.scan("Loaded").send().unwrap().count, 2);

    // A whole object that cannot be decoded is one error, not a failure.
    let gz = db
        .import_table()
        .s3_bucket_source("inbox", "load/two")
        .input_compression_type(InputCompressionType::Gzip)
        .table_creation_parameters(table(&db, "Gzipped"))
        .send()
        .unwrap()
        .import_table_description;
    assert_eq!(
        (gz.import_status, gz.error_count),
        (ImportStatus::Completed, 1)
    );
    assert!(gz.errors[0].message.contains("gzip"), "{:?}", gz.errors);
}

#[test]
fn csv_sources_take_key_types_from_the_table() {
    let db = Database::memory().unwrap();
    db.objects().create_bucket("inbox").send().unwrap();
    let csv = "pk,sk,name,note\n\
               a,1,Ada,\"likes, commas\"\n\
               b,2,\"Bob \"\"the\"\" builder\",\n\
               c,three,Cy,bad number\n\
               d,4,Di,x,extra\n";
    db.objects()
        .put_object("inbox", "people.csv")
        .body(csv)
        .send()
        .unwrap();
    let result = db
        .import_table()
        .s3_bucket_source("inbox", "people")
        .input_format(InputFormat::Csv)
        .table_creation_parameters(table(&db, "People"))
        .send()
        .unwrap()
        .import_table_description;
    assert_eq!((result.imported_item_count, result.error_count), (2, 2));
    let people = scan_all(&db, "People");
    assert_eq!(
        people,
        [
            item! { "pk" => "a", "sk" => 1, "name" => "Ada", "note" => "likes, commas" },
            item! { "pk" => "b", "sk" => 2, "name" => "Bob \"the\" builder" },
        ]
    );
    // A header given separately: every line is data.
    db.objects()
        .put_object("inbox", "raw.csv")
        .body("x;9;Xena\n")
        .send()
        .unwrap();
    let raw = db
        .import_table()
        .s3_bucket_source("inbox", "raw")
        .input_format(InputFormat::Csv)
        .csv_delimiter(';')
        .csv_header(["pk", "sk", "name"])
        .table_creation_parameters(table(&db, "Raw"))
        .send()
        .unwrap()
        .import_table_description;
    assert_eq!(raw.imported_item_count, 1);
}

#[test]
fn a_missing_source_fails_without_a_table() {
    let db = Database::memory().unwrap();
    let result = db
        .import_table()
        .s3_bucket_source("nowhere", "x")
        .table_creation_parameters(table(&db, "Never"))
        .send()
        .unwrap()
        .import_table_description;
    assert_eq!(result.import_status, ImportStatus::Failed);
    assert_eq!(result.failure_code.as_deref(), Some("S3NoSuchBucket"));
    assert!(db.list_tables().send().unwrap().table_names.is_empty());
    table(&db, "Source").send().unwrap();
    let export = db
        .export_table_to_point_in_time("Source")
        .s3_bucket("nowhere")
        .send()
        .unwrap()
        .export_description;
    assert_eq!(export.export_status, ExportStatus::Failed);
    assert_eq!(export.failure_code.as_deref(), Some("S3NoSuchBucket"));
}
