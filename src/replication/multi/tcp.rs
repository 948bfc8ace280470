//! [`TcpTransport`]: the protocol's messages over TCP (std::net), for
//! replicas in separate processes. Each message is one frame: a u32
//! big-endian length, then the message (see `encode_message`). A replica
//! listens on its address and opens one connection per peer on first send;
//! a failed connection or write drops the message and the connection (the
//! protocol repeats what is not acknowledged), and a malformed or oversized
//! frame closes the connection it came on, never the process.

use std::collections::{HashMap, VecDeque};
use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::{Mutex, RwLock};

use super::clock::{ReplicaId, Timestamp};
use super::error::{Error, Result};
use super::rows::{Change, Reader, decode_entry, encode_entry};
use super::transport::{Message, Transport, Waker};
use crate::replication::tcp::{FrameRead, read_frame};
use crate::value::encode_item;

/// The largest frame accepted: a `Changes` message holds at most
/// `SEND_CHANGES_MAX` items of at most 400 KB each, well under this.
pub const MAX_FRAME_BYTES: usize = 256 << 20;
/// How long a send waits to connect to a peer.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

// Tags 1 (Changes), 2 (Ack) and 4 (Copy) were the layouts before
// incarnation ids; they are refused (an unknown tag), never misread.
const COPY_REQUEST_TAG: u8 = 3;
const CHANGES_TAG: u8 = 5;
const ACK_TAG: u8 = 6;
const COPY_TAG: u8 = 7;

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(bytes);
}

/// Appends `changes` as a count and length-prefixed outbox entries.
fn put_changes(out: &mut Vec<u8>, changes: &[Change]) {
    out.extend_from_slice(&(changes.len() as u32).to_be_bytes());
    for change in changes {
        let item = change.item.as_ref().map(|item| {
            let mut bytes = Vec::new();
            encode_item(item, &mut bytes);
            bytes
        });
        let entry = encode_entry(&change.table, &change.key, change.version, item.as_deref());
        out.extend_from_slice(&change.seq.to_be_bytes());
        put_bytes(out, &entry);
    }
}

/// Reads what `put_changes` wrote; the count never reserves memory (each
/// change is read before it is stored).
fn read_changes(reader: &mut Reader<'_>) -> Result<Vec<Change>> {
    let count = reader.u32()?;
    let mut changes: Vec<Change> = Vec::new();
    for _ in 0..count {
        let seq = reader.u64()?;
        let len = reader.u32()? as usize;
        changes.push(decode_entry(seq, reader.take(len)?)?);
    }
    Ok(changes)
}

fn read_bytes(reader: &mut Reader<'_>) -> Result<Vec<u8>> {
    let len = reader.u32()? as usize;
    Ok(reader.take(len)?.to_vec())
}

fn read_table(reader: &mut Reader<'_>) -> Result<String> {
    String::from_utf8(read_bytes(reader)?)
        .map_err(|_| Error::corruption("replication message", "table name is not UTF-8"))
}

/// Encodes a message (without the frame length).
pub(crate) fn encode_message(message: &Message) -> Vec<u8> {
    let mut out = Vec::new();
    match message {
        Message::Changes {
            from,
            to,
            after,
            through,
            stable,
            incarnation,
            acknowledged,
            changes,
        } => {
            out.push(CHANGES_TAG);
            out.extend_from_slice(&from.0.to_be_bytes());
            out.extend_from_slice(&to.0.to_be_bytes());
            out.extend_from_slice(&after.to_be_bytes());
            out.extend_from_slice(&through.to_be_bytes());
            out.extend_from_slice(&stable.wall_millis.to_be_bytes());
            out.extend_from_slice(&stable.logical.to_be_bytes());
            out.extend_from_slice(&incarnation.to_be_bytes());
            out.extend_from_slice(&acknowledged.wall_millis.to_be_bytes());
            out.extend_from_slice(&acknowledged.logical.to_be_bytes());
            put_changes(&mut out, changes);
        }
        Message::Ack {
            from,
            to,
            incarnation,
            origin_incarnation,
            applied_through,
        } => {
            out.push(ACK_TAG);
            out.extend_from_slice(&from.0.to_be_bytes());
            out.extend_from_slice(&to.0.to_be_bytes());
            out.extend_from_slice(&incarnation.to_be_bytes());
            out.extend_from_slice(&origin_incarnation.to_be_bytes());
            out.extend_from_slice(&applied_through.to_be_bytes());
        }
        Message::CopyRequest {
            from,
            to,
            copy_id,
            table,
            after,
        } => {
            out.push(COPY_REQUEST_TAG);
            out.extend_from_slice(&from.0.to_be_bytes());
            out.extend_from_slice(&to.0.to_be_bytes());
            out.extend_from_slice(&copy_id.to_be_bytes());
            put_bytes(&mut out, table.as_bytes());
            put_bytes(&mut out, after);
        }
        Message::Copy {
            from,
            to,
            copy_id,
            table,
            after,
            next,
            through,
            stable,
            incarnation,
            items,
        } => {
            out.push(COPY_TAG);
            out.extend_from_slice(&from.0.to_be_bytes());
            out.extend_from_slice(&to.0.to_be_bytes());
            out.extend_from_slice(&copy_id.to_be_bytes());
            put_bytes(&mut out, table.as_bytes());
            put_bytes(&mut out, after);
            match next {
                Some(next) => {
                    out.push(1);
                    put_bytes(&mut out, next);
                }
                None => out.push(0),
            }
            out.extend_from_slice(&through.to_be_bytes());
            out.extend_from_slice(&stable.wall_millis.to_be_bytes());
            out.extend_from_slice(&stable.logical.to_be_bytes());
            out.extend_from_slice(&incarnation.to_be_bytes());
            put_changes(&mut out, items);
        }
    }
    out
}

/// Decodes a message; malformed bytes are an error, never a panic.
pub(crate) fn decode_message(bytes: &[u8]) -> Result<Message> {
    let mut reader = Reader::new(bytes, "replication message");
    let tag = reader.take(1)?[0];
    let from = ReplicaId(reader.u64()?);
    let to = ReplicaId(reader.u64()?);
    let message = match tag {
        CHANGES_TAG => {
            let after = reader.u64()?;
            let through = reader.u64()?;
            let stable: Timestamp = reader.timestamp()?;
            let incarnation = reader.u64()?;
            let acknowledged = reader.timestamp()?;
            let changes = read_changes(&mut reader)?;
            Message::Changes {
                from,
                to,
                after,
                through,
                stable,
                incarnation,
                acknowledged,
                changes,
            }
        }
        ACK_TAG => Message::Ack {
            from,
            to,
            incarnation: reader.u64()?,
            origin_incarnation: reader.u64()?,
            applied_through: reader.u64()?,
        },
        COPY_REQUEST_TAG => Message::CopyRequest {
            from,
            to,
            copy_id: reader.u64()?,
            table: read_table(&mut reader)?,
            after: read_bytes(&mut reader)?,
        },
        COPY_TAG => {
            let copy_id = reader.u64()?;
            let table = read_table(&mut reader)?;
            let after = read_bytes(&mut reader)?;
            let next = match reader.take(1)?[0] {
                0 => None,
                1 => Some(read_bytes(&mut reader)?),
                _ => {
                    return Err(Error::corruption(
                        "replication message",
                        "flag is neither 0 nor 1",
                    ));
                }
            };
            let through = reader.u64()?;
            let stable = reader.timestamp()?;
            let incarnation = reader.u64()?;
            let items = read_changes(&mut reader)?;
            Message::Copy {
                from,
                to,
                copy_id,
                table,
                after,
                next,
                through,
                stable,
                incarnation,
                items,
            }
        }
        _ => return Err(Error::corruption("replication message", "unknown tag")),
    };
    reader.end()?;
    Ok(message)
}

struct Shared {
    me: ReplicaId,
    inbox: Mutex<VecDeque<Message>>,
    waker: RwLock<Option<Waker>>,
    stopped: AtomicBool,
}

/// Messages over TCP between replicas at known addresses.
pub struct TcpTransport {
    shared: Arc<Shared>,
    local: SocketAddr,
    peers: HashMap<ReplicaId, SocketAddr>,
    connections: Mutex<HashMap<ReplicaId, TcpStream>>,
}

impl std::fmt::Debug for TcpTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpTransport")
            .field("me", &self.shared.me)
            .field("local", &self.local)
            .field("peers", &self.peers)
            .finish_non_exhaustive()
    }
}

impl TcpTransport {
    /// Listens on `listen` as replica `me` (port 0 picks a free port; see
    /// [`Self::local_addr`]) and sends to `peers` at their addresses.
    pub fn bind(
        me: ReplicaId,
        listen: SocketAddr,
        peers: impl IntoIterator<Item = (ReplicaId, SocketAddr)>,
    ) -> io::Result<Arc<Self>> {
        let listener = TcpListener::bind(listen)?;
        let local = listener.local_addr()?;
        let shared = Arc::new(Shared {
            me,
            inbox: Mutex::new(VecDeque::new()),
            waker: RwLock::new(None),
            stopped: AtomicBool::new(false),
        });
        let accepting = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("nimbus-multi-tcp-accept".into())
            .spawn(move || accept_loop(&listener, &accepting))?;
        Ok(Arc::new(Self {
            shared,
            local,
            peers: peers.into_iter().collect(),
            connections: Mutex::new(HashMap::new()),
        }))
    }

    /// The address this replica listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Stops accepting and reading (also on drop).
    pub fn shutdown(&self) {
        if !self.shared.stopped.swap(true, Ordering::AcqRel) {
            // Wakes the accept loop so it sees the flag.
            let _ = TcpStream::connect_timeout(&self.local, CONNECT_TIMEOUT);
            for (_, stream) in self.connections.lock().drain() {
                let _ = stream.shutdown(std::net::Shutdown::Both);
            }
        }
    }
}

impl Drop for TcpTransport {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stopped.load(Ordering::Acquire) {
            return;
        }
        let Ok(stream) = stream else { continue };
        let reading = Arc::clone(shared);
        // A connection that cannot get a thread is simply closed.
        let _ = std::thread::Builder::new()
            .name("nimbus-multi-tcp-read".into())
            .spawn(move || read_loop(stream, &reading));
    }
}

fn read_loop(mut stream: TcpStream, shared: &Shared) {
    while !shared.stopped.load(Ordering::Acquire) {
        // The buffer grows with the bytes that arrive, not to the declared
        // length: a forged length cannot reserve 256 MiB.
        let FrameRead::Frame(frame) = read_frame(&mut stream, MAX_FRAME_BYTES) else {
            return;
        };
        let Ok(message) = decode_message(&frame) else {
            return;
        };
        if message.to() != shared.me {
            continue;
        }
        shared.inbox.lock().push_back(message);
        if let Some(waker) = shared.waker.read().clone() {
            waker();
        }
    }
}

impl Transport for TcpTransport {
    fn send(&self, message: Message) {
        let to = message.to();
        let Some(addr) = self.peers.get(&to) else {
            return;
        };
        let payload = encode_message(&message);
        let mut frame = Vec::with_capacity(4 + payload.len());
        frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        frame.extend_from_slice(&payload);
        let mut connections = self.connections.lock();
        let stream = match connections.entry(to) {
            std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
            std::collections::hash_map::Entry::Vacant(entry) => {
                match TcpStream::connect_timeout(addr, CONNECT_TIMEOUT) {
                    Ok(stream) => {
                        let _ = stream.set_nodelay(true);
                        entry.insert(stream)
                    }
                    Err(_) => return,
                }
            }
        };
        if stream.write_all(&frame).is_err() {
            connections.remove(&to);
        }
    }

    fn receive(&self, replica: ReplicaId, limit: usize) -> Vec<Message> {
        if replica != self.shared.me {
            return Vec::new();
        }
        let mut inbox = self.shared.inbox.lock();
        let n = inbox.len().min(limit);
        inbox.drain(..n).collect()
    }

    fn set_waker(&self, replica: ReplicaId, waker: Waker) {
        if replica == self.shared.me {
            *self.shared.waker.write() = Some(waker);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::item;
    use crate::replication::multi::Version;

    fn changes() -> Message {
        Message::Changes {
            from: ReplicaId(1),
            to: ReplicaId(2),
            after: 3,
            through: 9,
            stable: Timestamp {
                wall_millis: 77,
                logical: 1,
            },
            incarnation: 1_800_000_000_123,
            acknowledged: Timestamp {
                wall_millis: 60,
                logical: 3,
            },
            changes: vec![
                Change {
                    seq: 4,
                    table: "Users".into(),
                    key: item! { "id" => "a" },
                    version: Version {
                        timestamp: Timestamp {
                            wall_millis: 70,
                            logical: 0,
                        },
                        replica: ReplicaId(1),
                    },
                    item: Some(item! { "id" => "a", "n" => 1 }),
                },
                Change {
                    seq: 6,
                    table: "Users".into(),
                    key: item! { "id" => "b" },
                    version: Version {
                        timestamp: Timestamp {
                            wall_millis: 71,
                            logical: 0,
                        },
                        replica: ReplicaId(1),
                    },
                    item: None,
                },
            ],
        }
    }

    fn copy_page(next: Option<Vec<u8>>) -> Message {
        let Message::Changes { changes, .. } = changes() else {
            unreachable!("changes() builds a Changes message")
        };
        Message::Copy {
            from: ReplicaId(1),
            to: ReplicaId(3),
            copy_id: 41,
            table: "Users".into(),
            after: vec![0, 1, 0xFF],
            next,
            through: 12,
            stable: Timestamp {
                wall_millis: 80,
                logical: 2,
            },
            incarnation: 1_800_000_000_456,
            items: changes
                .into_iter()
                .map(|c| Change { seq: 0, ..c })
                .collect(),
        }
    }

    #[test]
    fn messages_round_trip_and_truncations_are_errors() {
        let ack = Message::Ack {
            from: ReplicaId(2),
            to: ReplicaId(1),
            incarnation: 5,
            origin_incarnation: 7,
            applied_through: 9,
        };
        let request = Message::CopyRequest {
            from: ReplicaId(3),
            to: ReplicaId(1),
            copy_id: 41,
            table: "Users".into(),
            after: Vec::new(),
        };
        for message in [
            changes(),
            ack,
            request,
            copy_page(Some(vec![7; 20])),
            copy_page(None),
        ] {
            let bytes = encode_message(&message);
            assert_eq!(decode_message(&bytes).unwrap(), message);
            for cut in 0..bytes.len() {
                assert!(decode_message(&bytes[..cut]).is_err(), "cut at {cut}");
            }
        }
        assert!(decode_message(&[9; 40]).is_err());
    }

    #[test]
    fn layouts_from_before_incarnations_are_refused_not_misread() {
        // An Ack of the old layout (tag 2: from, to, applied_through) and
        // a Changes of the old layout (tag 1) with no changes.
        let mut old_ack = vec![2];
        for field in [2u64, 1, 9] {
            old_ack.extend_from_slice(&field.to_be_bytes());
        }
        assert!(decode_message(&old_ack).is_err());
        let mut old_changes = vec![1];
        for field in [1u64, 2, 3, 9, 77] {
            old_changes.extend_from_slice(&field.to_be_bytes());
        }
        old_changes.extend_from_slice(&[0; 4 + 4]);
        assert!(decode_message(&old_changes).is_err());
        // The incarnations are where the layout says.
        let bytes = encode_message(&Message::Ack {
            from: ReplicaId(2),
            to: ReplicaId(1),
            incarnation: 5,
            origin_incarnation: 7,
            applied_through: 9,
        });
        assert_eq!(bytes.len(), 1 + 8 * 5);
        assert_eq!(bytes[17..25], 5u64.to_be_bytes());
        assert_eq!(bytes[25..33], 7u64.to_be_bytes());
    }

    #[test]
    fn a_forged_change_count_or_entry_length_is_an_error_not_an_allocation() {
        let mut bytes = encode_message(&changes());
        // The count sits after tag, from, to, after, through, stable,
        // incarnation and acknowledged.
        let count_at = 1 + 8 * 4 + 12 + 8 + 12;
        bytes[count_at..count_at + 4].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(decode_message(&bytes).is_err());
        let mut bytes = encode_message(&changes());
        // The first entry's length, after its sequence number.
        let len_at = count_at + 4 + 8;
        bytes[len_at..len_at + 4].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(decode_message(&bytes).is_err());
    }

    #[test]
    fn a_forged_copy_page_is_an_error_not_a_panic_or_an_allocation() {
        let bytes = encode_message(&copy_page(None));
        // tag, from, to, copy id, table (len + 5), after (len + 3).
        let next_at = 1 + 8 * 3 + (4 + 5) + (4 + 3);
        assert_eq!(bytes[next_at], 0);
        let mut bad_flag = bytes.clone();
        bad_flag[next_at] = 2;
        assert!(decode_message(&bad_flag).is_err());
        let count_at = next_at + 1 + 8 + 12 + 8;
        let mut forged = bytes.clone();
        forged[count_at..count_at + 4].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(decode_message(&forged).is_err());
        let mut long_table = bytes.clone();
        long_table[25..29].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(decode_message(&long_table).is_err());
        let mut not_utf8 = bytes;
        not_utf8[29] = 0xFF;
        assert!(decode_message(&not_utf8).is_err());
    }

    #[test]
    fn messages_cross_loopback() {
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let two = TcpTransport::bind(ReplicaId(2), any, []).unwrap();
        let one =
            TcpTransport::bind(ReplicaId(1), any, [(ReplicaId(2), two.local_addr())]).unwrap();
        let (sender, arrived) = std::sync::mpsc::channel();
        let sender = Mutex::new(sender);
        two.set_waker(
            ReplicaId(2),
            Arc::new(move || {
                let _ = sender.lock().send(());
            }),
        );
        one.send(changes());
        arrived.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(two.receive(ReplicaId(2), 10), vec![changes()]);
    }
}
