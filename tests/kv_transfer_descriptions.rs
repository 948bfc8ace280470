//! Export and import descriptions are durable: `describe_export`,
//! `list_exports`, `describe_import` and `list_imports` answer with what
//! the export or import returned, after a reopen too; lists page newest
//! first and filter by table; unknown ARNs are typed not-found errors; a
//! failed import is recorded as FAILED; one cut short is FAILED at the next
//! open; client tokens replay or conflict.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, UNIX_EPOCH};

use nimbus::kv::{
    CLIENT_TOKEN_WINDOW, Error, ExportStatus, ExportType, INTERRUPTED_FAILURE_CODE, ImportStatus,
    InputCompressionType,
};
use nimbus::time::ManualClock;
use nimbus::{Database, DatabaseOptions, ScalarType, item};

const START_SECS: u64 = 1_800_000_000;

fn clocked(clock: &ManualClock) -> DatabaseOptions {
    DatabaseOptions::default()
        .clock(clock.clone())
        .background_threads(false)
}

fn table(db: &Database, name: &str) -> nimbus::kv::CreateTable {
    db.create_table(name)
        .partition_key("pk", ScalarType::S)
        .sort_key("sk", ScalarType::N)
}

/// A table `name` of `items` items and a bucket `exports`.
fn filled(db: &Database, name: &str, items: u64) {
    table(db, name).send().unwrap();
    for n in 0..items {
        db.put_item(name)
            .item(item! {"pk" => format!("p{n}"), "sk" => n})
            .send()
            .unwrap();
    }
    if db.objects().head_bucket("exports").send().is_err() {
        db.objects().create_bucket("exports").send().unwrap();
    }
}

fn export(db: &Database, table: &str) -> nimbus::kv::ExportDescription {
    db.export_table_to_point_in_time(table)
        .s3_bucket("exports")
        .send()
        .unwrap()
        .export_description
}

fn data_prefix(export: &nimbus::kv::ExportDescription) -> String {
    let root = export
        .export_manifest
        .strip_suffix("manifest-summary.json")
        .unwrap();
    format!("{root}data/")
}

#[test]
fn descriptions_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at(UNIX_EPOCH + Duration::from_secs(START_SECS));
    let db = Database::open_with(dir.path(), clocked(&clock)).unwrap();
    filled(&db, "Source", 40);
    let exported = db
        .export_table_to_point_in_time("Source")
        .s3_bucket("exports")
        .s3_prefix("nightly")
        .client_token("nightly-1")
        .send()
        .unwrap()
        .export_description;
    assert_eq!(exported.export_status, ExportStatus::Completed);
    assert_eq!(exported.export_type, ExportType::FullExport);
    assert_eq!(exported.client_token.as_deref(), Some("nightly-1"));
    assert_eq!(
        exported.start_time,
        UNIX_EPOCH + Duration::from_secs(START_SECS)
    );
    assert!(exported.end_time.is_some());
    let source = db.describe_table("Source").send().unwrap().table;
    assert_eq!(exported.table_id, source.table_id);
    assert!(exported.export_arn.starts_with(&source.table_arn));

    clock.advance(Duration::from_secs(5));
    let imported = db
        .import_table()
        .s3_bucket_source("exports", data_prefix(&exported))
        .input_compression_type(InputCompressionType::Gzip)
        .table_creation_parameters(table(&db, "Copy"))
        .send()
        .unwrap()
        .import_table_description;
    assert_eq!(imported.import_status, ImportStatus::Completed);
    assert_eq!(imported.imported_item_count, 40);
    let copy = imported.table_description.clone().unwrap();
    assert_eq!(imported.table_arn, copy.table_arn);
    assert_eq!(imported.table_id.as_deref(), Some(copy.table_id.as_str()));
    assert_eq!(imported.table_creation_parameters.table_name, "Copy");
    assert_eq!(imported.table_creation_parameters.key_schema.len(), 2);
    db.close().unwrap();
    drop(db);

    let db = Database::open_with(dir.path(), clocked(&clock)).unwrap();
    let described = db
        .describe_export(&exported.export_arn)
        .send()
        .unwrap()
        .export_description;
    assert_eq!(described, exported);
    let described = db
        .describe_import(&imported.import_arn)
        .send()
        .unwrap()
        .import_table_description;
    assert_eq!(described.table_description, None);
    assert_eq!(
        described,
        nimbus::kv::ImportTableDescription {
            table_description: None,
            ..imported.clone()
        }
    );
    let exports = db.list_exports().send().unwrap();
    assert_eq!(exports.export_summaries.len(), 1);
    assert_eq!(exports.export_summaries[0].export_arn, exported.export_arn);
    assert_eq!(exports.next_token, None);
    let imports = db.list_imports().send().unwrap();
    assert_eq!(imports.import_summary_list.len(), 1);
    let summary = &imports.import_summary_list[0];
    assert_eq!(summary.import_arn, imported.import_arn);
    assert_eq!(summary.import_status, ImportStatus::Completed);
    assert_eq!(summary.start_time, imported.start_time);
    assert_eq!(summary.end_time, imported.end_time);
}

#[test]
fn lists_page_newest_first_and_filter_by_table() {
    let clock = ManualClock::at(UNIX_EPOCH + Duration::from_secs(START_SECS));
    let db = Database::memory_with(clocked(&clock)).unwrap();
    filled(&db, "Alpha", 3);
    filled(&db, "Beta", 3);
    let mut alpha = Vec::new();
    for n in 0..7 {
        clock.advance(Duration::from_millis(1));
        alpha.push(export(&db, "Alpha").export_arn);
        if n < 3 {
            export(&db, "Beta");
        }
    }
    let alpha_arn = db.describe_table("Alpha").send().unwrap().table.table_arn;

    // All ten, three per page, newest ARN first, no repeats.
    let mut listed = Vec::new();
    let mut token = None;
    let mut pages = 0;
    loop {
        let mut request = db.list_exports().max_results(3);
        if let Some(token) = token.take() {
            request = request.next_token(token);
        }
        let page = request.send().unwrap();
        pages += 1;
        assert!(page.export_summaries.len() <= 3);
        listed.extend(page.export_summaries.into_iter().map(|s| s.export_arn));
        match page.next_token {
            Some(next) => token = Some(next),
            None => break,
        }
    }
    assert_eq!(pages, 4);
    let mut sorted = listed.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    sorted.dedup();
    assert_eq!(listed, sorted);
    assert_eq!(listed.len(), 10);

    // One table's, newest first: ids start with the time.
    let only_alpha = db
        .list_exports()
        .table_arn(&alpha_arn)
        .send()
        .unwrap()
        .export_summaries;
    let newest_first: Vec<String> = alpha.iter().rev().cloned().collect();
    assert_eq!(
        only_alpha
            .iter()
            .map(|s| s.export_arn.clone())
            .collect::<Vec<_>>(),
        newest_first
    );
    let second_page = db
        .list_exports()
        .table_arn(&alpha_arn)
        .max_results(5)
        .send()
        .unwrap();
    let rest = db
        .list_exports()
        .table_arn(&alpha_arn)
        .next_token(second_page.next_token.unwrap())
        .send()
        .unwrap();
    assert_eq!(rest.export_summaries.len(), 2);
    assert_eq!(rest.next_token, None);
    assert!(
        db.list_exports()
            .table_arn(format!("{alpha_arn}x"))
            .send()
            .unwrap()
            .export_summaries
            .is_empty()
    );

    // A token below the filtered range (here: the empty ARN) ends the list.
    let below = db
        .list_exports()
        .table_arn(&alpha_arn)
        .next_token("0".repeat(112))
        .send()
        .unwrap();
    assert!(below.export_summaries.is_empty() && below.next_token.is_none());

    // Imports page the same way, filtered by their target table.
    let source = data_prefix(&export(&db, "Alpha"));
    for name in ["CopyA", "CopyB", "CopyC"] {
        clock.advance(Duration::from_millis(1));
        db.import_table()
            .s3_bucket_source("exports", source.clone())
            .input_compression_type(InputCompressionType::Gzip)
            .table_creation_parameters(table(&db, name))
            .send()
            .unwrap();
    }
    let first = db.list_imports().page_size(2).send().unwrap();
    assert_eq!(first.import_summary_list.len(), 2);
    let token = first.next_token.unwrap();
    assert!(token.len() >= 112 && token.len().is_multiple_of(16));
    let second = db.list_imports().next_token(token).send().unwrap();
    assert_eq!(second.import_summary_list.len(), 1);
    assert_eq!(second.next_token, None);
    let copy_b = db.describe_table("CopyB").send().unwrap().table.table_arn;
    let only_b = db.list_imports().table_arn(&copy_b).send().unwrap();
    assert_eq!(only_b.import_summary_list.len(), 1);
    assert_eq!(only_b.import_summary_list[0].table_arn, copy_b);
}

#[test]
fn page_sizes_out_of_range_are_validation_errors() {
    let db = Database::memory().unwrap();
    for (result, words) in [
        (
            db.list_exports().max_results(0).send().map(drop),
            "Value '0' at 'maxResults' failed to satisfy constraint: Member must have value \
             greater than or equal to 1",
        ),
        (
            db.list_exports().max_results(26).send().map(drop),
            "Value '26' at 'maxResults' failed to satisfy constraint: Member must have value \
             less than or equal to 25",
        ),
        (
            db.list_imports().page_size(0).send().map(drop),
            "Value '0' at 'pageSize' failed to satisfy constraint: Member must have value \
             greater than or equal to 1",
        ),
        (
            db.list_imports().page_size(100).send().map(drop),
            "Value '100' at 'pageSize' failed to satisfy constraint: Member must have value \
             less than or equal to 25",
        ),
        (
            db.list_imports().next_token("zz").send().map(drop),
            "at 'nextToken' failed to satisfy constraint",
        ),
    ] {
        match result {
            Err(Error::Validation(message)) => assert!(message.contains(words), "{message}"),
            other => panic!("expected a validation error, got {other:?}"),
        }
    }
}

#[test]
fn unknown_arns_are_not_found() {
    let db = Database::memory().unwrap();
    filled(&db, "Source", 1);
    let arn = export(&db, "Source").export_arn;
    let missing = format!("{arn}0");
    assert!(matches!(
        db.describe_export(&missing).send(),
        Err(Error::ExportNotFound(m)) if m.contains(&missing)
    ));
    // An export's ARN names no import.
    assert!(matches!(
        db.describe_import(&arn).send(),
        Err(Error::ImportNotFound(_))
    ));
    // Too short for an ARN: DynamoDB's length check comes first.
    assert!(matches!(
        db.describe_export("arn:short").send(),
        Err(Error::Validation(m)) if m.contains("length greater than or equal to 37")
    ));
    assert!(matches!(
        db.describe_import("").send(),
        Err(Error::Validation(_))
    ));
}

#[test]
fn an_import_whose_source_is_missing_is_recorded_as_failed() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    let failed = db
        .import_table()
        .s3_bucket_source("no-such-bucket", "x/")
        .table_creation_parameters(table(&db, "Never"))
        .send()
        .unwrap()
        .import_table_description;
    assert_eq!(failed.import_status, ImportStatus::Failed);
    assert_eq!(failed.failure_code.as_deref(), Some("S3NoSuchBucket"));
    assert_eq!(failed.table_id, None);
    assert!(db.describe_table("Never").send().is_err());
    db.close().unwrap();
    drop(db);

    let db = Database::open(dir.path()).unwrap();
    let described = db
        .describe_import(&failed.import_arn)
        .send()
        .unwrap()
        .import_table_description;
    assert_eq!(described, failed);
    let listed = db.list_imports().send().unwrap().import_summary_list;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].import_status, ImportStatus::Failed);

    // A table that cannot be created refuses the import and records
    // nothing.
    table(&db, "Taken").send().unwrap();
    db.objects().create_bucket("inbox").send().unwrap();
    let refused = db
        .import_table()
        .s3_bucket_source("inbox", "")
        .table_creation_parameters(table(&db, "Taken"))
        .send();
    assert!(matches!(refused, Err(Error::ResourceInUse(_))));
    assert_eq!(
        db.list_imports().send().unwrap().import_summary_list.len(),
        1
    );
}

#[test]
fn an_export_cut_short_is_in_progress_then_failed_at_the_next_open() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    filled(&db, "Source", 3);
    let request = db
        .export_table_to_point_in_time("Source")
        .s3_bucket("exports")
        .on_progress(|_| panic!("the export stops here"));
    assert!(catch_unwind(AssertUnwindSafe(|| request.send())).is_err());
    let listed = db.list_exports().send().unwrap().export_summaries;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].export_status, ExportStatus::InProgress);
    let arn = listed[0].export_arn.clone();
    let during = db.describe_export(&arn).send().unwrap().export_description;
    assert_eq!(during.end_time, None);
    drop(db);

    let db = Database::open(dir.path()).unwrap();
    let after = db.describe_export(&arn).send().unwrap().export_description;
    assert_eq!(after.export_status, ExportStatus::Failed);
    assert_eq!(
        after.failure_code.as_deref(),
        Some(INTERRUPTED_FAILURE_CODE)
    );
    assert!(after.failure_message.is_some());
}

#[test]
fn client_tokens_replay_the_first_request_or_conflict() {
    let clock = ManualClock::at(UNIX_EPOCH + Duration::from_secs(START_SECS));
    let db = Database::memory_with(clocked(&clock)).unwrap();
    filled(&db, "Source", 5);
    let request = || {
        db.export_table_to_point_in_time("Source")
            .s3_bucket("exports")
            .client_token("daily")
    };
    let first = request().send().unwrap().export_description;
    db.put_item("Source")
        .item(item! {"pk" => "late", "sk" => 99})
        .send()
        .unwrap();
    clock.advance(Duration::from_secs(60));
    let again = request().send().unwrap().export_description;
    assert_eq!(again, first);
    assert_eq!(db.list_exports().send().unwrap().export_summaries.len(), 1);
    let conflict = request().s3_prefix("elsewhere").send();
    assert!(matches!(conflict, Err(Error::ExportConflict(_))));
    // Past the window the token is free again: a new export.
    clock.advance(CLIENT_TOKEN_WINDOW);
    let later = request().send().unwrap().export_description;
    assert_ne!(later.export_arn, first.export_arn);
    assert_eq!(later.item_count, 6);
    assert!(matches!(
        request().client_token("a$b").send(),
        Err(Error::Validation(_))
    ));

    let import = |token: &str, name: &str| {
        db.import_table()
            .s3_bucket_source("exports", data_prefix(&first))
            .input_compression_type(InputCompressionType::Gzip)
            .table_creation_parameters(table(&db, name))
            .client_token(token)
            .send()
    };
    let imported = import("load", "Copy").unwrap().import_table_description;
    // The same request again answers with the first import; the table it
    // created is not created twice.
    let replayed = import("load", "Copy").unwrap().import_table_description;
    assert_eq!(replayed.import_arn, imported.import_arn);
    assert_eq!(replayed.imported_item_count, 5);
    assert!(matches!(
        import("load", "Other"),
        Err(Error::ImportConflict(_))
    ));
    assert!(db.describe_table("Other").send().is_err());
    assert_eq!(
        db.list_imports().send().unwrap().import_summary_list.len(),
        1
    );
}

#[test]
fn an_export_to_a_missing_bucket_is_recorded_as_failed() {
    let db = Database::memory().unwrap();
    table(&db, "Source").send().unwrap();
    let failed = db
        .export_table_to_point_in_time("Source")
        .s3_bucket("no-such-bucket")
        .send()
        .unwrap()
        .export_description;
    assert_eq!(failed.export_status, ExportStatus::Failed);
    assert_eq!(failed.failure_code.as_deref(), Some("S3NoSuchBucket"));
    let described = db
        .describe_export(&failed.export_arn)
        .send()
        .unwrap()
        .export_description;
    assert_eq!(described, failed);
    let listed = db.list_exports().send().unwrap().export_summaries;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].export_status, ExportStatus::Failed);
}
