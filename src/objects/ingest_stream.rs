//! Ingest of a streamed body — pieces from a socket, or from a reader —
//! on three threads, so that a large upload is limited by its slowest
//! stage rather than by the sum of them:
//!
//! - the cutter (a scoped thread) takes each piece as it arrives, copies
//!   it once into a chunk buffer and advances the content-defined cut
//!   search over the new bytes only; a finished chunk leaves as a `Bytes`
//!   view of that buffer (no further copy);
//! - the MD5 thread (only when the bucket wants MD5 ETags) hashes the same
//!   chunks, shared not copied: MD5 costs more than cutting and BLAKE3
//!   together and cannot be split within one body. It gets chunks, not
//!   pieces, so that the threads wake each other once per chunk (~1 MiB),
//!   not once per socket read;
//! - the caller's thread hashes each chunk with BLAKE3 and appends new
//!   chunks to a pack.
//!
//! Memory stays bounded by the channels between them: a few pieces and
//! [`PIPELINE_DEPTH`] chunks, whatever the body's size. When a stage fails
//! the others see their channel close and stop; nothing is committed here.

use std::io::{self, Read};
use std::sync::mpsc;

use bytes::{Bytes, BytesMut};
use md5::{Digest, Md5};

use super::chunker::{Chunker, CutSearch};
use super::error::{Error, Result};
use super::ingest::{IngestPlan, Ingested, PIPELINE_DEPTH};
use super::store::StoreInner;

/// A body as a sequence of pieces.
pub(super) type Pieces = Box<dyn Iterator<Item = io::Result<Bytes>> + Send>;

/// Chunks in flight between the cutter and the MD5 thread. MD5 is the
/// slowest stage, so this channel is usually full: it bounds how far the
/// cutter and the socket run ahead.
const MD5_CHUNKS_IN_FLIGHT: usize = 8;

/// The size of the pieces read from a `Read` body.
const READ_PIECE_BYTES: usize = 256 << 10;

/// A `Read` body as pieces of [`READ_PIECE_BYTES`].
pub(super) struct ReaderPieces {
    reader: Box<dyn Read + Send>,
    ended: bool,
}

impl ReaderPieces {
    pub(super) fn new(reader: Box<dyn Read + Send>) -> Self {
        Self {
            reader,
            ended: false,
        }
    }
}

impl Iterator for ReaderPieces {
    type Item = io::Result<Bytes>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.ended {
            return None;
        }
        let mut piece = vec![0u8; READ_PIECE_BYTES];
        let mut len = 0;
        while len < piece.len() {
            match self.reader.read(&mut piece[len..]) {
                Ok(0) => {
                    self.ended = true;
                    break;
                }
                Ok(read) => len += read,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => {
                    self.ended = true;
                    return Some(Err(error));
                }
            }
        }
        piece.truncate(len);
        (len > 0).then(|| Ok(Bytes::from(piece)))
    }
}

fn body_error(error: &io::Error) -> Error {
    Error::Body(error.to_string())
}

impl StoreInner {
    /// Stores a body that arrives in pieces. A body that ends within
    /// `inline_max` bytes is stored inline (when the plan allows it);
    /// one that ends within the first pieces is chunked on this thread.
    pub(super) fn ingest_pieces(
        &self,
        mut pieces: Pieces,
        plan: IngestPlan<'_>,
        inline_max: usize,
    ) -> Result<Ingested> {
        let mut head = BytesMut::new();
        let mut ended = false;
        while head.len() <= inline_max {
            match pieces.next() {
                None => {
                    ended = true;
                    break;
                }
                Some(Ok(piece)) => head.extend_from_slice(&piece),
                Some(Err(error)) => return Err(body_error(&error)),
            }
        }
        let head = head.freeze();
        if ended {
            if plan.allow_inline && head.len() <= inline_max {
                return self.inline(head, plan);
            }
            return self.ingest_bytes(&head, plan);
        }
        let chunker = self.chunker();
        let chunker = &*chunker;
        let mut sink = self.sink(plan, false);
        let (chunks, received) = mpsc::sync_channel::<Result<Bytes>>(PIPELINE_DEPTH);
        let md5 = std::thread::scope(|scope| -> Result<Option<[u8; 16]>> {
            let (md5_chunks, md5) = if plan.want_md5 {
                let (sender, received) = mpsc::sync_channel::<Bytes>(MD5_CHUNKS_IN_FLIGHT);
                let thread = scope.spawn(move || -> [u8; 16] {
                    let mut md5 = Md5::new();
                    for piece in received {
                        md5.update(&piece);
                    }
                    md5.finalize().into()
                });
                (Some(sender), Some(thread))
            } else {
                (None, None)
            };
            scope.spawn(move || cut_pieces(chunker, head, pieces, &chunks, md5_chunks));
            // Dropping `received` on an error stops the cutter, which stops
            // the MD5 thread.
            for chunk in received {
                sink.push(&chunk?)?;
            }
            md5.map(|thread| thread.join())
                .transpose()
                .map_err(|_| Error::Body("the MD5 thread panicked".into()))
        })?;
        Ok(sink.finish(md5))
    }
}

/// The cutter: cuts `head` and then every piece into chunks, sent in order
/// to the MD5 thread (if any) and to `chunks`. Stops at the body's end,
/// at a failed piece (sent on as an error), or when a consumer hangs up.
fn cut_pieces(
    chunker: &Chunker,
    head: Bytes,
    pieces: Pieces,
    chunks: &mpsc::SyncSender<Result<Bytes>>,
    md5: Option<mpsc::SyncSender<Bytes>>,
) {
    let mut buffer = BytesMut::new();
    let mut search = CutSearch::default();
    for piece in std::iter::once(Ok(head)).chain(pieces) {
        let piece = match piece {
            Ok(piece) => piece,
            Err(error) => {
                let _ = chunks.send(Err(body_error(&error)));
                return;
            }
        };
        if buffer.capacity() - buffer.len() < piece.len() {
            // A fresh buffer with room for a few chunks: only the start of
            // the current chunk moves, and chunks already sent keep the old
            // buffer alive only as long as they are in flight.
            let mut fresh = BytesMut::with_capacity(buffer.len() + piece.len() + 2 * chunker.max());
            fresh.extend_from_slice(&buffer);
            buffer = fresh;
        }
        buffer.extend_from_slice(&piece);
        while let Some(len) = chunker.cut_incremental(&buffer, &mut search) {
            search = CutSearch::default();
            if !send_chunk(buffer.split_to(len).freeze(), chunks, md5.as_ref()) {
                return;
            }
        }
    }
    if !buffer.is_empty() {
        send_chunk(buffer.freeze(), chunks, md5.as_ref());
    }
}

/// Sends a chunk to the MD5 thread (if any) and the sink; false if either
/// hung up.
fn send_chunk(
    chunk: Bytes,
    chunks: &mpsc::SyncSender<Result<Bytes>>,
    md5: Option<&mpsc::SyncSender<Bytes>>,
) -> bool {
    md5.is_none_or(|md5| md5.send(chunk.clone()).is_ok()) && chunks.send(Ok(chunk)).is_ok()
}

#[cfg(test)]
mod tests {
    use std::io;

    use bytes::Bytes;

    use crate::Database;
    use crate::objects::{ByteStream, Error, ObjectStoreOptions};
    use crate::storage::sim::SimRng;

    fn database() -> Database {
        let db = Database::memory().unwrap();
        let objects = db.objects();
        objects
            .set_options(ObjectStoreOptions {
                chunk_bytes_min: 1024,
                chunk_bytes_avg: 4096,
                chunk_bytes_max: 16384,
                ..objects.options()
            })
            .unwrap();
        objects.create_bucket("blake").send().unwrap();
        objects
            .create_bucket("md5")
            .md5_e_tags(true)
            .send()
            .unwrap();
        db
    }

    /// `body` as pieces of random sizes (some empty, some larger than a chunk).
    fn pieces(body: &Bytes, seed: u64) -> impl Iterator<Item = io::Result<Bytes>> + Send + use<> {
        let mut rng = SimRng::new(seed);
        let mut cuts = Vec::new();
        let mut offset = 0;
        while offset < body.len() {
            let len = rng.below_usize(40_000).min(body.len() - offset);
            cuts.push(body.slice(offset..offset + len));
            offset += len;
        }
        cuts.into_iter().map(Ok)
    }

    #[test]
    fn pieces_store_exactly_what_bytes_store() {
        let db = database();
        let objects = db.objects();
        for (len, seed) in [(0, 1), (100, 2), (5000, 3), (300_000, 4), (1 << 20, 5)] {
            let mut body = vec![0u8; len];
            SimRng::new(seed).fill(&mut body);
            let body = Bytes::from(body);
            for bucket in ["blake", "md5"] {
                let whole = objects
                    .put_object(bucket, "whole")
                    .body(body.clone())
                    .send()
                    .unwrap();
                let streamed = objects
                    .put_object(bucket, "streamed")
                    .body(ByteStream::from_pieces(pieces(&body, seed)))
                    .send()
                    .unwrap();
                // The default ETag hashes the chunk hashes: equal ETags
                // mean equal chunk boundaries, so the bodies deduplicate.
                assert_eq!(streamed.e_tag, whole.e_tag, "{bucket}, {len} bytes");
                assert_eq!(streamed.size, len as u64);
                let read = objects
                    .get_object(bucket, "streamed")
                    .send()
                    .unwrap()
                    .body
                    .collect()
                    .unwrap();
                assert_eq!(read, body);
            }
        }
    }

    #[test]
    fn a_failing_piece_fails_the_put_and_stores_nothing() {
        let db = database();
        let objects = db.objects();
        let good = Bytes::from(vec![7u8; 200_000]);
        let failing = [
            Ok(good.clone()),
            Ok(good),
            Err(io::Error::other("connection reset")),
        ];
        let put = objects
            .put_object("md5", "broken")
            .body(ByteStream::from_pieces(failing.into_iter()))
            .send();
        assert!(matches!(put, Err(Error::Body(_))), "{put:?}");
        assert!(matches!(
            objects.head_object("md5", "broken").send(),
            Err(Error::NoSuchKey { .. })
        ));
    }
}
