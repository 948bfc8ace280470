//! Checksums through the Rust SDK, every algorithm (CRC32, CRC32C,
//! SHA-256, CRC64NVME, SHA-1), checked on the wire by a recording proxy: a
//! streamed body goes aws-chunked with signed chunks and a signed trailing
//! checksum (over plain HTTP the SDK signs the payload;
//! `disable_payload_signing` applies to HTTPS only, so the unsigned trailer
//! is covered by the raw-HTTP `tests/s3_checksums.rs`), a body in memory
//! with a checksum header; wrong checksums are refused and store nothing.
//!
//! Run with `cargo test --manifest-path tests/sdk/Cargo.toml` (see
//! `s3_sdk.rs`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::io::Write;

use aws_sdk_s3::operation::put_object::PutObjectOutput;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, ChecksumMode};
use md5::{Digest, Md5};
use nimbus_s3_sdk_tests::{Endpoint, Recorder, bytes, checksum, client, failure, md5_hex};

/// The checksum of `algorithm` a `PutObjectOutput` echoes.
fn echoed(put: &PutObjectOutput, algorithm: &ChecksumAlgorithm) -> Option<String> {
    match algorithm {
        ChecksumAlgorithm::Crc32 => put.checksum_crc32(),
        ChecksumAlgorithm::Crc32C => put.checksum_crc32_c(),
        ChecksumAlgorithm::Sha256 => put.checksum_sha256(),
        ChecksumAlgorithm::Crc64Nvme => put.checksum_crc64_nvme(),
        _ => put.checksum_sha1(),
    }
    .map(str::to_owned)
}

#[tokio::test]
async fn chunked_uploads_with_every_trailing_checksum() {
    let s3 = Endpoint::start();
    s3.bucket("sums").await;
    // Through a recording proxy, to see the SDK's encoding on the wire.
    let recorder = Recorder::start(s3.address());
    let sdk = client(recorder.address());
    // Larger than the SDK's aws-chunked chunk (64 KiB): several chunks.
    let data = bytes(300_000, 99);
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(&data).unwrap();
    file.flush().unwrap();
    let cases = [
        (ChecksumAlgorithm::Crc32, "crc32"),
        (ChecksumAlgorithm::Crc32C, "crc32c"),
        (ChecksumAlgorithm::Sha256, "sha256"),
        (ChecksumAlgorithm::Crc64Nvme, "crc64nvme"),
        (ChecksumAlgorithm::Sha1, "sha1"),
    ];
    for (algorithm, name) in cases {
        let expected = checksum(name, &data);
        // A streamed body (a file): aws-chunked with the checksum in a
        // trailer, what the SDK sends for any body it does not hold.
        let mark = recorder.mark();
        let key = format!("streamed-{name}");
        let put = sdk
            .put_object()
            .bucket("sums")
            .key(&key)
            .checksum_algorithm(algorithm.clone())
            .body(ByteStream::from_path(file.path()).await.unwrap())
            .send()
            .await
            .unwrap_or_else(|e| panic!("{name}: {e:?}"));
        assert_eq!(echoed(&put, &algorithm), Some(expected.clone()), "{name}");
        let etag = format!("\"{}\"", md5_hex(&data));
        assert_eq!(put.e_tag(), Some(etag.as_str()), "{name}");
        let wire = recorder.sent_since(mark);
        let head = &wire[..wire.find("\r\n\r\n").unwrap_or(wire.len())];
        assert!(
            head.contains("content-encoding: aws-chunked\r\n"),
            "{name}: {head}"
        );
        assert!(head.contains("x-amz-decoded-content-length: 300000\r\n"));
        // Over plain HTTP the SDK signs every chunk and the trailer too.
        let signed = "x-amz-content-sha256: streaming-aws4-hmac-sha256-payload-trailer\r\n";
        assert!(head.contains(signed), "{name}: {head}");
        let trailer = format!("x-amz-trailer: x-amz-checksum-{name}\r\n");
        assert!(head.contains(&trailer), "{name}: a declared trailer");
        assert!(
            wire.contains("\r\n0;chunk-signature="),
            "{name}: signed chunks"
        );
        let sent = format!(
            "\r\nx-amz-checksum-{name}:{}\r\nx-amz-trailer-signature:",
            expected.to_ascii_lowercase()
        );
        assert!(wire.contains(&sent), "{name}: the signed trailer");

        // A body in memory: the checksum in a header, the body as is.
        let mark = recorder.mark();
        let put = sdk
            .put_object()
            .bucket("sums")
            .key(format!("in-memory-{name}"))
            .checksum_algorithm(algorithm.clone())
            .body(ByteStream::from(data.clone()))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{name}: {e:?}"));
        assert_eq!(echoed(&put, &algorithm), Some(expected.clone()), "{name}");
        let wire = recorder.sent_since(mark);
        let header = format!(
            "\r\nx-amz-checksum-{name}: {}",
            expected.to_ascii_lowercase()
        );
        assert!(wire.contains(&header), "{name}: a checksum header");

        let got = s3
            .client
            .get_object()
            .bucket("sums")
            .key(&key)
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
            .unwrap();
        // The store keeps no per-object checksum yet, so the answer carries
        // none and the SDK has nothing to validate (a known gap: S3 returns
        // the checksum stored at upload).
        assert_eq!(
            got.checksum_crc32(),
            None,
            "{name}: checksums are not stored"
        );
        let body = got.body.collect().await.unwrap().into_bytes();
        assert!(body[..] == data[..], "{name}");
    }
    // The SDK's default (no algorithm chosen): CRC32.
    let mark = recorder.mark();
    let default = sdk
        .put_object()
        .bucket("sums")
        .key("default")
        .body(ByteStream::from_path(file.path()).await.unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(
        default.checksum_crc32(),
        Some(checksum("crc32", &data).as_str())
    );
    assert!(
        recorder
            .sent_since(mark)
            .contains("x-amz-trailer: x-amz-checksum-crc32\r\n")
    );
}

#[tokio::test]
async fn checksum_mismatches_are_rejected_and_store_nothing() {
    let s3 = Endpoint::start();
    s3.bucket("sums").await;
    let wrong_crc = s3
        .client
        .put_object()
        .bucket("sums")
        .key("bad")
        .checksum_crc32(checksum("crc32", b"other bytes"))
        .body(ByteStream::from_static(b"the real bytes"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(failure(&wrong_crc), (400, "BadDigest".to_owned()));
    let wrong_sha = s3
        .client
        .put_object()
        .bucket("sums")
        .key("bad")
        .checksum_sha256(checksum("sha256", b"other bytes"))
        .body(ByteStream::from_static(b"the real bytes"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(failure(&wrong_sha), (400, "BadDigest".to_owned()));
    let wrong_md5 = s3
        .client
        .put_object()
        .bucket("sums")
        .key("bad")
        .content_md5(aws_smithy_types::base64::encode(Md5::digest(
            b"other bytes",
        )))
        .body(ByteStream::from_static(b"the real bytes"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(failure(&wrong_md5), (400, "BadDigest".to_owned()));
    let missing = s3
        .client
        .head_object()
        .bucket("sums")
        .key("bad")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        missing.raw_response().unwrap().status().as_u16(),
        404,
        "nothing stored"
    );
}
