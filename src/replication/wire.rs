//! The byte encoding of the protocol's [`Message`]s for transports that
//! leave the process (TCP): `from | to | tag | fields`, integers big-endian,
//! byte strings and lists prefixed by a u32 count.
//!
//! Decoding is total: truncated input, an unknown tag or ack level, a count
//! larger than the bytes that remain, bad UTF-8 or trailing bytes are a
//! [`WireError`], never a panic or a huge allocation. Frame checksums are
//! carried, not checked, here: the follower checks them (`Frame::is_intact`)
//! exactly as it does for in-process delivery.

use bytes::Bytes;

use super::frame::{AckLevel, Frame, Message, NodeId, Progress};

/// Why bytes are not a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed replication message: {0}")]
pub struct WireError(pub(crate) &'static str);

const FRAME: u8 = 1;
const HEARTBEAT: u8 = 2;
const WELCOME: u8 = 3;
const SUBSCRIBE: u8 = 4;
const ACK: u8 = 5;
const FENCED: u8 = 6;
const NEED_SNAPSHOT: u8 = 7;
const SNAPSHOT_REQUEST: u8 = 8;
const SNAPSHOT_CHUNK: u8 = 9;
const SNAPSHOT_GONE: u8 = 10;
const CHUNK: u8 = 11;

/// Encodes `message` from `from` to `to`, appending to `out`.
pub(crate) fn encode(from: NodeId, to: NodeId, message: &Message, out: &mut Vec<u8>) {
    put_u64(out, from);
    put_u64(out, to);
    match message {
        Message::Frame(frame) => {
            out.push(FRAME);
            put_u64(out, frame.epoch);
            put_u64(out, frame.sequence);
            put_u64(out, frame.last_sequence);
            put_u64(out, frame.checksum);
            out.push(match frame.ack {
                None => 0,
                Some(AckLevel::Received) => 1,
                Some(AckLevel::Written) => 2,
                Some(AckLevel::Durable) => 3,
                Some(AckLevel::Applied) => 4,
            });
            put_bytes(out, &frame.payload);
        }
        Message::Heartbeat {
            epoch,
            last_sequence,
        } => {
            out.push(HEARTBEAT);
            put_u64(out, *epoch);
            put_u64(out, *last_sequence);
        }
        Message::Welcome {
            epoch,
            starts,
            lineage,
        } => {
            out.push(WELCOME);
            put_u64(out, *epoch);
            put_starts(out, starts);
            put_u64(out, *lineage);
        }
        Message::Subscribe {
            epoch,
            last_sequence,
            last_checksum,
            lineage,
        } => {
            out.push(SUBSCRIBE);
            put_u64(out, *epoch);
            put_u64(out, *last_sequence);
            match last_checksum {
                None => out.push(0),
                Some(checksum) => {
                    out.push(1);
                    put_u64(out, *checksum);
                }
            }
            put_u64(out, *lineage);
        }
        Message::Ack { epoch, progress } => {
            out.push(ACK);
            put_u64(out, *epoch);
            put_u64(out, progress.received);
            put_u64(out, progress.written);
            put_u64(out, progress.durable);
            put_u64(out, progress.applied);
        }
        Message::Fenced { epoch } => {
            out.push(FENCED);
            put_u64(out, *epoch);
        }
        Message::NeedSnapshot {
            id,
            epoch,
            files,
            starts,
            lineage,
        } => {
            out.push(NEED_SNAPSHOT);
            put_u64(out, *id);
            put_u64(out, *epoch);
            put_u32(out, *files);
            put_starts(out, starts);
            put_u64(out, *lineage);
        }
        Message::SnapshotRequest { id, file, offset } => {
            out.push(SNAPSHOT_REQUEST);
            put_u64(out, *id);
            put_u32(out, *file);
            put_u64(out, *offset);
        }
        Message::SnapshotChunk {
            id,
            file,
            name,
            offset,
            file_len,
            data,
        } => {
            out.push(SNAPSHOT_CHUNK);
            put_u64(out, *id);
            put_u32(out, *file);
            put_bytes(out, name.as_bytes());
            put_u64(out, *offset);
            put_u64(out, *file_len);
            put_bytes(out, data);
        }
        Message::SnapshotGone { id } => {
            out.push(SNAPSHOT_GONE);
            put_u64(out, *id);
        }
        Message::Chunk {
            epoch,
            tier,
            hash,
            pack,
            offset,
            entry,
        } => {
            out.push(CHUNK);
            put_u64(out, *epoch);
            out.push(*tier);
            out.extend_from_slice(hash);
            put_u64(out, *pack);
            put_u64(out, *offset);
            put_bytes(out, entry);
        }
    }
}

/// Decodes one whole message: `(from, to, message)`.
pub(crate) fn decode(bytes: &[u8]) -> Result<(NodeId, NodeId, Message), WireError> {
    let mut r = Reader { bytes };
    let from = r.u64()?;
    let to = r.u64()?;
    let message = match r.u8()? {
        FRAME => {
            let epoch = r.u64()?;
            let sequence = r.u64()?;
            let last_sequence = r.u64()?;
            let checksum = r.u64()?;
            let ack = match r.u8()? {
                0 => None,
                1 => Some(AckLevel::Received),
                2 => Some(AckLevel::Written),
                3 => Some(AckLevel::Durable),
                4 => Some(AckLevel::Applied),
                _ => return Err(WireError("unknown ack level")),
            };
            Message::Frame(Frame {
                epoch,
                sequence,
                last_sequence,
                checksum,
                payload: r.bytes()?.to_vec(),
                ack,
            })
        }
        HEARTBEAT => Message::Heartbeat {
            epoch: r.u64()?,
            last_sequence: r.u64()?,
        },
        WELCOME => Message::Welcome {
            epoch: r.u64()?,
            starts: r.starts()?,
            lineage: r.u64()?,
        },
        SUBSCRIBE => Message::Subscribe {
            epoch: r.u64()?,
            last_sequence: r.u64()?,
            last_checksum: match r.u8()? {
                0 => None,
                1 => Some(r.u64()?),
                _ => return Err(WireError("bad option flag")),
            },
            lineage: r.u64()?,
        },
        ACK => Message::Ack {
            epoch: r.u64()?,
            progress: Progress {
                received: r.u64()?,
                written: r.u64()?,
                durable: r.u64()?,
                applied: r.u64()?,
            },
        },
        FENCED => Message::Fenced { epoch: r.u64()? },
        NEED_SNAPSHOT => Message::NeedSnapshot {
            id: r.u64()?,
            epoch: r.u64()?,
            files: r.u32()?,
            starts: r.starts()?,
            lineage: r.u64()?,
        },
        SNAPSHOT_REQUEST => Message::SnapshotRequest {
            id: r.u64()?,
            file: r.u32()?,
            offset: r.u64()?,
        },
        SNAPSHOT_CHUNK => Message::SnapshotChunk {
            id: r.u64()?,
            file: r.u32()?,
            name: String::from_utf8(r.bytes()?.to_vec())
                .map_err(|_| WireError("file name is not UTF-8"))?,
            offset: r.u64()?,
            file_len: r.u64()?,
            data: r.bytes()?.to_vec(),
        },
        SNAPSHOT_GONE => Message::SnapshotGone { id: r.u64()? },
        CHUNK => Message::Chunk {
            epoch: r.u64()?,
            tier: r.u8()?,
            hash: r.hash()?,
            pack: r.u64()?,
            offset: r.u64()?,
            entry: Bytes::copy_from_slice(r.bytes()?),
        },
        _ => return Err(WireError("unknown message tag")),
    };
    if !r.bytes.is_empty() {
        return Err(WireError("trailing bytes"));
    }
    Ok((from, to, message))
}

fn put_u64(out: &mut Vec<u8>, value: u64) {
    out.extend_from_slice(&value.to_be_bytes());
}

fn put_u32(out: &mut Vec<u8>, value: u32) {
    out.extend_from_slice(&value.to_be_bytes());
}

/// A length-prefixed byte string. Lengths beyond u32 cannot occur: the
/// transport refuses frames that large before they are encoded.
fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_u32(out, u32::try_from(bytes.len()).unwrap_or(u32::MAX));
    out.extend_from_slice(bytes);
}

fn put_starts(out: &mut Vec<u8>, starts: &[(u64, u64)]) {
    put_u32(out, u32::try_from(starts.len()).unwrap_or(u32::MAX));
    for &(epoch, first) in starts {
        put_u64(out, epoch);
        put_u64(out, first);
    }
}

/// A cursor over the bytes still to decode.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if n > self.bytes.len() {
            return Err(WireError("truncated"));
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, WireError> {
        let mut buf = [0u8; 4];
        buf.copy_from_slice(self.take(4)?);
        Ok(u32::from_be_bytes(buf))
    }

    fn u64(&mut self) -> Result<u64, WireError> {
        let mut buf = [0u8; 8];
        buf.copy_from_slice(self.take(8)?);
        Ok(u64::from_be_bytes(buf))
    }

    fn hash(&mut self) -> Result<[u8; 32], WireError> {
        let mut buf = [0u8; 32];
        buf.copy_from_slice(self.take(32)?);
        Ok(buf)
    }

    fn bytes(&mut self) -> Result<&'a [u8], WireError> {
        let len = self.u32()? as usize;
        self.take(len)
    }

    fn starts(&mut self) -> Result<Vec<(u64, u64)>, WireError> {
        let count = self.u32()? as usize;
        // Checked against what remains before allocating: a forged count
        // must not reserve gigabytes.
        if count > self.bytes.len() / 16 {
            return Err(WireError("list longer than the message"));
        }
        let mut starts = Vec::with_capacity(count);
        for _ in 0..count {
            starts.push((self.u64()?, self.u64()?));
        }
        Ok(starts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_message() -> Vec<Message> {
        vec![
            Message::Frame(Frame {
                epoch: 2,
                sequence: 10,
                last_sequence: 12,
                checksum: 0xdead_beef,
                payload: vec![1, 2, 3],
                ack: Some(AckLevel::Durable),
            }),
            Message::Frame(Frame {
                epoch: 1,
                sequence: 1,
                last_sequence: 1,
                checksum: 7,
                payload: Vec::new(),
                ack: None,
            }),
            Message::Heartbeat {
                epoch: 3,
                last_sequence: 99,
            },
            Message::Chunk {
                epoch: 2,
                tier: 1,
                hash: [7; 32],
                pack: 12,
                offset: 4096,
                entry: Bytes::from_static(b"entry bytes"),
            },
            Message::Chunk {
                epoch: 2,
                tier: 0,
                hash: [0; 32],
                pack: 1,
                offset: 16,
                entry: Bytes::new(),
            },
            Message::Welcome {
                epoch: 4,
                starts: vec![(1, 1), (4, 50)],
                lineage: 0x1234_5678_9abc_def0,
            },
            Message::Subscribe {
                epoch: 1,
                last_sequence: 5,
                last_checksum: Some(42),
                lineage: 7,
            },
            Message::Subscribe {
                epoch: 0,
                last_sequence: 0,
                last_checksum: None,
                lineage: 0,
            },
            Message::Ack {
                epoch: 2,
                progress: Progress {
                    received: 9,
                    written: 8,
                    durable: 7,
                    applied: 6,
                },
            },
            Message::Fenced { epoch: 5 },
            Message::NeedSnapshot {
                id: 11,
                epoch: 2,
                files: 3,
                starts: vec![(2, 1)],
                lineage: u64::MAX,
            },
            Message::SnapshotRequest {
                id: 11,
                file: 1,
                offset: 4096,
            },
            Message::SnapshotChunk {
                id: 11,
                file: 1,
                name: "000001.seg".into(),
                offset: 0,
                file_len: 3,
                data: vec![9, 9, 9],
            },
            Message::SnapshotGone { id: 11 },
        ]
    }

    #[test]
    fn every_message_round_trips() {
        for (i, message) in every_message().into_iter().enumerate() {
            let mut bytes = Vec::new();
            encode(i as u64, 100 + i as u64, &message, &mut bytes);
            assert_eq!(decode(&bytes).unwrap(), (i as u64, 100 + i as u64, message));
        }
    }

    #[test]
    fn every_truncation_and_extension_is_an_error() {
        for message in every_message() {
            let mut bytes = Vec::new();
            encode(1, 2, &message, &mut bytes);
            for cut in 0..bytes.len() {
                assert!(decode(&bytes[..cut]).is_err(), "{message:?} cut at {cut}");
            }
            bytes.push(0);
            assert_eq!(decode(&bytes), Err(WireError("trailing bytes")));
        }
    }

    #[test]
    fn bad_tags_levels_and_counts_are_errors() {
        let mut bytes = Vec::new();
        put_u64(&mut bytes, 1);
        put_u64(&mut bytes, 2);
        let header = bytes.clone();
        bytes.push(200);
        assert_eq!(decode(&bytes), Err(WireError("unknown message tag")));

        let mut frame = Vec::new();
        encode(1, 2, &every_message()[0], &mut frame);
        frame[16 + 1 + 32] = 9;
        assert_eq!(decode(&frame), Err(WireError("unknown ack level")));

        let mut welcome = header;
        welcome.push(WELCOME);
        put_u64(&mut welcome, 1);
        put_u32(&mut welcome, u32::MAX);
        assert_eq!(
            decode(&welcome),
            Err(WireError("list longer than the message"))
        );
    }
}
