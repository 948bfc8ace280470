//! The S3 endpoint through the Rust SDK at the edges: empty and awkwardly
//! named objects (SigV4 canonical paths), multipart uploads with
//! checksums, part copies, tagging, object lock, lifecycle XML, listing
//! with delimiters, version copies and presigned response overrides.
//!
//! Run with `cargo test --manifest-path tests/sdk/Cargo.toml` (see
//! `s3_sdk.rs`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::time::Duration;

use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketLifecycleConfiguration, ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart,
    Delete, ExpirationStatus, LifecycleExpiration, LifecycleRule, LifecycleRuleFilter,
    ObjectIdentifier, ObjectLockLegalHold, ObjectLockLegalHoldStatus, Tag, Tagging,
};
use nimbus_s3_sdk_tests::{Endpoint, bytes, http_request};

async fn read(s3: &Endpoint, bucket: &str, key: &str) -> Vec<u8> {
    let got = s3
        .client
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap();
    got.body.collect().await.unwrap().into_bytes().to_vec()
}

#[tokio::test]
async fn empty_objects_and_awkward_keys() {
    let s3 = Endpoint::start();
    s3.bucket("keys").await;
    let keys = [
        "empty",
        "with space/and+plus",
        "ünïcödé/日本語.txt",
        "query?chars=&x=1#frag",
        "percent%20literal",
        "a//double/slash",
        "trailing/",
        "tilde~star*paren(1)",
    ];
    for key in keys {
        let body: &'static [u8] = if key == "empty" { b"" } else { b"named" };
        s3.client
            .put_object()
            .bucket("keys")
            .key(key)
            .body(ByteStream::from_static(body))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{key}: {e:?}"));
        assert_eq!(read(&s3, "keys", key).await, body, "{key}");
    }
    let head = s3
        .client
        .head_object()
        .bucket("keys")
        .key("empty")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_length(), Some(0));
    assert_eq!(head.e_tag(), Some("\"d41d8cd98f00b204e9800998ecf8427e\""));
    let listed = s3
        .client
        .list_objects_v2()
        .bucket("keys")
        .send()
        .await
        .unwrap();
    let mut names: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
    names.sort_unstable();
    let mut expected = keys.to_vec();
    expected.sort_unstable();
    assert_eq!(names, expected);
    // URL-encoded listing (the SDK asks for it and decodes it).
    let encoded = s3
        .client
        .list_objects_v2()
        .bucket("keys")
        .prefix("ünïcödé/")
        .send()
        .await
        .unwrap();
    let names: Vec<&str> = encoded.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(names, vec!["ünïcödé/日本語.txt"]);
}

#[tokio::test]
async fn multipart_with_checksums_and_part_copies() {
    let s3 = Endpoint::start();
    s3.bucket("mpu").await;
    let source = bytes(6 << 20, 3);
    s3.client
        .put_object()
        .bucket("mpu")
        .key("source")
        .body(ByteStream::from(source.clone()))
        .send()
        .await
        .unwrap();
    let created = s3
        .client
        .create_multipart_upload()
        .bucket("mpu")
        .key("joined")
        .checksum_algorithm(ChecksumAlgorithm::Crc32)
        .send()
        .await
        .unwrap();
    let id = created.upload_id().unwrap();
    let first = bytes(5 << 20, 11);
    let uploaded = s3
        .client
        .upload_part()
        .bucket("mpu")
        .key("joined")
        .upload_id(id)
        .part_number(1)
        .checksum_algorithm(ChecksumAlgorithm::Crc32)
        .body(ByteStream::from(first.clone()))
        .send()
        .await
        .unwrap();
    assert!(
        uploaded.checksum_crc32().is_some(),
        "the part's checksum is echoed"
    );
    let copied = s3
        .client
        .upload_part_copy()
        .bucket("mpu")
        .key("joined")
        .upload_id(id)
        .part_number(2)
        .copy_source("mpu/source")
        .copy_source_range("bytes=0-1048575")
        .send()
        .await
        .unwrap();
    let copy_etag = copied
        .copy_part_result()
        .and_then(|r| r.e_tag())
        .unwrap()
        .to_owned();
    let parts = vec![
        CompletedPart::builder()
            .part_number(1)
            .e_tag(uploaded.e_tag().unwrap())
            .set_checksum_crc32(uploaded.checksum_crc32().map(str::to_owned))
            .build(),
        CompletedPart::builder()
            .part_number(2)
            .e_tag(copy_etag)
            .build(),
    ];
    s3.client
        .complete_multipart_upload()
        .bucket("mpu")
        .key("joined")
        .upload_id(id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
        .unwrap();
    let whole = read(&s3, "mpu", "joined").await;
    assert_eq!(whole.len(), (5 << 20) + (1 << 20));
    assert!(whole[..5 << 20] == first[..] && whole[5 << 20..] == source[..1 << 20]);
    // A read of one part by number.
    let part = s3
        .client
        .get_object()
        .bucket("mpu")
        .key("joined")
        .part_number(2)
        .send()
        .await
        .unwrap();
    assert_eq!(part.parts_count(), Some(2));
    assert_eq!(part.content_length(), Some(1 << 20));
}

#[tokio::test]
async fn tagging_legal_hold_and_lifecycle() {
    let s3 = Endpoint::start();
    s3.client
        .create_bucket()
        .bucket("kept")
        .object_lock_enabled_for_bucket(true)
        .send()
        .await
        .unwrap();
    s3.client
        .put_object()
        .bucket("kept")
        .key("doc")
        .tagging("team=storage&tier=gold")
        .body(ByteStream::from_static(b"tagged"))
        .send()
        .await
        .unwrap();
    let tags = s3
        .client
        .get_object_tagging()
        .bucket("kept")
        .key("doc")
        .send()
        .await
        .unwrap();
    let mut pairs: Vec<(&str, &str)> = tags
        .tag_set()
        .iter()
        .map(|t| (t.key(), t.value()))
        .collect();
    pairs.sort_unstable();
    assert_eq!(pairs, vec![("team", "storage"), ("tier", "gold")]);
    s3.client
        .put_object_tagging()
        .bucket("kept")
        .key("doc")
        .tagging(
            Tagging::builder()
                .tag_set(Tag::builder().key("only").value("one").build().unwrap())
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let tags = s3
        .client
        .get_object_tagging()
        .bucket("kept")
        .key("doc")
        .send()
        .await
        .unwrap();
    assert_eq!(tags.tag_set().len(), 1);
    let head = s3
        .client
        .head_object()
        .bucket("kept")
        .key("doc")
        .send()
        .await
        .unwrap();
    let version = head.version_id().unwrap().to_owned();

    s3.client
        .put_object_legal_hold()
        .bucket("kept")
        .key("doc")
        .legal_hold(
            ObjectLockLegalHold::builder()
                .status(ObjectLockLegalHoldStatus::On)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let hold = s3
        .client
        .get_object_legal_hold()
        .bucket("kept")
        .key("doc")
        .send()
        .await
        .unwrap();
    assert_eq!(
        hold.legal_hold().and_then(|h| h.status()),
        Some(&ObjectLockLegalHoldStatus::On)
    );
    let refused = s3
        .client
        .delete_object()
        .bucket("kept")
        .key("doc")
        .version_id(&version)
        .send()
        .await
        .unwrap_err();
    assert_eq!(refused.raw_response().unwrap().status().as_u16(), 403);
    assert_eq!(refused.code(), Some("AccessDenied"));

    let rule = LifecycleRule::builder()
        .id("expire-logs")
        .status(ExpirationStatus::Enabled)
        .filter(LifecycleRuleFilter::builder().prefix("logs/").build())
        .expiration(LifecycleExpiration::builder().days(30).build())
        .build()
        .unwrap();
    s3.client
        .put_bucket_lifecycle_configuration()
        .bucket("kept")
        .lifecycle_configuration(
            BucketLifecycleConfiguration::builder()
                .rules(rule)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let lifecycle = s3
        .client
        .get_bucket_lifecycle_configuration()
        .bucket("kept")
        .send()
        .await
        .unwrap();
    let rules = lifecycle.rules();
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0].id(), Some("expire-logs"));
    assert_eq!(rules[0].expiration().and_then(|e| e.days()), Some(30));
    assert_eq!(rules[0].filter().and_then(|f| f.prefix()), Some("logs/"));
}

#[tokio::test]
async fn listing_with_delimiters_and_v1_markers() {
    let s3 = Endpoint::start();
    s3.bucket("tree").await;
    for key in ["a/1", "a/2", "b/1", "c", "d/e/f"] {
        s3.client
            .put_object()
            .bucket("tree")
            .key(key)
            .body(ByteStream::from_static(b"x"))
            .send()
            .await
            .unwrap();
    }
    let top = s3
        .client
        .list_objects_v2()
        .bucket("tree")
        .delimiter("/")
        .send()
        .await
        .unwrap();
    let prefixes: Vec<&str> = top
        .common_prefixes()
        .iter()
        .filter_map(|p| p.prefix())
        .collect();
    assert_eq!(prefixes, vec!["a/", "b/", "d/"]);
    let keys: Vec<&str> = top.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, vec!["c"]);
    assert_eq!(top.key_count(), Some(4));
    let after = s3
        .client
        .list_objects_v2()
        .bucket("tree")
        .start_after("b/1")
        .send()
        .await
        .unwrap();
    let keys: Vec<&str> = after.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, vec!["c", "d/e/f"]);
    let owned = s3
        .client
        .list_objects_v2()
        .bucket("tree")
        .fetch_owner(true)
        .max_keys(1)
        .send()
        .await
        .unwrap();
    assert_eq!(
        owned.contents()[0].owner().and_then(|o| o.display_name()),
        Some("sdk")
    );
    assert_eq!(owned.is_truncated(), Some(true));

    let mut v1 = s3
        .client
        .list_objects()
        .bucket("tree")
        .max_keys(2)
        .send()
        .await
        .unwrap();
    let mut all: Vec<String> = v1
        .contents()
        .iter()
        .filter_map(|o| o.key())
        .map(str::to_owned)
        .collect();
    while v1.is_truncated() == Some(true) {
        let marker = v1
            .next_marker()
            .or(all.last().map(String::as_str))
            .unwrap()
            .to_owned();
        v1 = s3
            .client
            .list_objects()
            .bucket("tree")
            .max_keys(2)
            .marker(marker)
            .send()
            .await
            .unwrap();
        all.extend(
            v1.contents()
                .iter()
                .filter_map(|o| o.key())
                .map(str::to_owned),
        );
    }
    assert_eq!(all, vec!["a/1", "a/2", "b/1", "c", "d/e/f"]);

    let missing = s3
        .client
        .head_bucket()
        .bucket("nothere")
        .send()
        .await
        .unwrap_err();
    assert_eq!(missing.raw_response().unwrap().status().as_u16(), 404);
    let location = s3
        .client
        .get_bucket_location()
        .bucket("tree")
        .send()
        .await
        .unwrap();
    // us-east-1 is reported as an empty location constraint (S3's quirk).
    assert!(
        location
            .location_constraint()
            .is_none_or(|c| c.as_str().is_empty())
    );
}

#[tokio::test]
async fn versions_copies_and_batch_deletes() {
    let s3 = Endpoint::start();
    s3.versioned_bucket("vcopy").await;
    let old = s3
        .client
        .put_object()
        .bucket("vcopy")
        .key("k")
        .body(ByteStream::from_static(b"old"))
        .send()
        .await
        .unwrap();
    s3.client
        .put_object()
        .bucket("vcopy")
        .key("k")
        .body(ByteStream::from_static(b"new"))
        .send()
        .await
        .unwrap();
    let old_version = old.version_id().unwrap();
    let copied = s3
        .client
        .copy_object()
        .bucket("vcopy")
        .key("restored")
        .copy_source(format!("vcopy/k?versionId={old_version}"))
        .metadata_directive(aws_sdk_s3::types::MetadataDirective::Replace)
        .content_type("text/old")
        .send()
        .await
        .unwrap();
    assert_eq!(copied.copy_source_version_id(), Some(old_version));
    assert_eq!(read(&s3, "vcopy", "restored").await, b"old");
    let head = s3
        .client
        .head_object()
        .bucket("vcopy")
        .key("restored")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_type(), Some("text/old"));

    // DeleteObjects on a versioned bucket: markers for plain keys, removal
    // for a named version.
    let deleted = s3
        .client
        .delete_objects()
        .bucket("vcopy")
        .delete(
            Delete::builder()
                .objects(ObjectIdentifier::builder().key("restored").build().unwrap())
                .objects(
                    ObjectIdentifier::builder()
                        .key("k")
                        .version_id(old_version)
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let mut results: Vec<(&str, Option<bool>)> = deleted
        .deleted()
        .iter()
        .map(|d| (d.key().unwrap(), d.delete_marker()))
        .collect();
    results.sort_unstable();
    assert_eq!(results[0].0, "k");
    assert_ne!(results[0].1, Some(true), "a version removed, no marker");
    assert_eq!(results[1], ("restored", Some(true)));
    let versions = s3
        .client
        .list_object_versions()
        .bucket("vcopy")
        .prefix("k")
        .send()
        .await
        .unwrap();
    assert_eq!(
        versions.versions().len(),
        1,
        "only the new version of k is left"
    );
}

#[tokio::test]
async fn presigned_response_overrides() {
    let s3 = Endpoint::start();
    s3.bucket("dls").await;
    s3.client
        .put_object()
        .bucket("dls")
        .key("report")
        .content_type("application/octet-stream")
        .body(ByteStream::from_static(b"%PDF"))
        .send()
        .await
        .unwrap();
    let presigned = s3
        .client
        .get_object()
        .bucket("dls")
        .key("report")
        .response_content_type("application/pdf")
        .response_content_disposition("attachment; filename=\"report.pdf\"")
        .presigned(PresigningConfig::expires_in(Duration::from_secs(60)).unwrap())
        .await
        .unwrap();
    let headers: Vec<(&str, &str)> = presigned.headers().collect();
    let got = http_request("GET", presigned.uri(), &headers, b"");
    assert_eq!(got.status, 200, "{}", got.text());
    assert_eq!(got.header("content-type"), Some("application/pdf"));
    assert_eq!(
        got.header("content-disposition"),
        Some("attachment; filename=\"report.pdf\"")
    );
    assert_eq!(got.body, b"%PDF");
    // An expired URL is refused.
    let expired = s3
        .client
        .get_object()
        .bucket("dls")
        .key("report")
        .presigned(
            PresigningConfig::builder()
                .start_time(std::time::SystemTime::now() - Duration::from_secs(3600))
                .expires_in(Duration::from_secs(60))
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    let refused = http_request("GET", expired.uri(), &headers, b"");
    assert_eq!(refused.status, 403, "{}", refused.text());
    assert!(
        refused.text().contains("AccessDenied"),
        "{}",
        refused.text()
    );
}
