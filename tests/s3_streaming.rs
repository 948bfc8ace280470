//! Large bodies stream through the S3 endpoint: a 256 MiB upload, sent
//! piece by piece and never held whole by the client, raises the process's
//! peak memory by well under its size (the endpoint hands the store a few
//! pieces at a time; the store writes chunks to pack files). Measured here:
//! the store's own put of 256 MiB raises it by ~72 MiB, the endpoint adds
//! ~25 MiB.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod s3_client;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;

use nimbus::storage::Durability;
use nimbus::{Database, DatabaseOptions};
use s3_client::{Call, S3Test};

const UPLOAD_BYTES: usize = 256 << 20;
const PIECE_BYTES: usize = 1 << 20;
/// What the upload may add to the peak RSS (pieces in flight, the
/// store's write path); half the body, so buffering it whole fails.
const GROWTH_BYTES_MAX: u64 = 128 << 20;

/// The process's peak resident set (`VmHWM`), in bytes.
fn peak_rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

#[test]
#[cfg(target_os = "linux")]
#[cfg_attr(
    debug_assertions,
    ignore = "minutes without optimizations; runs under `cargo test --release`"
)]
fn a_large_upload_is_streamed_not_buffered() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open_with(
        dir.path(),
        DatabaseOptions::default().durability(Durability::Buffered),
    )
    .unwrap();
    let s3 = S3Test::start_with(db);
    s3.bucket("stream");
    // Unsigned requests act as the local owner only without keys; sign the
    // headers with UNSIGNED-PAYLOAD so the body can be streamed.
    let head = s3_client::unsigned_payload_head(
        &s3.address.to_string(),
        Call::new("PUT", "/stream/big"),
        "/stream/big",
        "Connection: close\r\n",
        UPLOAD_BYTES,
    );
    let before = peak_rss_bytes();
    let mut stream = TcpStream::connect(s3.address).unwrap();
    stream.write_all(head.as_bytes()).unwrap();
    let mut piece = vec![0u8; PIECE_BYTES];
    for index in 0..UPLOAD_BYTES / PIECE_BYTES {
        // Distinct pieces, so nothing deduplicates.
        piece[..8].copy_from_slice(&(index as u64).to_le_bytes());
        stream.write_all(&piece).unwrap();
    }
    let mut reader = BufReader::new(stream);
    let mut status = String::new();
    reader.read_line(&mut status).unwrap();
    let mut rest = Vec::new();
    reader.read_to_end(&mut rest).unwrap();
    assert!(
        status.contains(" 200 "),
        "{status} {}",
        String::from_utf8_lossy(&rest)
    );
    let growth = peak_rss_bytes().saturating_sub(before);
    assert!(
        growth < GROWTH_BYTES_MAX,
        "peak RSS grew by {} MiB for a {} MiB upload",
        growth >> 20,
        UPLOAD_BYTES >> 20
    );
    let head = s3.alice(Call::new("HEAD", "/stream/big"));
    assert_eq!(
        head.header("content-length"),
        Some(UPLOAD_BYTES.to_string().as_str())
    );
}

/// The request head of `call` (signed for `UNSIGNED-PAYLOAD`) with
/// `Expect: 100-continue` and a `Content-Length` of `length`.
fn expect_continue_head(s3: &S3Test, call: Call, length: usize) -> String {
    let target = call.path.clone();
    s3_client::unsigned_payload_head(
        &s3.address.to_string(),
        call,
        &target,
        "Expect: 100-continue\r\n",
        length,
    )
}

#[test]
fn a_request_refused_before_its_body_closes_its_connection() {
    // boto3 sends PutObject with `Expect: 100-continue` and, answered
    // before `100 Continue`, never sends the body: had the connection
    // stayed open, the next request's first bytes would be read as that
    // body (boto3 then saw `SignatureDoesNotMatch`). `Connection: close`
    // tells the client not to reuse it.
    let s3 = S3Test::start();
    s3.bucket("expect");
    assert_eq!(s3.put("expect", "k", b"0123").status, 200);
    let call = Call::new("PUT", "/expect/k").header("if-none-match", "*");
    let head = expect_continue_head(&s3, call, 5);
    let mut stream = TcpStream::connect(s3.address).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    stream.write_all(head.as_bytes()).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let (status, headers) = s3_client::read_response_head(&mut reader);
    assert!(status.contains(" 412 "), "{status}");
    assert!(
        s3_client::head_value(&headers, "connection") == Some("close"),
        "{headers:?}"
    );
    assert_eq!(s3.get("expect", "k").body, b"0123");
}

#[test]
fn a_body_sent_after_100_continue_keeps_the_connection() {
    let s3 = S3Test::start();
    s3.bucket("expect");
    let mut stream = TcpStream::connect(s3.address).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    for (key, body) in [("a", &b"first"[..]), ("b", &b"second body"[..])] {
        let head =
            expect_continue_head(&s3, Call::new("PUT", &format!("/expect/{key}")), body.len());
        stream.write_all(head.as_bytes()).unwrap();
        let mut interim = String::new();
        reader.read_line(&mut interim).unwrap();
        assert!(interim.contains(" 100 "), "{interim}");
        let mut blank = String::new();
        reader.read_line(&mut blank).unwrap();
        stream.write_all(body).unwrap();
        let (status, headers) = s3_client::read_response_head(&mut reader);
        assert!(status.contains(" 200 "), "{status}");
        assert!(
            s3_client::head_value(&headers, "connection") != Some("close"),
            "{headers:?}"
        );
        let length: usize = s3_client::head_value(&headers, "content-length")
            .unwrap()
            .parse()
            .unwrap();
        let mut skip = vec![0; length];
        reader.read_exact(&mut skip).unwrap();
    }
    assert_eq!(s3.get("expect", "b").body, b"second body");
}
