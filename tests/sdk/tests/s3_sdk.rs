//! nimbus's S3 endpoint driven by the official Rust SDK (`aws-sdk-s3`, its
//! default request settings): versioning flows, multipart uploads,
//! conditional writes, presigned URLs used by a plain HTTP client, and
//! S3's error codes as the SDK parses them (checksums:
//! `s3_sdk_checksums.rs`).
//!
//! Not part of nimbus's default `cargo test` (the SDK is a large build):
//! run `cargo test --manifest-path tests/sdk/Cargo.toml`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::time::Duration;

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::operation::get_object::GetObjectError;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketVersioningStatus, CompletedMultipartUpload, CompletedPart, Delete, ObjectIdentifier,
};
use md5::{Digest, Md5};
use nimbus_s3_sdk_tests::{Endpoint, bytes, failure, http_request, md5_hex};

/// A header of a failed SDK call's raw answer.
fn failure_header<E>(error: &SdkError<E, HttpResponse>, name: &str) -> Option<String> {
    error
        .raw_response()
        .and_then(|r| r.headers().get(name))
        .map(str::to_owned)
}

async fn body_of(endpoint: &Endpoint, bucket: &str, key: &str, version: Option<&str>) -> Vec<u8> {
    let got = endpoint
        .client
        .get_object()
        .bucket(bucket)
        .key(key)
        .set_version_id(version.map(str::to_owned))
        .send()
        .await
        .unwrap();
    got.body.collect().await.unwrap().into_bytes().to_vec()
}

#[tokio::test]
async fn versioning_flows() {
    let s3 = Endpoint::start();
    s3.versioned_bucket("versions").await;
    let status = s3
        .client
        .get_bucket_versioning()
        .bucket("versions")
        .send()
        .await
        .unwrap();
    assert_eq!(status.status(), Some(&BucketVersioningStatus::Enabled));

    let put = |body: &'static str| {
        s3.client
            .put_object()
            .bucket("versions")
            .key("doc")
            .body(ByteStream::from_static(body.as_bytes()))
            .send()
    };
    let first = put("first").await.unwrap();
    let second = put("second").await.unwrap();
    let (v1, v2) = (first.version_id().unwrap(), second.version_id().unwrap());
    assert_ne!(v1, v2);
    assert_eq!(
        first.e_tag(),
        Some(format!("\"{}\"", md5_hex(b"first")).as_str())
    );

    let listed = s3
        .client
        .list_object_versions()
        .bucket("versions")
        .send()
        .await
        .unwrap();
    let versions: Vec<(&str, bool)> = listed
        .versions()
        .iter()
        .map(|v| (v.version_id().unwrap(), v.is_latest().unwrap()))
        .collect();
    assert_eq!(versions, vec![(v2, true), (v1, false)], "newest first");
    assert_eq!(body_of(&s3, "versions", "doc", Some(v1)).await, b"first");
    assert_eq!(body_of(&s3, "versions", "doc", None).await, b"second");

    // A delete puts a marker; the key then reads as missing.
    let deleted = s3
        .client
        .delete_object()
        .bucket("versions")
        .key("doc")
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.delete_marker(), Some(true));
    let marker = deleted.version_id().unwrap().to_owned();
    let missing = s3
        .client
        .get_object()
        .bucket("versions")
        .key("doc")
        .send()
        .await
        .unwrap_err();
    assert_eq!(failure(&missing), (404, "NoSuchKey".to_owned()));
    assert!(matches!(
        missing.as_service_error(),
        Some(GetObjectError::NoSuchKey(_))
    ));
    assert_eq!(
        failure_header(&missing, "x-amz-delete-marker").as_deref(),
        Some("true")
    );
    // The marker itself is not an object: 405 MethodNotAllowed.
    let on_marker = s3
        .client
        .get_object()
        .bucket("versions")
        .key("doc")
        .version_id(&marker)
        .send()
        .await
        .unwrap_err();
    assert_eq!(failure(&on_marker), (405, "MethodNotAllowed".to_owned()));
    assert_eq!(
        failure_header(&on_marker, "x-amz-delete-marker").as_deref(),
        Some("true")
    );
    let head_marker = s3
        .client
        .head_object()
        .bucket("versions")
        .key("doc")
        .version_id(&marker)
        .send()
        .await
        .unwrap_err();
    assert_eq!(head_marker.raw_response().unwrap().status().as_u16(), 405);

    let listed = s3
        .client
        .list_object_versions()
        .bucket("versions")
        .send()
        .await
        .unwrap();
    assert_eq!(listed.versions().len(), 2);
    let markers: Vec<&str> = listed
        .delete_markers()
        .iter()
        .filter_map(|m| m.version_id())
        .collect();
    assert_eq!(markers, vec![marker.as_str()]);
    assert_eq!(listed.delete_markers()[0].is_latest(), Some(true));

    // Deleting the marker's version brings the newest version back; deleting
    // a version removes that version only.
    s3.client
        .delete_object()
        .bucket("versions")
        .key("doc")
        .version_id(&marker)
        .send()
        .await
        .unwrap();
    assert_eq!(body_of(&s3, "versions", "doc", None).await, b"second");
    s3.client
        .delete_object()
        .bucket("versions")
        .key("doc")
        .version_id(v2)
        .send()
        .await
        .unwrap();
    assert_eq!(body_of(&s3, "versions", "doc", None).await, b"first");
    let gone = s3
        .client
        .get_object()
        .bucket("versions")
        .key("doc")
        .version_id(v2)
        .send()
        .await
        .unwrap_err();
    assert_eq!(failure(&gone).0, 404);
}

#[tokio::test]
async fn multipart_upload_complete_and_abort() {
    let s3 = Endpoint::start();
    s3.bucket("parts").await;
    let created = s3
        .client
        .create_multipart_upload()
        .bucket("parts")
        .key("big")
        .content_type("application/octet-stream")
        .send()
        .await
        .unwrap();
    let upload = created.upload_id().unwrap();
    // Parts but the last are at least 5 MiB.
    let sizes = [5 << 20, 5 << 20, 1234];
    let parts: Vec<Vec<u8>> = sizes
        .iter()
        .enumerate()
        .map(|(i, &n)| bytes(n, i as u64 + 7))
        .collect();
    let mut completed = Vec::new();
    for (index, part) in parts.iter().enumerate() {
        let number = index as i32 + 1;
        let answer = s3
            .client
            .upload_part()
            .bucket("parts")
            .key("big")
            .upload_id(upload)
            .part_number(number)
            .body(ByteStream::from(part.clone()))
            .send()
            .await
            .unwrap();
        assert_eq!(
            answer.e_tag(),
            Some(format!("\"{}\"", md5_hex(part)).as_str())
        );
        completed.push(
            CompletedPart::builder()
                .part_number(number)
                .e_tag(answer.e_tag().unwrap())
                .build(),
        );
    }
    let listed = s3
        .client
        .list_parts()
        .bucket("parts")
        .key("big")
        .upload_id(upload)
        .send()
        .await
        .unwrap();
    let sizes_listed: Vec<i64> = listed.parts().iter().map(|p| p.size().unwrap()).collect();
    assert_eq!(
        sizes_listed,
        sizes.iter().map(|&n| n as i64).collect::<Vec<_>>()
    );
    let uploads = s3
        .client
        .list_multipart_uploads()
        .bucket("parts")
        .send()
        .await
        .unwrap();
    assert_eq!(uploads.uploads().len(), 1);

    let done = s3
        .client
        .complete_multipart_upload()
        .bucket("parts")
        .key("big")
        .upload_id(upload)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(completed))
                .build(),
        )
        .send()
        .await
        .unwrap();
    let mut md5s = Vec::new();
    for part in &parts {
        md5s.extend_from_slice(&Md5::digest(part));
    }
    let expected = format!("\"{}-{}\"", md5_hex(&md5s), parts.len());
    assert_eq!(done.e_tag(), Some(expected.as_str()), "md5(part md5s)-N");
    let whole = body_of(&s3, "parts", "big", None).await;
    assert_eq!(whole.len(), sizes.iter().sum::<usize>());
    assert!(whole == parts.concat(), "the parts in order");
    let head = s3
        .client
        .head_object()
        .bucket("parts")
        .key("big")
        .send()
        .await
        .unwrap();
    assert_eq!(head.e_tag(), Some(expected.as_str()));
    assert_eq!(head.content_type(), Some("application/octet-stream"));

    // A ranged read across the first part boundary.
    let ranged = s3
        .client
        .get_object()
        .bucket("parts")
        .key("big")
        .range(format!("bytes={}-{}", (5 << 20) - 3, (5 << 20) + 2))
        .send()
        .await
        .unwrap();
    assert_eq!(
        ranged.content_range(),
        Some(format!("bytes {}-{}/{}", (5 << 20) - 3, (5 << 20) + 2, whole.len()).as_str())
    );
    let range = ranged.body.collect().await.unwrap().into_bytes();
    assert_eq!(&range[..], &whole[(5 << 20) - 3..(5 << 20) + 3]);

    // Abort: the upload and its parts are gone.
    let aborted = s3
        .client
        .create_multipart_upload()
        .bucket("parts")
        .key("never")
        .send()
        .await
        .unwrap();
    let id = aborted.upload_id().unwrap();
    s3.client
        .upload_part()
        .bucket("parts")
        .key("never")
        .upload_id(id)
        .part_number(1)
        .body(ByteStream::from_static(b"lost"))
        .send()
        .await
        .unwrap();
    s3.client
        .abort_multipart_upload()
        .bucket("parts")
        .key("never")
        .upload_id(id)
        .send()
        .await
        .unwrap();
    let after = s3
        .client
        .list_parts()
        .bucket("parts")
        .key("never")
        .upload_id(id)
        .send()
        .await
        .unwrap_err();
    assert_eq!(failure(&after), (404, "NoSuchUpload".to_owned()));
    let uploads = s3
        .client
        .list_multipart_uploads()
        .bucket("parts")
        .send()
        .await
        .unwrap();
    assert!(uploads.uploads().is_empty());
    let missing = s3
        .client
        .head_object()
        .bucket("parts")
        .key("never")
        .send()
        .await
        .unwrap_err();
    assert_eq!(missing.raw_response().unwrap().status().as_u16(), 404);
}

#[tokio::test]
async fn conditional_writes_and_reads() {
    let s3 = Endpoint::start();
    s3.bucket("cond").await;
    let create = || {
        s3.client
            .put_object()
            .bucket("cond")
            .key("once")
            .if_none_match("*")
            .body(ByteStream::from_static(b"first writer"))
            .send()
    };
    let created = create().await.unwrap();
    let second = create().await.unwrap_err();
    assert_eq!(failure(&second), (412, "PreconditionFailed".to_owned()));
    assert_eq!(body_of(&s3, "cond", "once", None).await, b"first writer");

    let etag = created.e_tag().unwrap().to_owned();
    let stale = s3
        .client
        .put_object()
        .bucket("cond")
        .key("once")
        .if_match("\"00000000000000000000000000000000\"")
        .body(ByteStream::from_static(b"lost update"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(failure(&stale), (412, "PreconditionFailed".to_owned()));
    let swapped = s3
        .client
        .put_object()
        .bucket("cond")
        .key("once")
        .if_match(&etag)
        .body(ByteStream::from_static(b"compare and swap"))
        .send()
        .await
        .unwrap();
    assert_ne!(swapped.e_tag(), Some(etag.as_str()));
    assert_eq!(
        body_of(&s3, "cond", "once", None).await,
        b"compare and swap"
    );
    let absent = s3
        .client
        .put_object()
        .bucket("cond")
        .key("absent")
        .if_match(&etag)
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        failure(&absent).0,
        404,
        "If-Match on a missing key: NoSuchKey"
    );

    // Reads: If-Match mismatch is 412, If-None-Match on the ETag is 304.
    let read_stale = s3
        .client
        .get_object()
        .bucket("cond")
        .key("once")
        .if_match(&etag)
        .send()
        .await
        .unwrap_err();
    assert_eq!(failure(&read_stale), (412, "PreconditionFailed".to_owned()));
    let unchanged = s3
        .client
        .get_object()
        .bucket("cond")
        .key("once")
        .if_none_match(swapped.e_tag().unwrap())
        .send()
        .await
        .unwrap_err();
    assert_eq!(unchanged.raw_response().unwrap().status().as_u16(), 304);
}

#[tokio::test]
async fn presigned_urls_with_a_plain_http_client() {
    let s3 = Endpoint::start();
    s3.bucket("share").await;
    let config = PresigningConfig::expires_in(Duration::from_secs(600)).unwrap();

    let put = s3
        .client
        .put_object()
        .bucket("share")
        .key("upload.bin")
        .content_type("text/plain")
        .presigned(config.clone())
        .await
        .unwrap();
    assert_eq!(put.method(), "PUT");
    let headers: Vec<(&str, &str)> = put.headers().collect();
    let stored = http_request("PUT", put.uri(), &headers, b"sent by curl");
    assert_eq!(stored.status, 200, "{}", stored.text());
    let head = s3
        .client
        .head_object()
        .bucket("share")
        .key("upload.bin")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_length(), Some(12));
    assert_eq!(head.content_type(), Some("text/plain"));

    let get = s3
        .client
        .get_object()
        .bucket("share")
        .key("upload.bin")
        .presigned(config.clone())
        .await
        .unwrap();
    let headers: Vec<(&str, &str)> = get.headers().collect();
    let got = http_request("GET", get.uri(), &headers, b"");
    assert_eq!(got.status, 200, "{}", got.text());
    assert_eq!(got.body, b"sent by curl");
    assert_eq!(
        got.header("etag"),
        Some(format!("\"{}\"", md5_hex(b"sent by curl")).as_str())
    );

    // The signature covers the key and the method.
    let other_key = get.uri().replace("upload.bin", "other.bin");
    let refused = http_request("GET", &other_key, &headers, b"");
    assert_eq!(refused.status, 403, "{}", refused.text());
    assert!(
        refused.text().contains("SignatureDoesNotMatch"),
        "{}",
        refused.text()
    );
    let wrong_method = http_request("DELETE", get.uri(), &headers, b"");
    assert_eq!(wrong_method.status, 403);
    assert_eq!(
        body_of(&s3, "share", "upload.bin", None).await,
        b"sent by curl"
    );
}

#[tokio::test]
async fn error_codes_as_the_sdk_sees_them() {
    let s3 = Endpoint::start();
    s3.bucket("errs").await;
    s3.client
        .put_object()
        .bucket("errs")
        .key("ten")
        .body(ByteStream::from_static(b"0123456789"))
        .send()
        .await
        .unwrap();

    let no_key = s3
        .client
        .get_object()
        .bucket("errs")
        .key("nope")
        .send()
        .await
        .unwrap_err();
    assert_eq!(failure(&no_key), (404, "NoSuchKey".to_owned()));
    assert!(
        no_key
            .as_service_error()
            .is_some_and(GetObjectError::is_no_such_key)
    );
    let no_bucket = s3
        .client
        .get_object()
        .bucket("nobucket")
        .key("k")
        .send()
        .await
        .unwrap_err();
    assert_eq!(failure(&no_bucket), (404, "NoSuchBucket".to_owned()));
    let list_missing = s3
        .client
        .list_objects_v2()
        .bucket("nobucket")
        .send()
        .await
        .unwrap_err();
    assert_eq!(failure(&list_missing), (404, "NoSuchBucket".to_owned()));
    let range = s3
        .client
        .get_object()
        .bucket("errs")
        .key("ten")
        .range("bytes=20-30")
        .send()
        .await
        .unwrap_err();
    assert_eq!(failure(&range), (416, "InvalidRange".to_owned()));
    let suffix = s3
        .client
        .get_object()
        .bucket("errs")
        .key("ten")
        .range("bytes=-3")
        .send()
        .await
        .unwrap();
    assert_eq!(
        &suffix.body.collect().await.unwrap().into_bytes()[..],
        b"789"
    );
    let taken = s3
        .client
        .create_bucket()
        .bucket("errs")
        .send()
        .await
        .unwrap_err();
    assert_eq!(failure(&taken), (409, "BucketAlreadyOwnedByYou".to_owned()));
    let not_empty = s3
        .client
        .delete_bucket()
        .bucket("errs")
        .send()
        .await
        .unwrap_err();
    assert_eq!(failure(&not_empty), (409, "BucketNotEmpty".to_owned()));
    let no_upload = s3
        .client
        .upload_part()
        .bucket("errs")
        .key("k")
        .upload_id("no-such-upload")
        .part_number(1)
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(failure(&no_upload), (404, "NoSuchUpload".to_owned()));

    // A client with the wrong secret is refused, not served.
    let forged = aws_sdk_s3::Client::from_conf(
        s3.client
            .config()
            .to_builder()
            .credentials_provider(aws_sdk_s3::config::Credentials::new(
                nimbus_s3_sdk_tests::ACCESS_KEY,
                "wrong-secret",
                None,
                None,
                "forged",
            ))
            .build(),
    );
    let refused = forged
        .get_object()
        .bucket("errs")
        .key("ten")
        .send()
        .await
        .unwrap_err();
    assert_eq!(failure(&refused), (403, "SignatureDoesNotMatch".to_owned()));
}

#[tokio::test]
async fn listing_copy_metadata_and_batch_delete() {
    let s3 = Endpoint::start();
    s3.bucket("list").await;
    for i in 0..5 {
        s3.client
            .put_object()
            .bucket("list")
            .key(format!("dir/{i}.txt"))
            .metadata("index", i.to_string())
            .body(ByteStream::from(format!("body {i}").into_bytes()))
            .send()
            .await
            .unwrap();
    }
    // The SDK's paginator follows continuation tokens.
    let mut pages = s3
        .client
        .list_objects_v2()
        .bucket("list")
        .prefix("dir/")
        .max_keys(2)
        .into_paginator()
        .send();
    let mut keys = Vec::new();
    let mut page_count = 0;
    while let Some(page) = pages.next().await {
        let page = page.unwrap();
        page_count += 1;
        keys.extend(page.contents().iter().map(|o| o.key().unwrap().to_owned()));
    }
    assert_eq!(page_count, 3);
    assert_eq!(
        keys,
        (0..5).map(|i| format!("dir/{i}.txt")).collect::<Vec<_>>()
    );

    let head = s3
        .client
        .head_object()
        .bucket("list")
        .key("dir/3.txt")
        .send()
        .await
        .unwrap();
    assert_eq!(
        head.metadata()
            .and_then(|m| m.get("index"))
            .map(String::as_str),
        Some("3")
    );
    s3.client
        .copy_object()
        .bucket("list")
        .key("copy.txt")
        .copy_source("list/dir/3.txt")
        .send()
        .await
        .unwrap();
    assert_eq!(body_of(&s3, "list", "copy.txt", None).await, b"body 3");

    let doomed: Vec<ObjectIdentifier> = (0..5)
        .map(|i| {
            ObjectIdentifier::builder()
                .key(format!("dir/{i}.txt"))
                .build()
                .unwrap()
        })
        .collect();
    let deleted = s3
        .client
        .delete_objects()
        .bucket("list")
        .delete(Delete::builder().set_objects(Some(doomed)).build().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.deleted().len(), 5);
    assert!(deleted.errors().is_empty());
    let left = s3
        .client
        .list_objects_v2()
        .bucket("list")
        .send()
        .await
        .unwrap();
    let left: Vec<&str> = left.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(left, vec!["copy.txt"]);
}
