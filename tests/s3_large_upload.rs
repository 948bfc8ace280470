//! 1 GiB through the S3 endpoint with bounded memory: a single PUT of
//! 1 GiB and a multipart upload of 1 GiB (8 parts of 128 MiB), each sent
//! piece by piece and never held whole by the client, raise the process's
//! peak resident set (`VmHWM`) by a small fraction of their size: the
//! endpoint hands the store a few pieces at a time and the store writes
//! chunks to pack files as they are cut.
//!
//! About a minute with optimizations, so it is ignored by default:
//! `cargo test --release --test s3_large_upload -- --ignored --nocapture`
//! (it prints the growth it measured). It is alone in its test binary so
//! that no other test moves the process's peak.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod s3_client;

use std::io::{BufReader, Read, Write};
use std::net::TcpStream;

use nimbus::storage::Durability;
use nimbus::{Database, DatabaseOptions};
use s3_client::{Call, S3Test};

const UPLOAD_BYTES: usize = 1 << 30;
const PARTS: usize = 8;
const PIECE_BYTES: usize = 1 << 20;
/// What an upload may add to the peak RSS: a quarter of the body, so
/// buffering it (or a part of it) whole fails.
const GROWTH_BYTES_MAX: u64 = 256 << 20;

/// The process's peak resident set (`VmHWM`), in bytes.
fn peak_rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

/// Streams `len` bytes of distinct 1 MiB pieces (numbered from `first`)
/// as the body of `PUT target`; returns the status, the ETag and the
/// answer's body.
fn stream_put(s3: &S3Test, target: &str, len: usize, first: u64) -> (u16, String, String) {
    let host = s3.address.to_string();
    let path = target.split('?').next().unwrap();
    let mut call = Call::new("PUT", path);
    if let Some((_, query)) = target.split_once('?') {
        for pair in query.split('&') {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            call = call.query(name, value);
        }
    }
    let head = s3_client::unsigned_payload_head(&host, call, target, "Connection: close\r\n", len);
    let mut stream = TcpStream::connect(s3.address).unwrap();
    stream.write_all(head.as_bytes()).unwrap();
    let mut piece = vec![0x5au8; PIECE_BYTES];
    for index in 0..len / PIECE_BYTES {
        // Distinct pieces, so nothing deduplicates.
        piece[..8].copy_from_slice(&(first + index as u64).to_le_bytes());
        stream.write_all(&piece).unwrap();
    }
    let mut reader = BufReader::new(stream);
    let (status, headers) = s3_client::read_response_head(&mut reader);
    let e_tag = s3_client::head_value(&headers, "etag")
        .unwrap_or_default()
        .to_owned();
    let mut rest = String::new();
    reader.read_to_string(&mut rest).unwrap();
    let code = status.split_whitespace().nth(1).unwrap().parse().unwrap();
    (code, e_tag, rest)
}

#[test]
#[cfg(target_os = "linux")]
#[ignore = "a minute with optimizations: cargo test --release --test s3_large_upload -- --ignored"]
fn one_gib_uploads_stream_with_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open_with(
        dir.path(),
        DatabaseOptions::default().durability(Durability::Buffered),
    )
    .unwrap();
    let s3 = S3Test::start_with(db);
    s3.bucket("large");
    let before = peak_rss_bytes();

    let (status, _, text) = stream_put(&s3, "/large/single", UPLOAD_BYTES, 0);
    assert_eq!(status, 200, "{text}");
    let single = peak_rss_bytes().saturating_sub(before);
    println!(
        "single PUT of {} MiB: peak RSS grew by {} MiB",
        UPLOAD_BYTES >> 20,
        single >> 20
    );
    assert!(single < GROWTH_BYTES_MAX, "grew by {} MiB", single >> 20);

    let created = s3.alice(Call::new("POST", "/large/multi").query("uploads", ""));
    assert_eq!(created.status, 200, "{}", created.text());
    let upload = created.xml("UploadId").unwrap();
    let part_bytes = UPLOAD_BYTES / PARTS;
    let mut xml = String::from("<CompleteMultipartUpload>");
    for number in 1..=PARTS {
        let target = format!("/large/multi?partNumber={number}&uploadId={upload}");
        let first = (1 << 20) + (number * part_bytes / PIECE_BYTES) as u64;
        let (status, e_tag, text) = stream_put(&s3, &target, part_bytes, first);
        assert_eq!(status, 200, "part {number}: {text}");
        xml.push_str(&format!(
            "<Part><PartNumber>{number}</PartNumber><ETag>{e_tag}</ETag></Part>"
        ));
    }
    xml.push_str("</CompleteMultipartUpload>");
    let completed = s3.alice(
        Call::new("POST", "/large/multi")
            .query("uploadId", &upload)
            .body(xml),
    );
    assert_eq!(completed.status, 200, "{}", completed.text());
    let multipart = peak_rss_bytes().saturating_sub(before);
    println!(
        "multipart upload of {} MiB in {PARTS} parts: peak RSS grew by {} MiB in all",
        UPLOAD_BYTES >> 20,
        multipart >> 20
    );
    assert!(
        multipart < GROWTH_BYTES_MAX,
        "grew by {} MiB",
        multipart >> 20
    );

    for key in ["single", "multi"] {
        let head = s3.alice(Call::new("HEAD", &format!("/large/{key}")));
        assert_eq!(
            head.header("content-length"),
            Some(UPLOAD_BYTES.to_string().as_str()),
            "{key}"
        );
    }
}
