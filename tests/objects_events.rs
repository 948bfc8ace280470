//! Event notifications: exactly one outbox event per committed change,
//! none for failed requests, prefix/suffix filters, durability across
//! power loss, and handler delivery that retries failures.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on purpose

use std::sync::{Arc, Mutex};

use nimbus::objects::{BucketVersioningStatus, CompletedPart, EventType, ObjectStoreOptions};
use nimbus::storage::sim::SimFileSystem;
use nimbus::{Database, DatabaseOptions};

fn kinds(events: &[nimbus::objects::Event]) -> Vec<(EventType, String)> {
    events
        .iter()
        .map(|e| (e.event_type, e.key.clone()))
        .collect()
}

#[test]
fn each_committed_change_enqueues_exactly_one_event() {
    let db = Database::memory().unwrap();
    let s3 = db.objects();
    s3.set_options(ObjectStoreOptions {
        min_part_bytes: 1,
        ..ObjectStoreOptions::default()
    })
    .unwrap();
    s3.create_bucket("events").send().unwrap();
    s3.put_bucket_versioning("events")
        .status(BucketVersioningStatus::Enabled)
        .send()
        .unwrap();
    s3.create_subscription("all")
        .bucket("events")
        .event_pattern("s3:ObjectCreated:*")
        .event_pattern("s3:ObjectRemoved:*")
        .send()
        .unwrap();
    s3.create_subscription("photos")
        .bucket("events")
        .event(EventType::ObjectCreatedPut)
        .prefix("photos/")
        .suffix(".jpg")
        .send()
        .unwrap();

    let put = s3
        .put_object("events", "photos/cat.jpg")
        .body("meow")
        .send()
        .unwrap();
    s3.put_object("events", "photos/cat.png")
        .body("png")
        .send()
        .unwrap();
    // A failed conditional put changes nothing and enqueues nothing.
    assert!(
        s3.put_object("events", "photos/cat.jpg")
            .if_none_match("*")
            .send()
            .is_err()
    );
    s3.copy_object("events", "copy")
        .copy_source("events", "photos/cat.jpg")
        .send()
        .unwrap();
    let upload = s3
        .create_multipart_upload("events", "mpu")
        .send()
        .unwrap()
        .upload_id;
    let part = s3
        .upload_part("events", "mpu")
        .upload_id(&upload)
        .part_number(1)
        .body("p")
        .send()
        .unwrap();
    s3.complete_multipart_upload("events", "mpu")
        .upload_id(&upload)
        .part(CompletedPart::new(1, part.e_tag))
        .send()
        .unwrap();
    let marker = s3.delete_object("events", "copy").send().unwrap();
    s3.delete_object("events", "copy")
        .version_id(marker.version_id.unwrap())
        .send()
        .unwrap();

    let all = s3.receive_events("all", 100).unwrap();
    assert_eq!(
        kinds(&all),
        vec![
            (EventType::ObjectCreatedPut, "photos/cat.jpg".into()),
            (EventType::ObjectCreatedPut, "photos/cat.png".into()),
            (EventType::ObjectCreatedCopy, "copy".into()),
            (
                EventType::ObjectCreatedCompleteMultipartUpload,
                "mpu".into()
            ),
            (EventType::ObjectRemovedDeleteMarkerCreated, "copy".into()),
            (EventType::ObjectRemovedDelete, "copy".into()),
        ]
    );
    assert_eq!(all[0].e_tag.as_deref(), Some(put.e_tag.as_str()));
    assert_eq!(all[0].version_id, put.version_id);
    assert!(all.windows(2).all(|w| w[0].sequence < w[1].sequence));
    let photos = s3.receive_events("photos", 100).unwrap();
    assert_eq!(
        kinds(&photos),
        vec![(EventType::ObjectCreatedPut, "photos/cat.jpg".into())]
    );

    // Receiving does not remove; deleting by sequence does.
    assert_eq!(s3.receive_events("all", 2).unwrap().len(), 2);
    let first_two: Vec<u64> = all[..2].iter().map(|e| e.sequence).collect();
    s3.delete_events("all", &first_two).unwrap();
    assert_eq!(s3.receive_events("all", 100).unwrap().len(), 4);
    s3.delete_subscription("photos").unwrap();
    assert!(s3.receive_events("photos", 1).is_err());
}

#[test]
fn the_outbox_survives_power_loss_and_handlers_retry_failures() {
    let fs = SimFileSystem::new();
    let open = || {
        Database::open_on(
            Arc::new(fs.session()),
            "/db",
            DatabaseOptions::default().background_threads(false),
        )
        .unwrap()
    };
    let db = open();
    let s3 = db.objects();
    s3.create_bucket("durable").send().unwrap();
    s3.create_subscription("q")
        .bucket("durable")
        .event_pattern("s3:*")
        .send()
        .unwrap();
    for i in 0..5 {
        s3.put_object("durable", format!("k{i}"))
            .body("v")
            .send()
            .unwrap();
    }
    fs.crash(3);
    drop(db);
    let db = open();
    let s3 = db.objects();
    let pending = s3.receive_events("q", 100).unwrap();
    assert_eq!(pending.len(), 5);
    // New events after the reboot get higher sequence numbers.
    s3.put_object("durable", "k5").body("v").send().unwrap();
    let all = s3.receive_events("q", 100).unwrap();
    assert!(all[5].sequence > all[4].sequence);

    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let fail_on = Arc::new(Mutex::new(Some("k3".to_owned())));
    {
        let seen = Arc::clone(&seen);
        let fail_on = Arc::clone(&fail_on);
        s3.set_event_handler("q", move |event| {
            if fail_on.lock().unwrap().as_deref() == Some(event.key.as_str()) {
                return Err("downstream unavailable".into());
            }
            seen.lock().unwrap().push(event.key.clone());
            Ok(())
        })
        .unwrap();
    }
    assert_eq!(s3.deliver_events().unwrap(), 3);
    assert_eq!(s3.receive_events("q", 100).unwrap().len(), 3);
    *fail_on.lock().unwrap() = None;
    assert_eq!(s3.deliver_events().unwrap(), 3);
    assert_eq!(*seen.lock().unwrap(), ["k0", "k1", "k2", "k3", "k4", "k5"]);
    assert!(s3.receive_events("q", 100).unwrap().is_empty());
    // Deleting the bucket drops its subscriptions.
    for i in 0..6 {
        s3.delete_object("durable", format!("k{i}")).send().unwrap();
    }
    s3.delete_bucket("durable").send().unwrap();
    assert!(s3.receive_events("q", 1).is_err());
}

#[test]
fn subscriptions_are_validated() {
    let db = Database::memory().unwrap();
    let s3 = db.objects();
    s3.create_bucket("valid").send().unwrap();
    assert!(s3.create_subscription("x").bucket("valid").send().is_err());
    assert!(
        s3.create_subscription("x")
            .event_pattern("s3:*")
            .send()
            .is_err()
    );
    assert!(
        s3.create_subscription("x")
            .bucket("valid")
            .event_pattern("s3:Nothing:*")
            .send()
            .is_err()
    );
    assert!(
        s3.create_subscription("x")
            .bucket("missing")
            .event_pattern("s3:*")
            .send()
            .is_err()
    );
    assert!(
        s3.create_subscription("")
            .bucket("valid")
            .event_pattern("s3:*")
            .send()
            .is_err()
    );
}
