//! Bodies between hyper and the blocking store.
//!
//! Requests: [`BlockingBody`] is the sequence of pieces the store's ingest
//! pulls from, on a blocking-pool thread (hyper's `Bytes`, never copied
//! here). An async task reads the (already de-chunked,
//! signature-checked) s3s stream and hands pieces over a bounded channel,
//! so the socket is read while the store hashes and chunks, and a 1 GiB
//! upload holds a few pieces in memory, never the whole body. It hashes as it
//! goes and, at the end of the body, compares Content-MD5 and every
//! `x-amz-checksum-*` the client declared — in a header or in the
//! aws-chunked trailer — with what arrived. A mismatch fails the read, so
//! the store's ingest fails before it commits anything; the precise S3
//! error (`BadDigest`) waits in a slot for the operation to return.
//!
//! Responses: a small body is read whole on the blocking thread; a large
//! one is fed through a bounded channel by a blocking task, so memory
//! stays at a few pieces however large the object.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use base64::Engine as _;
use bytes::Bytes;
use futures_util::{FutureExt, Stream, StreamExt};
use hyper::HeaderMap;
use md5::{Digest, Md5};
use parking_lot::Mutex;
use s3s::checksum::ChecksumHasher;
use s3s::dto::{Checksum, ChecksumAlgorithm, StreamingBlob};
use s3s::{S3Error, S3ErrorCode, TrailingHeaders};
use tokio::runtime::Handle;
use tokio::sync::mpsc;

use crate::objects::ObjectBody;

/// Bodies up to this size are answered from one buffer; larger ones are
/// streamed through a channel.
pub(super) const WHOLE_BODY_BYTES_MAX: u64 = 1 << 20;

/// Pieces in flight between the blocking reader and the socket.
const BODY_PIECES_IN_FLIGHT: usize = 4;

/// Batches of request pieces read ahead of the store.
const REQUEST_BATCHES_IN_FLIGHT: usize = 4;

/// A batch of request pieces stops growing at this size.
const REQUEST_BATCH_BYTES_MAX: usize = 1 << 20;

/// What a request declares about its body, to be checked at its end.
#[derive(Default)]
pub(super) struct Declared {
    /// Content-MD5 (base64).
    pub(super) content_md5: Option<String>,
    /// `x-amz-checksum-*` headers.
    pub(super) checksums: Checksum,
    /// The algorithm the SDK names (`x-amz-sdk-checksum-algorithm`).
    pub(super) algorithm: Option<ChecksumAlgorithm>,
    /// Where the aws-chunked trailer will appear.
    pub(super) trailers: Option<TrailingHeaders>,
}

impl Declared {
    /// Adds the checksum a trailer names (`x-amz-trailer`) to the
    /// algorithms to compute.
    pub(super) fn with_trailer_names(mut self, headers: &HeaderMap) -> Self {
        if self.algorithm.is_none()
            && let Some(name) = headers.get("x-amz-trailer").and_then(|v| v.to_str().ok())
        {
            let algorithm = name.trim().to_ascii_lowercase();
            let algorithm = algorithm.strip_prefix("x-amz-checksum-").unwrap_or("");
            self.algorithm = Some(ChecksumAlgorithm::from(algorithm.to_ascii_uppercase()));
        }
        self
    }

    fn hasher(&self) -> ChecksumHasher {
        let mut hasher = ChecksumHasher::default();
        let c = &self.checksums;
        let algorithm = self.algorithm.as_ref().map(ChecksumAlgorithm::as_str);
        if c.checksum_crc32.is_some() || algorithm == Some(ChecksumAlgorithm::CRC32) {
            hasher.crc32 = Some(Default::default());
        }
        if c.checksum_crc32c.is_some() || algorithm == Some(ChecksumAlgorithm::CRC32C) {
            hasher.crc32c = Some(Default::default());
        }
        if c.checksum_sha1.is_some() || algorithm == Some(ChecksumAlgorithm::SHA1) {
            hasher.sha1 = Some(Default::default());
        }
        if c.checksum_sha256.is_some() || algorithm == Some(ChecksumAlgorithm::SHA256) {
            hasher.sha256 = Some(Default::default());
        }
        if c.checksum_crc64nvme.is_some() || algorithm == Some(ChecksumAlgorithm::CRC64NVME) {
            hasher.crc64nvme = Some(Default::default());
        }
        hasher
    }
}

/// A request piece as s3s delivers it.
type Piece = Result<Bytes, s3s::StdError>;

/// The pieces that were ready together: one message and at most one
/// wake-up of the store's thread, however small hyper's pieces are.
type PieceBatch = Vec<Piece>;

/// Reads the s3s stream on the runtime and hands its pieces over in
/// batches: after each piece, whatever else is ready without waiting
/// joins it, up to [`REQUEST_BATCH_BYTES_MAX`]. While the store is behind
/// (the channel is full), the socket's data piles up, so batches grow and
/// the threads wake each other once per batch rather than once per piece.
async fn forward_pieces(mut stream: StreamingBlob, sender: mpsc::Sender<PieceBatch>) {
    let mut ended = false;
    while !ended {
        let Some(first) = stream.next().await else {
            break;
        };
        let mut failed = first.is_err();
        let mut bytes = first.as_ref().map_or(0, Bytes::len);
        let mut batch = vec![first];
        while !failed && !ended && bytes < REQUEST_BATCH_BYTES_MAX {
            match stream.next().now_or_never() {
                Some(Some(piece)) => {
                    failed = piece.is_err();
                    bytes += piece.as_ref().map_or(0, Bytes::len);
                    batch.push(piece);
                }
                // The stream ended: it must not be polled again.
                Some(None) => ended = true,
                None => break,
            }
        }
        // A closed channel means the store gave up on the body.
        if sender.send(batch).await.is_err() || failed {
            break;
        }
    }
}

/// The slot where a body's precise failure waits for its operation.
pub(super) type FailureSlot = Arc<Mutex<Option<S3Error>>>;

/// An s3s request body as a blocking iterator of pieces with end-of-body
/// checks.
pub(super) struct BlockingBody {
    batches: mpsc::Receiver<PieceBatch>,
    /// The rest of the batch being read.
    batch: std::vec::IntoIter<Piece>,
    finished: bool,
    md5: Option<Md5>,
    hasher: Option<ChecksumHasher>,
    declared: Declared,
    failure: FailureSlot,
    /// The checksums computed over the whole body, once it ended.
    computed: Arc<Mutex<Option<Checksum>>>,
}

impl BlockingBody {
    pub(super) fn new(stream: StreamingBlob, runtime: &Handle, declared: Declared) -> Self {
        let (sender, batches) = mpsc::channel(REQUEST_BATCHES_IN_FLIGHT);
        runtime.spawn(forward_pieces(stream, sender));
        Self {
            batches,
            batch: Vec::new().into_iter(),
            finished: false,
            md5: declared.content_md5.as_ref().map(|_| Md5::new()),
            hasher: Some(declared.hasher()),
            declared,
            failure: FailureSlot::default(),
            computed: Arc::default(),
        }
    }

    /// Where a failure of this body will be put.
    pub(super) fn failure(&self) -> FailureSlot {
        self.failure.clone()
    }

    /// Where the computed checksums will be put (to echo in the answer).
    pub(super) fn computed(&self) -> Arc<Mutex<Option<Checksum>>> {
        self.computed.clone()
    }

    fn fail(&self, error: S3Error) -> io::Error {
        let message = error.message().unwrap_or("bad request body").to_owned();
        *self.failure.lock() = Some(error);
        io::Error::new(io::ErrorKind::InvalidData, message)
    }

    /// The end-of-body checks.
    fn verify(&mut self) -> io::Result<()> {
        if let (Some(md5), Some(expected)) = (self.md5.take(), &self.declared.content_md5) {
            let actual = base64::engine::general_purpose::STANDARD.encode(md5.finalize());
            if &actual != expected {
                return Err(self.fail(S3Error::with_message(
                    S3ErrorCode::BadDigest,
                    "The Content-MD5 you specified did not match what we received.",
                )));
            }
        }
        let computed = self
            .hasher
            .take()
            .map(ChecksumHasher::finalize)
            .unwrap_or_default();
        let mut expected = self.declared.checksums.clone();
        if let Some(trailers) = self
            .declared
            .trailers
            .as_ref()
            .and_then(TrailingHeaders::take)
        {
            let value = |name: &str| {
                trailers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            };
            expected.checksum_crc32 = expected.checksum_crc32.or(value("x-amz-checksum-crc32"));
            expected.checksum_crc32c = expected.checksum_crc32c.or(value("x-amz-checksum-crc32c"));
            expected.checksum_sha1 = expected.checksum_sha1.or(value("x-amz-checksum-sha1"));
            expected.checksum_sha256 = expected.checksum_sha256.or(value("x-amz-checksum-sha256"));
            expected.checksum_crc64nvme = expected
                .checksum_crc64nvme
                .or(value("x-amz-checksum-crc64nvme"));
        }
        let pairs = [
            ("CRC32", &expected.checksum_crc32, &computed.checksum_crc32),
            (
                "CRC32C",
                &expected.checksum_crc32c,
                &computed.checksum_crc32c,
            ),
            ("SHA1", &expected.checksum_sha1, &computed.checksum_sha1),
            (
                "SHA256",
                &expected.checksum_sha256,
                &computed.checksum_sha256,
            ),
            (
                "CRC64NVME",
                &expected.checksum_crc64nvme,
                &computed.checksum_crc64nvme,
            ),
        ];
        for (name, expected, computed) in pairs {
            if let Some(expected) = expected
                && computed.as_ref() != Some(expected)
            {
                return Err(self.fail(S3Error::with_message(
                    S3ErrorCode::BadDigest,
                    format!("The {name} you specified did not match the calculated checksum."),
                )));
            }
        }
        *self.computed.lock() = Some(computed);
        Ok(())
    }
}

impl Iterator for BlockingBody {
    type Item = io::Result<Bytes>;

    /// The next piece as hyper delivered it (no copy), hashed on the way;
    /// at the end of the body, the end-of-body checks.
    fn next(&mut self) -> Option<Self::Item> {
        if self.finished {
            return None;
        }
        let piece = loop {
            if let Some(piece) = self.batch.next() {
                break Some(piece);
            }
            // The channel closes after the stream's end, when the trailer
            // (if any) has been read and verified by s3s.
            match self.batches.blocking_recv() {
                Some(batch) => self.batch = batch.into_iter(),
                None => break None,
            }
        };
        match piece {
            Some(Ok(piece)) => {
                if let Some(md5) = &mut self.md5 {
                    md5.update(&piece);
                }
                if let Some(hasher) = &mut self.hasher {
                    hasher.update(&piece);
                }
                Some(Ok(piece))
            }
            Some(Err(error)) => {
                self.finished = true;
                Some(Err(self.fail(S3Error::with_message(
                    S3ErrorCode::IncompleteBody,
                    format!("reading the request body failed: {error}"),
                ))))
            }
            None => {
                self.finished = true;
                self.verify().err().map(Err)
            }
        }
    }
}

/// A channel of body pieces as the stream s3s sends.
struct PieceStream(mpsc::Receiver<io::Result<Bytes>>);

impl Stream for PieceStream {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_recv(cx)
    }
}

/// An object body as a response body. Call on a blocking-pool thread: a
/// small body is read here; a large one by a blocking task of its own.
pub(super) fn response_body(body: ObjectBody, runtime: &Handle) -> io::Result<StreamingBlob> {
    if body.remaining() <= WHOLE_BODY_BYTES_MAX {
        let bytes = body.collect().map_err(io::Error::other)?;
        return Ok(StreamingBlob::from(s3s::Body::from(bytes)));
    }
    let (sender, receiver) = mpsc::channel(BODY_PIECES_IN_FLIGHT);
    let mut body = body;
    runtime.spawn_blocking(move || {
        while let Some(piece) = body.next_bytes() {
            let failed = piece.is_err();
            // A closed channel means the client went away: stop reading.
            if sender
                .blocking_send(piece.map_err(io::Error::other))
                .is_err()
                || failed
            {
                break;
            }
        }
    });
    Ok(StreamingBlob::wrap(PieceStream(receiver)))
}
