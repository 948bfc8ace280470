//! Multipart upload through the S3 endpoint: parts in any order, the
//! `md5(part md5s)-N` ETag, UploadPartCopy, listings, abort, and the
//! validation errors (InvalidPart, InvalidPartOrder, EntityTooSmall,
//! NoSuchUpload).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod s3_client;

use md5::Digest as _;
use nimbus::Database;
use nimbus::objects::ObjectStoreOptions;
use s3_client::{Answer, Call, S3Test, bytes, hex, md5_hex};

/// Parts of at least 64 KiB (the store's minimum, lowered for tests).
const MIN_PART: u64 = 64 * 1024;

fn start() -> S3Test {
    let db = Database::memory().unwrap();
    db.objects()
        .set_options(ObjectStoreOptions {
            min_part_bytes: MIN_PART,
            ..db.objects().options()
        })
        .unwrap();
    let s3 = S3Test::start_with(db);
    s3.bucket("mpu");
    s3
}

fn create(s3: &S3Test, key: &str) -> String {
    let answer = s3.alice(Call::new("POST", &format!("/mpu/{key}")).query("uploads", ""));
    assert_eq!(answer.status, 200, "{}", answer.text());
    answer.xml("UploadId").unwrap()
}

fn upload(s3: &S3Test, key: &str, upload: &str, number: u32, body: &[u8]) -> Answer {
    s3.alice(
        Call::new("PUT", &format!("/mpu/{key}"))
            .query("partNumber", &number.to_string())
            .query("uploadId", upload)
            .body(body),
    )
}

fn complete(s3: &S3Test, key: &str, upload: &str, parts: &[(u32, String)]) -> Answer {
    let mut xml = String::from("<CompleteMultipartUpload>");
    for (number, tag) in parts {
        xml.push_str(&format!(
            "<Part><PartNumber>{number}</PartNumber><ETag>\"{tag}\"</ETag></Part>"
        ));
    }
    xml.push_str("</CompleteMultipartUpload>");
    s3.alice(
        Call::new("POST", &format!("/mpu/{key}"))
            .query("uploadId", upload)
            .body(xml),
    )
}

#[test]
fn parts_in_any_order_assemble_with_the_multipart_etag() {
    let s3 = start();
    let upload_id = create(&s3, "big");
    let one = bytes(MIN_PART as usize, 1);
    let three = bytes(1000, 3);
    // Parts arrive out of order and part numbers need not be contiguous.
    let tag3 = upload(&s3, "big", &upload_id, 3, &three).e_tag();
    let tag1 = upload(&s3, "big", &upload_id, 1, &one).e_tag();
    assert_eq!(tag1, md5_hex(&one));
    let parts = s3.alice(Call::new("GET", "/mpu/big").query("uploadId", &upload_id));
    assert_eq!(parts.xml_all("PartNumber"), vec!["1", "3"]);
    let uploads = s3.alice(Call::new("GET", "/mpu").query("uploads", ""));
    assert_eq!(uploads.xml_all("UploadId"), vec![upload_id.clone()]);

    let done = complete(
        &s3,
        "big",
        &upload_id,
        &[(1, tag1.clone()), (3, tag3.clone())],
    );
    assert_eq!(done.status, 200, "{}", done.text());
    let mut md5s = Vec::new();
    md5s.extend(md5::Md5::digest(&one));
    md5s.extend(md5::Md5::digest(&three));
    let expected = format!("{}-2", hex(&md5::Md5::digest(&md5s)));
    assert_eq!(
        done.xml("ETag")
            .unwrap()
            .replace("&quot;", "")
            .trim_matches('"'),
        expected
    );
    let got = s3.get("mpu", "big");
    assert_eq!(got.e_tag(), expected);
    assert_eq!(got.body, [one, three].concat());
    let uploads = s3.alice(Call::new("GET", "/mpu").query("uploads", ""));
    assert!(uploads.xml_all("UploadId").is_empty());
}

#[test]
fn completion_is_validated() {
    let s3 = start();
    let upload_id = create(&s3, "v");
    let small = bytes(10, 1);
    let tag1 = upload(&s3, "v", &upload_id, 1, &small).e_tag();
    let tag2 = upload(&s3, "v", &upload_id, 2, &small).e_tag();
    let order = complete(
        &s3,
        "v",
        &upload_id,
        &[(2, tag2.clone()), (1, tag1.clone())],
    );
    assert_eq!(order.status, 400);
    assert_eq!(order.code(), "InvalidPartOrder");
    let wrong = complete(&s3, "v", &upload_id, &[(1, "0".repeat(32))]);
    assert_eq!(wrong.status, 400);
    assert_eq!(wrong.code(), "InvalidPart");
    let small_first = complete(&s3, "v", &upload_id, &[(1, tag1), (2, tag2)]);
    assert_eq!(small_first.status, 400);
    assert_eq!(small_first.code(), "EntityTooSmall");
    let gone = complete(&s3, "v", "no-such-upload", &[(1, "x".into())]);
    assert_eq!(gone.status, 404);
    assert_eq!(gone.code(), "NoSuchUpload");
    assert_eq!(s3.get("mpu", "v").status, 404);
}

#[test]
fn abort_frees_the_upload() {
    let s3 = start();
    let upload_id = create(&s3, "a");
    upload(&s3, "a", &upload_id, 1, b"part");
    let abort = s3.alice(Call::new("DELETE", "/mpu/a").query("uploadId", &upload_id));
    assert_eq!(abort.status, 204);
    let again = upload(&s3, "a", &upload_id, 2, b"late");
    assert_eq!(again.status, 404);
    assert_eq!(again.code(), "NoSuchUpload");
}

#[test]
fn upload_part_copy_takes_a_range_of_another_object() {
    let s3 = start();
    let source = bytes(200_000, 9);
    s3.put("mpu", "source", &source);
    let upload_id = create(&s3, "copy");
    let copied = s3.alice(
        Call::new("PUT", "/mpu/copy")
            .query("partNumber", "1")
            .query("uploadId", &upload_id)
            .header("x-amz-copy-source", "/mpu/source")
            .header("x-amz-copy-source-range", "bytes=0-99999"),
    );
    assert_eq!(copied.status, 200, "{}", copied.text());
    let tag1 = copied
        .xml("ETag")
        .unwrap()
        .replace("&quot;", "")
        .trim_matches('"')
        .to_owned();
    assert_eq!(tag1, md5_hex(&source[..100_000]));
    let tag2 = upload(&s3, "copy", &upload_id, 2, b"tail").e_tag();
    let done = complete(&s3, "copy", &upload_id, &[(1, tag1), (2, tag2)]);
    assert_eq!(done.status, 200, "{}", done.text());
    let got = s3.get("mpu", "copy");
    assert_eq!(got.body, [&source[..100_000], b"tail"].concat());
}
