//! The S3 versioning state machine through the public API: puts and deletes
//! in each state, the null version, delete markers, reads of markers, and
//! the version listing order.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on purpose

use nimbus::Database;
use nimbus::objects::{BucketVersioningStatus, Error, Objects};

fn body(s3: &Objects<'_>, bucket: &str, key: &str) -> Vec<u8> {
    s3.get_object(bucket, key)
        .send()
        .unwrap()
        .body
        .collect()
        .unwrap()
        .to_vec()
}

fn body_of(s3: &Objects<'_>, bucket: &str, key: &str, version: &str) -> Vec<u8> {
    s3.get_object(bucket, key)
        .version_id(version)
        .send()
        .unwrap()
        .body
        .collect()
        .unwrap()
        .to_vec()
}

/// (version id, is delete marker, is latest) of every version of the bucket.
fn versions(s3: &Objects<'_>, bucket: &str) -> Vec<(String, String, bool, bool)> {
    s3.list_object_versions(bucket)
        .send()
        .unwrap()
        .entries
        .into_iter()
        .map(|e| (e.key, e.version_id, e.delete_marker, e.is_latest))
        .collect()
}

#[test]
fn unversioned_bucket_overwrites_the_null_version() {
    let db = Database::memory().unwrap();
    let s3 = db.objects();
    s3.create_bucket("b-unversioned").send().unwrap();
    assert_eq!(
        s3.get_bucket_versioning("b-unversioned")
            .send()
            .unwrap()
            .status,
        None
    );
    let first = s3
        .put_object("b-unversioned", "k")
        .body("one")
        .send()
        .unwrap();
    assert_eq!(first.version_id, None);
    s3.put_object("b-unversioned", "k")
        .body("two")
        .send()
        .unwrap();
    assert_eq!(body(&s3, "b-unversioned", "k"), b"two");
    // Listed with version id "null", exactly once.
    assert_eq!(
        versions(&s3, "b-unversioned"),
        vec![("k".into(), "null".into(), false, true)]
    );
    let deleted = s3.delete_object("b-unversioned", "k").send().unwrap();
    assert!(!deleted.delete_marker);
    assert!(versions(&s3, "b-unversioned").is_empty());
    // Deleting a missing key succeeds.
    s3.delete_object("b-unversioned", "missing").send().unwrap();
}

#[test]
fn enabled_bucket_keeps_every_version_and_the_old_null_one() {
    let db = Database::memory().unwrap();
    let s3 = db.objects();
    s3.create_bucket("vbk").send().unwrap();
    s3.put_object("vbk", "k").body("null-body").send().unwrap();
    s3.put_bucket_versioning("vbk")
        .status(BucketVersioningStatus::Enabled)
        .send()
        .unwrap();
    let v1 = s3
        .put_object("vbk", "k")
        .body("v1")
        .send()
        .unwrap()
        .version_id
        .unwrap();
    let v2 = s3
        .put_object("vbk", "k")
        .body("v2")
        .send()
        .unwrap()
        .version_id
        .unwrap();
    assert_ne!(v1, v2);
    assert_ne!(v1, "null");
    assert_eq!(body(&s3, "vbk", "k"), b"v2");
    assert_eq!(body_of(&s3, "vbk", "k", &v1), b"v1");
    assert_eq!(body_of(&s3, "vbk", "k", "null"), b"null-body");
    assert_eq!(
        versions(&s3, "vbk"),
        vec![
            ("k".into(), v2.clone(), false, true),
            ("k".into(), v1.clone(), false, false),
            ("k".into(), "null".into(), false, false),
        ]
    );

    // DELETE without id: a marker; GET answers NoSuchKey with the flag.
    let marker = s3.delete_object("vbk", "k").send().unwrap();
    assert!(marker.delete_marker);
    let marker_id = marker.version_id.unwrap();
    match s3.get_object("vbk", "k").send() {
        Err(Error::NoSuchKey {
            delete_marker: true,
            version_id: Some(id),
            ..
        }) => assert_eq!(id, marker_id),
        other => panic!("expected NoSuchKey with marker, got {other:?}"),
    }
    assert!(matches!(
        s3.head_object("vbk", "k").send(),
        Err(Error::NoSuchKey {
            delete_marker: true,
            ..
        })
    ));
    // Naming the marker by id: MethodNotAllowed.
    assert!(matches!(
        s3.get_object("vbk", "k").version_id(&marker_id).send(),
        Err(Error::MethodNotAllowed { .. })
    ));
    assert!(matches!(
        s3.head_object("vbk", "k").version_id(&marker_id).send(),
        Err(Error::MethodNotAllowed { .. })
    ));
    // Older versions stay readable by id.
    assert_eq!(body_of(&s3, "vbk", "k", &v2), b"v2");

    // Deleting the marker by id undeletes.
    let undelete = s3
        .delete_object("vbk", "k")
        .version_id(&marker_id)
        .send()
        .unwrap();
    assert!(undelete.delete_marker);
    assert_eq!(body(&s3, "vbk", "k"), b"v2");

    // Deleting a version by id removes it for good.
    s3.delete_object("vbk", "k").version_id(&v2).send().unwrap();
    assert_eq!(body(&s3, "vbk", "k"), b"v1");
    assert!(matches!(
        s3.get_object("vbk", "k").version_id(&v2).send(),
        Err(Error::NoSuchVersion { .. })
    ));
    // A malformed version id is an argument error.
    assert!(matches!(
        s3.get_object("vbk", "k").version_id("nope").send(),
        Err(Error::InvalidArgument(_))
    ));
    // A DELETE on a key that never existed still creates a marker.
    let ghost = s3.delete_object("vbk", "ghost").send().unwrap();
    assert!(ghost.delete_marker);
}

#[test]
fn suspended_bucket_writes_and_deletes_the_null_version() {
    let db = Database::memory().unwrap();
    let s3 = db.objects();
    s3.create_bucket("sbk").send().unwrap();
    // Suspending a never-versioned bucket is legal.
    s3.put_bucket_versioning("sbk")
        .status(BucketVersioningStatus::Suspended)
        .send()
        .unwrap();
    assert_eq!(
        s3.get_bucket_versioning("sbk").send().unwrap().status,
        Some(BucketVersioningStatus::Suspended)
    );
    s3.put_bucket_versioning("sbk")
        .status(BucketVersioningStatus::Enabled)
        .send()
        .unwrap();
    let v1 = s3
        .put_object("sbk", "k")
        .body("v1")
        .send()
        .unwrap()
        .version_id
        .unwrap();
    s3.put_bucket_versioning("sbk")
        .status(BucketVersioningStatus::Suspended)
        .send()
        .unwrap();
    let put = s3.put_object("sbk", "k").body("n1").send().unwrap();
    assert_eq!(put.version_id.as_deref(), Some("null"));
    // A second suspended put replaces the null version, keeps v1.
    s3.put_object("sbk", "k").body("n2").send().unwrap();
    assert_eq!(
        versions(&s3, "sbk"),
        vec![
            ("k".into(), "null".into(), false, true),
            ("k".into(), v1.clone(), false, false),
        ]
    );
    assert_eq!(body(&s3, "sbk", "k"), b"n2");

    // DELETE: removes the null version and adds a null delete marker.
    let deleted = s3.delete_object("sbk", "k").send().unwrap();
    assert!(deleted.delete_marker);
    assert_eq!(deleted.version_id.as_deref(), Some("null"));
    assert_eq!(
        versions(&s3, "sbk"),
        vec![
            ("k".into(), "null".into(), true, true),
            ("k".into(), v1.clone(), false, false),
        ]
    );

    // Re-enabled: the null marker stays where it is in the order.
    s3.put_bucket_versioning("sbk")
        .status(BucketVersioningStatus::Enabled)
        .send()
        .unwrap();
    let v3 = s3
        .put_object("sbk", "k")
        .body("v3")
        .send()
        .unwrap()
        .version_id
        .unwrap();
    assert_eq!(
        versions(&s3, "sbk"),
        vec![
            ("k".into(), v3, false, true),
            ("k".into(), "null".into(), true, false),
            ("k".into(), v1, false, false),
        ]
    );
}

#[test]
fn a_put_in_a_suspended_bucket_moves_the_null_version_to_the_top() {
    let db = Database::memory().unwrap();
    let s3 = db.objects();
    s3.create_bucket("order").send().unwrap();
    s3.put_object("order", "k").body("null-old").send().unwrap();
    s3.put_bucket_versioning("order")
        .status(BucketVersioningStatus::Enabled)
        .send()
        .unwrap();
    let v1 = s3
        .put_object("order", "k")
        .body("v1")
        .send()
        .unwrap()
        .version_id
        .unwrap();
    s3.put_bucket_versioning("order")
        .status(BucketVersioningStatus::Suspended)
        .send()
        .unwrap();
    s3.put_object("order", "k").body("null-new").send().unwrap();
    let listed = versions(&s3, "order");
    assert_eq!(
        listed,
        vec![
            ("k".into(), "null".into(), false, true),
            ("k".into(), v1, false, false),
        ]
    );
    assert_eq!(body_of(&s3, "order", "k", "null"), b"null-new");
}

#[test]
fn versions_list_by_key_then_newest_first_and_page_mid_key() {
    let db = Database::memory().unwrap();
    let s3 = db.objects();
    s3.create_bucket("pages").send().unwrap();
    s3.put_bucket_versioning("pages")
        .status(BucketVersioningStatus::Enabled)
        .send()
        .unwrap();
    let mut expected = Vec::new();
    for key in ["b", "a", "c"] {
        let mut ids = Vec::new();
        for round in 0..3 {
            if round == 1 {
                ids.push((
                    s3.delete_object("pages", key)
                        .send()
                        .unwrap()
                        .version_id
                        .unwrap(),
                    true,
                ));
            } else {
                let id = s3
                    .put_object("pages", key)
                    .body(format!("{key}{round}"))
                    .send()
                    .unwrap();
                ids.push((id.version_id.unwrap(), false));
            }
        }
        ids.reverse();
        for (index, (id, marker)) in ids.into_iter().enumerate() {
            expected.push((key.to_owned(), id, marker, index == 0));
        }
    }
    expected.sort_by(|a, b| a.0.cmp(&b.0).then(std::cmp::Ordering::Equal));
    // Sorting by key only keeps each key's newest-first order (stable sort).
    assert_eq!(versions(&s3, "pages"), expected);

    // Page two at a time with key and version-id markers.
    let mut paged = Vec::new();
    let mut key_marker: Option<String> = None;
    let mut version_marker: Option<String> = None;
    loop {
        let mut request = s3.list_object_versions("pages").max_keys(2);
        if let Some(k) = &key_marker {
            request = request.key_marker(k);
        }
        if let Some(v) = &version_marker {
            request = request.version_id_marker(v);
        }
        let page = request.send().unwrap();
        assert!(page.entries.len() <= 2);
        paged.extend(page.entries.iter().map(|e| {
            (
                e.key.clone(),
                e.version_id.clone(),
                e.delete_marker,
                e.is_latest,
            )
        }));
        if !page.is_truncated {
            break;
        }
        key_marker = page.next_key_marker;
        version_marker = page.next_version_id_marker;
    }
    assert_eq!(paged, expected);
    let page = s3.list_object_versions("pages").send().unwrap();
    assert_eq!(page.versions().count(), 6);
    assert_eq!(page.delete_markers().count(), 3);
}

#[test]
fn versioning_never_returns_to_unversioned_and_lock_forbids_suspending() {
    let db = Database::memory().unwrap();
    let s3 = db.objects();
    s3.create_bucket("locked")
        .object_lock_enabled_for_bucket(true)
        .send()
        .unwrap();
    assert_eq!(
        s3.get_bucket_versioning("locked").send().unwrap().status,
        Some(BucketVersioningStatus::Enabled)
    );
    assert!(matches!(
        s3.put_bucket_versioning("locked")
            .status(BucketVersioningStatus::Suspended)
            .send(),
        Err(Error::InvalidBucketState { .. })
    ));
    assert!(matches!(
        s3.put_bucket_versioning("missing-bucket")
            .status(BucketVersioningStatus::Enabled)
            .send(),
        Err(Error::NoSuchBucket { .. })
    ));
}
