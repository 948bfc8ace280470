//! Lifecycle in compressed time: a `ManualClock` moves by days and the
//! runner is called; expiration, noncurrent expiration counted from the
//! successor with midnight rounding, newer-noncurrent-versions, expired
//! delete markers, aborted uploads, transitions and archive restores.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on purpose

use std::time::{Duration, UNIX_EPOCH};

use nimbus::objects::{
    AbortIncompleteMultipartUpload, BucketVersioningStatus, Error, LifecycleExpiration,
    LifecycleFilter, LifecycleRule, NoncurrentVersionExpiration, ObjectStoreOptions, Objects,
    StorageClass, Transition,
};
use nimbus::storage::sim::SimRng;
use nimbus::time::ManualClock;
use nimbus::{Database, DatabaseOptions};

const DAY: Duration = Duration::from_secs(86_400);

/// Day 19,700 after the epoch at 10:30 UTC.
fn morning() -> ManualClock {
    ManualClock::at(UNIX_EPOCH + 19_700 * DAY + Duration::from_secs(10 * 3600 + 1800))
}

fn setup(versioned: bool) -> (Database, ManualClock) {
    let clock = morning();
    let db = Database::memory_with(DatabaseOptions::default().clock(clock.clone())).unwrap();
    let s3 = db.objects();
    s3.set_options(ObjectStoreOptions {
        chunk_bytes_min: 4096,
        chunk_bytes_avg: 16384,
        chunk_bytes_max: 65536,
        ..ObjectStoreOptions::default()
    })
    .unwrap();
    s3.create_bucket("life").send().unwrap();
    if versioned {
        s3.put_bucket_versioning("life")
            .status(BucketVersioningStatus::Enabled)
            .send()
            .unwrap();
    }
    (db, clock)
}

fn version_count(s3: &Objects<'_>) -> usize {
    s3.list_object_versions("life")
        .send()
        .unwrap()
        .entries
        .len()
}

#[test]
fn expiration_rounds_up_to_midnight_and_adds_a_marker_when_versioned() {
    let (db, clock) = setup(true);
    let s3 = db.objects();
    s3.put_bucket_lifecycle_configuration("life")
        .rule(LifecycleRule {
            expiration: Some(LifecycleExpiration::Days(2)),
            ..LifecycleRule::new("expire-logs", LifecycleFilter::prefix("logs/"))
        })
        .send()
        .unwrap();
    s3.put_object("life", "logs/a").body("a").send().unwrap();
    s3.put_object("life", "keep/b").body("b").send().unwrap();
    // Created at 10:30 on day D: due at midnight starting D+3.
    clock.advance(2 * DAY);
    assert_eq!(s3.run_lifecycle().unwrap().current_versions_expired, 0);
    clock.advance(DAY / 2); // 22:30 on D+2
    assert_eq!(s3.run_lifecycle().unwrap().current_versions_expired, 0);
    clock.advance(DAY / 4); // 04:30 on D+3
    assert_eq!(s3.run_lifecycle().unwrap().current_versions_expired, 1);
    assert!(matches!(
        s3.get_object("life", "logs/a").send(),
        Err(Error::NoSuchKey {
            delete_marker: true,
            ..
        })
    ));
    assert!(s3.get_object("life", "keep/b").send().is_ok());
    // Running again changes nothing: the current version is a marker.
    assert_eq!(s3.run_lifecycle().unwrap(), Default::default());
    assert_eq!(version_count(&s3), 3);
}

#[test]
fn unversioned_expiration_deletes() {
    let (db, clock) = setup(false);
    let s3 = db.objects();
    s3.put_bucket_lifecycle_configuration("life")
        .rule(LifecycleRule {
            expiration: Some(LifecycleExpiration::Days(1)),
            ..LifecycleRule::new("all", LifecycleFilter::default())
        })
        .send()
        .unwrap();
    s3.put_object("life", "x").body("x").send().unwrap();
    clock.advance(2 * DAY);
    s3.run_lifecycle().unwrap();
    assert_eq!(version_count(&s3), 0);
}

#[test]
fn noncurrent_versions_expire_counted_from_their_successor_keeping_the_newest() {
    let (db, clock) = setup(true);
    let s3 = db.objects();
    s3.put_bucket_lifecycle_configuration("life")
        .rule(LifecycleRule {
            noncurrent_version_expiration: Some(NoncurrentVersionExpiration {
                noncurrent_days: 3,
                newer_noncurrent_versions: Some(1),
            }),
            expiration: Some(LifecycleExpiration::ExpiredObjectDeleteMarker),
            ..LifecycleRule::new("noncurrent", LifecycleFilter::default())
        })
        .send()
        .unwrap();
    let v1 = s3
        .put_object("life", "k")
        .body("1")
        .send()
        .unwrap()
        .version_id
        .unwrap();
    clock.advance(10 * DAY);
    let v2 = s3
        .put_object("life", "k")
        .body("2")
        .send()
        .unwrap()
        .version_id
        .unwrap();
    let v3 = s3
        .put_object("life", "k")
        .body("3")
        .send()
        .unwrap()
        .version_id
        .unwrap();
    // v1 became noncurrent when v2 was written (10:30 on D+10): due D+14.
    clock.advance(3 * DAY);
    assert_eq!(s3.run_lifecycle().unwrap().noncurrent_versions_expired, 0);
    clock.advance(DAY);
    // v2 (newest noncurrent) is kept by newer_noncurrent_versions = 1.
    assert_eq!(s3.run_lifecycle().unwrap().noncurrent_versions_expired, 1);
    let ids: Vec<String> = s3
        .list_object_versions("life")
        .send()
        .unwrap()
        .entries
        .into_iter()
        .map(|e| e.version_id)
        .collect();
    assert_eq!(ids, [v3.clone(), v2.clone()]);
    assert!(!ids.contains(&v1));

    // A delete puts a marker on top: v3 becomes the newest noncurrent
    // version (kept), v2 the next (expired).
    s3.delete_object("life", "k").send().unwrap();
    clock.advance(30 * DAY);
    let report = s3.run_lifecycle().unwrap();
    assert_eq!(report.noncurrent_versions_expired, 1, "{report:?}");
    let report = s3.run_lifecycle().unwrap();
    assert_eq!(report.noncurrent_versions_expired, 0, "{report:?}");
    // v3 is kept as the one newer noncurrent version behind the marker.
    assert_eq!(version_count(&s3), 2);
}

#[test]
fn lone_delete_markers_are_removed() {
    let (db, clock) = setup(true);
    let s3 = db.objects();
    s3.put_bucket_lifecycle_configuration("life")
        .rule(LifecycleRule {
            noncurrent_version_expiration: Some(NoncurrentVersionExpiration {
                noncurrent_days: 1,
                newer_noncurrent_versions: None,
            }),
            expiration: Some(LifecycleExpiration::ExpiredObjectDeleteMarker),
            ..LifecycleRule::new("markers", LifecycleFilter::default())
        })
        .send()
        .unwrap();
    s3.put_object("life", "k").body("1").send().unwrap();
    s3.delete_object("life", "k").send().unwrap();
    clock.advance(3 * DAY);
    let first = s3.run_lifecycle().unwrap();
    assert_eq!(first.noncurrent_versions_expired, 1);
    let second = s3.run_lifecycle().unwrap();
    assert_eq!(second.delete_markers_removed, 1);
    assert_eq!(version_count(&s3), 0);
}

#[test]
fn incomplete_uploads_are_aborted() {
    let (db, clock) = setup(false);
    let s3 = db.objects();
    s3.put_bucket_lifecycle_configuration("life")
        .rule(LifecycleRule {
            abort_incomplete_multipart_upload: Some(AbortIncompleteMultipartUpload {
                days_after_initiation: 7,
            }),
            ..LifecycleRule::new("mpu", LifecycleFilter::default())
        })
        .send()
        .unwrap();
    let upload = s3
        .create_multipart_upload("life", "big")
        .send()
        .unwrap()
        .upload_id;
    s3.upload_part("life", "big")
        .upload_id(&upload)
        .part_number(1)
        .body(vec![1u8; 10_000])
        .send()
        .unwrap();
    clock.advance(7 * DAY);
    assert_eq!(s3.run_lifecycle().unwrap().uploads_aborted, 0);
    clock.advance(DAY);
    assert_eq!(s3.run_lifecycle().unwrap().uploads_aborted, 1);
    assert!(
        s3.list_multipart_uploads("life")
            .send()
            .unwrap()
            .uploads
            .is_empty()
    );
    assert!(s3.verify().unwrap().is_consistent());
}

#[test]
fn transitions_move_chunks_to_cold_packs_and_archives_need_a_restore() {
    let (db, clock) = setup(false);
    let s3 = db.objects();
    s3.put_bucket_lifecycle_configuration("life")
        .rule(LifecycleRule {
            transitions: vec![
                Transition::after_days(30, StorageClass::StandardIa),
                Transition::after_days(60, StorageClass::Glacier),
            ],
            ..LifecycleRule::new("tiers", LifecycleFilter::default())
        })
        .send()
        .unwrap();
    let mut big = vec![0u8; 300_000];
    SimRng::new(1).fill(&mut big[..150_000]);
    s3.put_object("life", "big")
        .body(big.clone())
        .send()
        .unwrap();
    s3.put_object("life", "small")
        .body(vec![7u8; 1000])
        .send()
        .unwrap();
    clock.advance(31 * DAY);
    assert_eq!(
        s3.run_lifecycle().unwrap().transitions,
        1,
        "small objects stay"
    );
    let head = s3.head_object("life", "big").send().unwrap();
    assert_eq!(head.storage_class, StorageClass::StandardIa);
    assert_eq!(
        s3.get_object("life", "big")
            .send()
            .unwrap()
            .body
            .collect()
            .unwrap(),
        big
    );
    clock.advance(30 * DAY);
    assert_eq!(s3.run_lifecycle().unwrap().transitions, 1);
    assert!(matches!(
        s3.get_object("life", "big").send(),
        Err(Error::InvalidObjectState { .. })
    ));
    assert_eq!(
        s3.head_object("life", "big").send().unwrap().storage_class,
        StorageClass::Glacier
    );
    let until = s3.restore_object("life", "big").days(2).send().unwrap();
    assert_eq!(
        s3.get_object("life", "big")
            .send()
            .unwrap()
            .body
            .collect()
            .unwrap(),
        big
    );
    assert_eq!(
        s3.head_object("life", "big")
            .send()
            .unwrap()
            .restore_expiry_date,
        Some(until)
    );
    clock.advance(3 * DAY);
    assert!(matches!(
        s3.get_object("life", "big").send(),
        Err(Error::InvalidObjectState { .. })
    ));
    assert!(matches!(
        s3.restore_object("life", "small").send(),
        Err(Error::InvalidObjectState { .. })
    ));
    // The hot chunks were released, and the cold copy is compressed (the
    // zero half of the body shrinks).
    clock.advance(DAY);
    s3.gc().unwrap();
    let report = s3.verify().unwrap();
    assert!(report.is_consistent(), "{report:?}");
    assert!(report.live_bytes < 250_000, "{report:?}");
}

#[test]
fn expiration_wins_over_transition_and_locked_versions_stay() {
    let (db, clock) = setup(true);
    let s3 = db.objects();
    s3.put_bucket_lifecycle_configuration("life")
        .rule(LifecycleRule {
            expiration: Some(LifecycleExpiration::Days(40)),
            transitions: vec![Transition::after_days(40, StorageClass::Glacier)],
            noncurrent_version_expiration: Some(NoncurrentVersionExpiration {
                noncurrent_days: 1,
                newer_noncurrent_versions: None,
            }),
            ..LifecycleRule::new("both", LifecycleFilter::default())
        })
        .send()
        .unwrap();
    s3.put_object("life", "k")
        .body(vec![1u8; 200_000])
        .send()
        .unwrap();
    clock.advance(45 * DAY);
    let report = s3.run_lifecycle().unwrap();
    assert_eq!(
        (report.current_versions_expired, report.transitions),
        (1, 0)
    );

    // A version under legal hold is not removed by noncurrent expiration.
    s3.put_object_lock_configuration("life").send().unwrap();
    let held = s3
        .put_object("life", "held")
        .body("x")
        .object_lock_legal_hold(true)
        .send()
        .unwrap();
    s3.put_object("life", "held").body("y").send().unwrap();
    clock.advance(5 * DAY);
    s3.run_lifecycle().unwrap();
    let versions = s3
        .list_object_versions("life")
        .prefix("held")
        .send()
        .unwrap();
    assert!(
        versions
            .entries
            .iter()
            .any(|e| Some(&e.version_id) == held.version_id.as_ref())
    );
}

#[test]
fn invalid_configurations_are_refused() {
    let (db, _clock) = setup(false);
    let s3 = db.objects();
    assert!(matches!(
        s3.put_bucket_lifecycle_configuration("life")
            .rule(LifecycleRule {
                transitions: vec![Transition::after_days(10, StorageClass::StandardIa)],
                ..LifecycleRule::new("ia", LifecycleFilter::default())
            })
            .send(),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        s3.get_bucket_lifecycle_configuration("life").send(),
        Err(Error::NoSuchConfiguration { .. })
    ));
    let rule = LifecycleRule {
        expiration: Some(LifecycleExpiration::Days(1)),
        ..LifecycleRule::new("ok", LifecycleFilter::default())
    };
    s3.put_bucket_lifecycle_configuration("life")
        .rule(rule.clone())
        .send()
        .unwrap();
    assert_eq!(
        s3.get_bucket_lifecycle_configuration("life")
            .send()
            .unwrap(),
        vec![rule]
    );
    s3.delete_bucket_lifecycle("life").unwrap();
    assert!(
        s3.get_bucket_lifecycle_configuration("life")
            .send()
            .is_err()
    );
}

#[test]
fn noncurrent_versions_transition_after_their_days() {
    let (db, clock) = setup(true);
    let s3 = db.objects();
    s3.put_bucket_lifecycle_configuration("life")
        .rule(LifecycleRule {
            noncurrent_version_transitions: vec![nimbus::objects::NoncurrentVersionTransition {
                noncurrent_days: 30,
                storage_class: StorageClass::OnezoneIa,
                newer_noncurrent_versions: None,
            }],
            ..LifecycleRule::new("old-to-ia", LifecycleFilter::default())
        })
        .send()
        .unwrap();
    let mut data = vec![0u8; 200_000];
    SimRng::new(4).fill(&mut data);
    let old = s3
        .put_object("life", "k")
        .body(data.clone())
        .send()
        .unwrap()
        .version_id
        .unwrap();
    s3.put_object("life", "k")
        .body(vec![1u8; 200_000])
        .send()
        .unwrap();
    clock.advance(29 * DAY);
    assert_eq!(s3.run_lifecycle().unwrap().transitions, 0);
    clock.advance(2 * DAY);
    assert_eq!(s3.run_lifecycle().unwrap().transitions, 1);
    let head = s3.head_object("life", "k").version_id(&old).send().unwrap();
    assert_eq!(head.storage_class, StorageClass::OnezoneIa);
    assert_eq!(
        s3.head_object("life", "k").send().unwrap().storage_class,
        StorageClass::Standard
    );
    assert_eq!(
        s3.get_object("life", "k")
            .version_id(&old)
            .send()
            .unwrap()
            .body
            .collect()
            .unwrap(),
        data
    );
}
