//! Table tags: given at creation or added later, removed, listed; kept in
//! the catalogue so they survive reopen; gone with the table; not restored
//! from a backup; bad requests fail with DynamoDB's errors and change
//! nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use nimbus::kv::{Error, Tag};
use nimbus::storage::Durability;
use nimbus::{Database, DatabaseOptions, ScalarType};

fn open(dir: &std::path::Path) -> Database {
    Database::open_with(
        dir,
        DatabaseOptions::default().durability(Durability::Buffered),
    )
    .unwrap()
}

fn create(db: &Database) -> String {
    db.create_table("Music")
        .partition_key("artist", ScalarType::S)
        .tag("team", "audio")
        .send()
        .unwrap()
        .table_description
        .table_arn
}

fn tags(db: &Database, arn: &str) -> Vec<(String, String)> {
    db.list_tags_of_resource(arn)
        .send()
        .unwrap()
        .into_iter()
        .map(|Tag { key, value }| (key, value))
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn tags_are_kept_with_the_table_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let arn = create(&db);
    db.tag_resource(&arn)
        .tag("env", "dev")
        .tag("team", "media")
        .send()
        .unwrap();
    db.untag_resource(&arn).tag_key("absent").send().unwrap();
    assert_eq!(tags(&db, &arn), pairs(&[("env", "dev"), ("team", "media")]));
    db.close().unwrap();
    drop(db);

    let db = open(dir.path());
    assert_eq!(tags(&db, &arn), pairs(&[("env", "dev"), ("team", "media")]));
    db.untag_resource(&arn).tag_key("team").send().unwrap();
    assert_eq!(tags(&db, &arn), pairs(&[("env", "dev")]));

    // Not restored from a backup, as in DynamoDB.
    let backup = db
        .create_backup("Music")
        .backup_name("nightly")
        .send()
        .unwrap();
    let restored = db
        .restore_table_from_backup("Music2")
        .backup_arn(&backup.backup_details.backup_arn)
        .send()
        .unwrap();
    assert!(tags(&db, &restored.table_description.table_arn).is_empty());

    // Gone with the table: a new table of the same name starts untagged.
    db.delete_table("Music").send().unwrap();
    assert!(matches!(
        db.list_tags_of_resource(&arn).send(),
        Err(Error::ResourceNotFound(_))
    ));
    db.create_table("Music")
        .partition_key("artist", ScalarType::S)
        .send()
        .unwrap();
    assert!(tags(&db, &arn).is_empty());
}

#[test]
fn bad_tag_requests_fail_and_change_nothing() {
    let db = Database::memory().unwrap();
    let arn = create(&db);
    let fifty = (0..49).fold(db.tag_resource(&arn), |r, n| r.tag(format!("k{n}"), "v"));
    fifty.send().unwrap();
    assert_eq!(tags(&db, &arn).len(), 50);

    let error = db
        .tag_resource(&arn)
        .tag("one-more", "v")
        .send()
        .unwrap_err();
    assert!(
        error.to_string().contains("exceeds the limit of 50"),
        "{error}"
    );
    let error = db
        .tag_resource(&arn)
        .tag("k".repeat(129), "v")
        .send()
        .unwrap_err();
    assert!(matches!(error, Error::Validation(_)), "{error}");
    assert!(error.to_string().contains("tags.member.key"), "{error}");
    assert!(matches!(
        db.tag_resource(&arn).send(),
        Err(Error::Validation(_))
    ));
    assert_eq!(tags(&db, &arn).len(), 50, "nothing changed");

    let missing = arn.replace("/Music", "/Missing");
    assert!(matches!(
        db.tag_resource(&missing).tag("a", "b").send(),
        Err(Error::ResourceNotFound(_))
    ));
    let error = db.list_tags_of_resource("not-an-arn").send().unwrap_err();
    assert!(error.to_string().contains("Invalid TableArn"), "{error}");
    let error = db
        .create_table("Other")
        .partition_key("id", ScalarType::S)
        .tag("v", "x".repeat(257))
        .send()
        .unwrap_err();
    assert!(error.to_string().contains("tags.member.value"), "{error}");
    assert!(db.describe_table("Other").send().is_err(), "not created");
}
