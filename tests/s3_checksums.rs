//! Body integrity on the S3 endpoint: aws-chunked uploads with trailing
//! checksums (as every AWS SDK sends since 2025), checksum headers and
//! Content-MD5 are verified before the store commits; a mismatch is
//! `BadDigest` and leaves nothing behind.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod s3_client;

use md5::Digest as _;
use s3_client::{Call, S3Test, b64, bytes, chunked_put, crc32_b64, md5_hex, sha256_b64};

#[test]
fn chunked_upload_with_a_crc32_trailer_is_accepted() {
    let s3 = S3Test::start();
    s3.bucket("sums");
    let data = bytes(300_000, 5);
    let put = s3.alice(chunked_put(
        "/sums/crc",
        &data,
        ("x-amz-checksum-crc32", &crc32_b64(&data)),
    ));
    assert_eq!(put.status, 200, "{}", put.text());
    assert_eq!(put.e_tag(), md5_hex(&data));
    assert_eq!(
        put.header("x-amz-checksum-crc32"),
        Some(crc32_b64(&data).as_str())
    );
    assert_eq!(s3.get("sums", "crc").body, data);
}

#[test]
fn chunked_upload_with_a_sha256_trailer_is_accepted() {
    let s3 = S3Test::start();
    s3.bucket("sums");
    let data = bytes(70_000, 6);
    let put = s3.alice(chunked_put(
        "/sums/sha",
        &data,
        ("x-amz-checksum-sha256", &sha256_b64(&data)),
    ));
    assert_eq!(put.status, 200, "{}", put.text());
    assert_eq!(s3.get("sums", "sha").body, data);
}

#[test]
fn a_wrong_trailer_is_bad_digest_and_stores_nothing() {
    let s3 = S3Test::start();
    s3.bucket("sums");
    s3.put("sums", "keep", b"old body");
    let data = bytes(100_000, 8);
    let wrong = crc32_b64(b"something else");
    let put = s3.alice(chunked_put(
        "/sums/keep",
        &data,
        ("x-amz-checksum-crc32", &wrong),
    ));
    assert_eq!(put.status, 400, "{}", put.text());
    assert_eq!(put.code(), "BadDigest");
    assert_eq!(s3.get("sums", "keep").body, b"old body");
    let fresh = s3.alice(chunked_put(
        "/sums/fresh",
        &data,
        ("x-amz-checksum-sha256", &sha256_b64(b"x")),
    ));
    assert_eq!(fresh.code(), "BadDigest");
    assert_eq!(s3.get("sums", "fresh").status, 404);
}

#[test]
fn checksum_headers_and_content_md5_are_verified() {
    let s3 = S3Test::start();
    s3.bucket("sums");
    let ok = s3.alice(
        Call::new("PUT", "/sums/h")
            .header("x-amz-checksum-crc32", &crc32_b64(b"hello"))
            .body("hello"),
    );
    assert_eq!(ok.status, 200, "{}", ok.text());
    let bad = s3.alice(
        Call::new("PUT", "/sums/h")
            .header("x-amz-checksum-crc32", &crc32_b64(b"jello"))
            .body("hello again"),
    );
    assert_eq!(bad.status, 400);
    assert_eq!(bad.code(), "BadDigest");
    let md5 = b64(&md5::Md5::digest(b"right"));
    let good = s3.alice(
        Call::new("PUT", "/sums/m")
            .header("content-md5", &md5)
            .body("right"),
    );
    assert_eq!(good.status, 200);
    let wrong = s3.alice(
        Call::new("PUT", "/sums/m")
            .header("content-md5", &md5)
            .body("wrong"),
    );
    assert_eq!(wrong.status, 400);
    assert_eq!(wrong.code(), "BadDigest");
    assert_eq!(s3.get("sums", "h").body, b"hello");
    assert_eq!(s3.get("sums", "m").body, b"right");
}

#[test]
fn upload_part_verifies_its_trailer_too() {
    let s3 = S3Test::start();
    s3.bucket("sums");
    let create = s3.alice(Call::new("POST", "/sums/mp").query("uploads", ""));
    let upload_id = create.xml("UploadId").unwrap();
    let data = bytes(50_000, 2);
    let mut call = chunked_put(
        "/sums/mp",
        &data,
        ("x-amz-checksum-crc32", &crc32_b64(b"no")),
    );
    call = call.query("partNumber", "1").query("uploadId", &upload_id);
    let bad = s3.alice(call);
    assert_eq!(bad.code(), "BadDigest");
    let parts = s3.alice(Call::new("GET", "/sums/mp").query("uploadId", &upload_id));
    assert!(parts.xml_all("PartNumber").is_empty());
}
