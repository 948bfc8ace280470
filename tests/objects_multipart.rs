//! Multipart upload: validation errors, non-contiguous and out-of-order
//! parts, re-uploads, the `-N` ETags (MD5 and BLAKE3), aborts, listing,
//! and assembly that stores no byte twice.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on purpose

use md5::{Digest, Md5};
use nimbus::Database;
use nimbus::objects::{CompletedPart, Error, ObjectStoreOptions, Objects};
use nimbus::storage::sim::SimRng;

fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut data = vec![0u8; len];
    SimRng::new(seed).fill(&mut data);
    data
}

const MIN_PART: u64 = 4096;

fn store(db: &Database) -> Objects<'_> {
    let s3 = db.objects();
    s3.set_options(ObjectStoreOptions {
        min_part_bytes: MIN_PART,
        chunk_bytes_min: 1024,
        chunk_bytes_avg: 4096,
        chunk_bytes_max: 16384,
        ..ObjectStoreOptions::default()
    })
    .unwrap();
    s3
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn parts_in_any_order_complete_into_one_object_with_an_md5_dash_n_etag() {
    let db = Database::memory().unwrap();
    let s3 = store(&db);
    s3.create_bucket("mpu").md5_e_tags(true).send().unwrap();
    let upload = s3
        .create_multipart_upload("mpu", "big")
        .content_type("text/plain")
        .metadata("origin", "test")
        .send()
        .unwrap();
    let parts = [
        (7, random_bytes(5000, 7)),
        (1, random_bytes(6000, 1)),
        (3, random_bytes(10, 3)),
    ];
    let mut etags = std::collections::BTreeMap::new();
    for (number, data) in &parts {
        let out = s3
            .upload_part("mpu", "big")
            .upload_id(&upload.upload_id)
            .part_number(*number)
            .body(data.clone())
            .send()
            .unwrap();
        assert_eq!(out.e_tag, hex(&Md5::digest(data)));
        etags.insert(*number, out.e_tag);
    }
    // Re-uploading part 3 replaces it.
    let part3 = random_bytes(4500, 33);
    etags.insert(
        3,
        s3.upload_part("mpu", "big")
            .upload_id(&upload.upload_id)
            .part_number(3)
            .body(part3.clone())
            .send()
            .unwrap()
            .e_tag,
    );
    let listed = s3
        .list_parts("mpu", "big")
        .upload_id(&upload.upload_id)
        .send()
        .unwrap();
    let numbers: Vec<u32> = listed.parts.iter().map(|p| p.part_number).collect();
    assert_eq!(numbers, [1, 3, 7]);
    assert_eq!(listed.parts[1].size, 4500);

    let done = s3
        .complete_multipart_upload("mpu", "big")
        .upload_id(&upload.upload_id)
        .parts(etags.iter().map(|(n, e)| CompletedPart::new(*n, e.clone())))
        .send()
        .unwrap();
    let mut md5s = Md5::new();
    for data in [&parts[1].1, &part3, &parts[0].1] {
        md5s.update(Md5::digest(data));
    }
    assert_eq!(done.e_tag, format!("{}-3", hex(&md5s.finalize())));
    let mut expected = parts[1].1.clone();
    expected.extend_from_slice(&part3);
    expected.extend_from_slice(&parts[0].1);
    let got = s3.get_object("mpu", "big").send().unwrap();
    assert_eq!(got.parts_count, Some(3));
    assert_eq!(got.content_type.as_deref(), Some("text/plain"));
    assert_eq!(got.e_tag, done.e_tag);
    assert_eq!(got.body.collect().unwrap(), expected);
    // GET ?partNumber=2 returns the second listed part (number 3).
    let second = s3.get_object("mpu", "big").part_number(2).send().unwrap();
    assert_eq!(second.body.collect().unwrap(), part3);
    // The upload is gone.
    assert!(matches!(
        s3.list_parts("mpu", "big")
            .upload_id(&upload.upload_id)
            .send(),
        Err(Error::NoSuchUpload { .. })
    ));
    assert!(s3.verify().unwrap().is_consistent());
}

#[test]
fn completion_is_validated_and_a_failed_one_changes_nothing() {
    let db = Database::memory().unwrap();
    let s3 = store(&db);
    s3.create_bucket("checks").send().unwrap();
    let upload = s3
        .create_multipart_upload("checks", "k")
        .send()
        .unwrap()
        .upload_id;
    let put = |n: u32, len: usize| {
        s3.upload_part("checks", "k")
            .upload_id(&upload)
            .part_number(n)
            .body(random_bytes(len, u64::from(n)))
            .send()
            .unwrap()
            .e_tag
    };
    let e1 = put(1, 5000);
    let e2 = put(2, 100);
    let e3 = put(3, 5000);
    let complete = || {
        s3.complete_multipart_upload("checks", "k")
            .upload_id(&upload)
    };
    assert!(matches!(
        complete()
            .part(CompletedPart::new(2, &e2))
            .part(CompletedPart::new(1, &e1))
            .send(),
        Err(Error::InvalidPartOrder)
    ));
    assert!(matches!(
        complete()
            .part(CompletedPart::new(1, &e1))
            .part(CompletedPart::new(1, &e1))
            .send(),
        Err(Error::InvalidPartOrder)
    ));
    assert!(matches!(
        complete()
            .part(CompletedPart::new(1, &e1))
            .part(CompletedPart::new(4, &e1))
            .send(),
        Err(Error::InvalidPart { .. })
    ));
    assert!(matches!(
        complete().part(CompletedPart::new(1, &e2)).send(),
        Err(Error::InvalidPart { .. })
    ));
    assert!(matches!(
        complete()
            .part(CompletedPart::new(1, &e1))
            .part(CompletedPart::new(2, &e2))
            .part(CompletedPart::new(3, &e3))
            .send(),
        Err(Error::EntityTooSmall {
            part_number: 2,
            size: 100,
            minimum: MIN_PART
        })
    ));
    assert!(matches!(complete().send(), Err(Error::InvalidRequest(_))));
    for bad in [0, 10_001] {
        assert!(matches!(
            s3.upload_part("checks", "k")
                .upload_id(&upload)
                .part_number(bad)
                .body("x")
                .send(),
            Err(Error::InvalidArgument(_))
        ));
    }
    assert!(matches!(
        s3.head_object("checks", "k").send(),
        Err(Error::NoSuchKey { .. })
    ));
    // Non-contiguous parts 1 and 3, with the small part 2 left out.
    let done = complete()
        .part(CompletedPart::new(1, format!("\"{e1}\"")))
        .part(CompletedPart::new(3, &e3))
        .send()
        .unwrap();
    assert!(done.e_tag.ends_with("-2"));
    assert_eq!(done.size, 10_000);
    let mut expected = random_bytes(5000, 1);
    expected.extend(random_bytes(5000, 3));
    assert_eq!(
        s3.get_object("checks", "k")
            .send()
            .unwrap()
            .body
            .collect()
            .unwrap(),
        expected
    );
    // The left-out part's chunks are released, the rest referenced.
    let report = s3.verify().unwrap();
    assert!(report.is_consistent(), "{report:?}");
}

#[test]
fn aborts_free_parts_and_stop_later_uploads() {
    let db = Database::memory().unwrap();
    let s3 = store(&db);
    s3.create_bucket("abort").send().unwrap();
    let upload = s3
        .create_multipart_upload("abort", "k")
        .send()
        .unwrap()
        .upload_id;
    s3.upload_part("abort", "k")
        .upload_id(&upload)
        .part_number(1)
        .body(random_bytes(9000, 1))
        .send()
        .unwrap();
    s3.abort_multipart_upload("abort", "k")
        .upload_id(&upload)
        .send()
        .unwrap();
    assert!(matches!(
        s3.upload_part("abort", "k")
            .upload_id(&upload)
            .part_number(2)
            .body("x")
            .send(),
        Err(Error::NoSuchUpload { .. })
    ));
    assert!(matches!(
        s3.abort_multipart_upload("abort", "k")
            .upload_id(&upload)
            .send(),
        Err(Error::NoSuchUpload { .. })
    ));
    assert!(matches!(
        s3.abort_multipart_upload("abort", "k")
            .upload_id("not-an-id")
            .send(),
        Err(Error::NoSuchUpload { .. })
    ));
    assert!(s3.verify().unwrap().is_consistent());
}

#[test]
fn uploads_list_by_key_then_initiation_and_page() {
    let db = Database::memory().unwrap();
    let s3 = store(&db);
    s3.create_bucket("uploads").send().unwrap();
    let mut expected = Vec::new();
    for key in ["b", "a", "b", "c/d"] {
        let id = s3
            .create_multipart_upload("uploads", key)
            .send()
            .unwrap()
            .upload_id;
        expected.push((key.to_owned(), id));
    }
    expected.sort_by(|a, b| a.0.cmp(&b.0));
    let mut seen = Vec::new();
    let (mut key_marker, mut id_marker): (Option<String>, Option<String>) = (None, None);
    loop {
        let mut request = s3.list_multipart_uploads("uploads").max_uploads(1);
        if let (Some(k), Some(u)) = (&key_marker, &id_marker) {
            request = request.key_marker(k).upload_id_marker(u);
        }
        let page = request.send().unwrap();
        seen.extend(
            page.uploads
                .iter()
                .map(|u| (u.key.clone(), u.upload_id.clone())),
        );
        if !page.is_truncated {
            break;
        }
        key_marker = page.next_key_marker;
        id_marker = page.next_upload_id_marker;
    }
    assert_eq!(seen, expected);
    let prefixed = s3
        .list_multipart_uploads("uploads")
        .prefix("c/")
        .send()
        .unwrap();
    assert_eq!(prefixed.uploads.len(), 1);
    // Uploads do not make keys appear in listings.
    assert_eq!(s3.list_objects_v2("uploads").send().unwrap().key_count, 0);
    // Deleting the bucket takes its uploads along.
    s3.delete_bucket("uploads").send().unwrap();
    assert!(s3.verify().unwrap().is_consistent());
}

#[test]
fn completing_copies_no_body_bytes() {
    let db = Database::memory().unwrap();
    let s3 = store(&db);
    s3.create_bucket("nocopy").send().unwrap();
    let upload = s3
        .create_multipart_upload("nocopy", "k")
        .send()
        .unwrap()
        .upload_id;
    let mut parts = Vec::new();
    for n in 1..=4 {
        let e = s3
            .upload_part("nocopy", "k")
            .upload_id(&upload)
            .part_number(n)
            .body(random_bytes(50_000, u64::from(n)))
            .send()
            .unwrap()
            .e_tag;
        parts.push(CompletedPart::new(n, e));
    }
    let before = s3.verify().unwrap().pack_bytes;
    let done = s3
        .complete_multipart_upload("nocopy", "k")
        .upload_id(&upload)
        .parts(parts)
        .if_none_match("*")
        .send()
        .unwrap();
    assert!(done.e_tag.ends_with("-4"));
    assert_eq!(s3.verify().unwrap().pack_bytes, before);
}

#[test]
fn list_parts_pages_by_part_number_marker() {
    let db = Database::memory().unwrap();
    let s3 = store(&db);
    s3.create_bucket("parts").send().unwrap();
    let upload = s3
        .create_multipart_upload("parts", "k")
        .send()
        .unwrap()
        .upload_id;
    for n in [2, 4, 6, 8, 10] {
        s3.upload_part("parts", "k")
            .upload_id(&upload)
            .part_number(n)
            .body(random_bytes(100, u64::from(n)))
            .send()
            .unwrap();
    }
    let mut seen = Vec::new();
    let mut marker = None;
    loop {
        let mut request = s3.list_parts("parts", "k").upload_id(&upload).max_parts(2);
        if let Some(m) = marker {
            request = request.part_number_marker(m);
        }
        let page = request.send().unwrap();
        seen.extend(page.parts.iter().map(|p| p.part_number));
        if !page.is_truncated {
            break;
        }
        marker = page.next_part_number_marker;
    }
    assert_eq!(seen, [2, 4, 6, 8, 10]);
}
