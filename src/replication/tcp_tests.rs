//! [`TcpTransport`] on 127.0.0.1: two transports exchange messages, bad
//! frames close only their connection, a moved peer is reached again, and
//! a primary and a synchronous standby replicate over it.

use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use super::*;
use crate::replication::{AckLevel, Frame, NodeOptions, Quorum, ReplicationNode, Role, SyncPolicy};
use crate::storage::fs::{FileSystem, OsFileSystem};

/// An endpoint that records what it receives.
#[derive(Default)]
struct Recorder {
    got: Mutex<Vec<(NodeId, Message)>>,
}

impl Endpoint for Recorder {
    fn receive(&self, from: NodeId, message: Message) {
        self.got.lock().push((from, message));
    }
}

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

fn node(transport: &TcpTransport, id: NodeId) -> Arc<Recorder> {
    let recorder = Arc::new(Recorder::default());
    let weak = Arc::downgrade(&recorder);
    transport.register(id, weak as Weak<dyn Endpoint>);
    recorder
}

fn wait_for(transport: &TcpTransport, recorder: &Recorder, count: usize) -> bool {
    transport.wait_until(
        &mut || recorder.got.lock().len() >= count,
        Duration::from_secs(10),
    )
}

fn big_frame() -> Message {
    let payload: Vec<u8> = (0..(1u32 << 20)).map(|i| (i % 251) as u8).collect();
    Message::Frame(Frame {
        epoch: 1,
        sequence: 5,
        last_sequence: 9,
        checksum: 77,
        payload,
        ack: Some(AckLevel::Durable),
    })
}

#[test]
fn two_transports_exchange_messages_in_order() {
    let a = TcpTransport::bind(loopback()).unwrap();
    let b = TcpTransport::bind(loopback()).unwrap();
    let one = node(&a, 1);
    let two = node(&b, 2);
    a.add_peer(2, b.local_addr());
    b.add_peer(1, a.local_addr());
    for i in 0..50 {
        a.send(
            1,
            2,
            Message::Heartbeat {
                epoch: 1,
                last_sequence: i,
            },
        );
    }
    a.send(1, 2, big_frame());
    assert!(wait_for(&b, &two, 51));
    let got = two.got.lock().clone();
    for (i, (from, message)) in got.iter().take(50).enumerate() {
        assert_eq!(*from, 1);
        assert_eq!(
            *message,
            Message::Heartbeat {
                epoch: 1,
                last_sequence: i as u64
            }
        );
    }
    assert_eq!(got[50], (1, big_frame()));

    b.send(2, 1, Message::Fenced { epoch: 3 });
    assert!(wait_for(&a, &one, 1));
    assert_eq!(one.got.lock()[0], (2, Message::Fenced { epoch: 3 }));
    // A message to a node nobody knows is dropped, not an error.
    a.send(1, 99, Message::Fenced { epoch: 1 });
    assert_eq!(b.delivered(), 51);
}

#[test]
fn a_bad_frame_closes_only_its_connection() {
    let a = TcpTransport::bind(loopback()).unwrap();
    let b = TcpTransport::bind(loopback()).unwrap();
    let two = node(&b, 2);
    a.add_peer(2, b.local_addr());

    let oversized = u32::try_from(MAX_FRAME_BYTES + 1).unwrap().to_be_bytes();
    // A length within bounds, then bytes that are no message.
    let mut garbage = 5u32.to_be_bytes().to_vec();
    garbage.extend_from_slice(&[0xff; 5]);
    for (i, bytes) in [oversized.to_vec(), garbage].into_iter().enumerate() {
        let mut raw = TcpStream::connect(b.local_addr()).unwrap();
        raw.write_all(&bytes).unwrap();
        raw.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut buf = [0u8; 1];
        // The transport closed it: end of stream (or a reset).
        assert!(matches!(raw.read(&mut buf), Ok(0) | Err(_)));
        assert_eq!(b.rejected(), i as u64 + 1);
    }

    a.send(1, 2, Message::SnapshotGone { id: 4 });
    assert!(wait_for(&b, &two, 1));
    assert_eq!(two.got.lock()[0], (1, Message::SnapshotGone { id: 4 }));
}

#[test]
fn a_peer_that_moved_is_reached_at_its_new_address() {
    let a = TcpTransport::bind(loopback()).unwrap();
    let old = TcpTransport::bind(loopback()).unwrap();
    let first = node(&old, 2);
    a.add_peer(2, old.local_addr());
    a.send(1, 2, Message::Fenced { epoch: 1 });
    assert!(wait_for(&old, &first, 1));
    // The peer dies; sends to it are lost, never an error or a hang.
    old.shutdown();
    drop(old);
    for _ in 0..3 {
        a.send(1, 2, Message::Fenced { epoch: 2 });
    }
    let new = TcpTransport::bind(loopback()).unwrap();
    let second = node(&new, 2);
    a.add_peer(2, new.local_addr());
    a.send(1, 2, Message::Fenced { epoch: 3 });
    assert!(wait_for(&new, &second, 1));
    assert_eq!(second.got.lock()[0], (1, Message::Fenced { epoch: 3 }));
}

#[test]
fn nodes_on_one_transport_reach_each_other_without_a_socket() {
    let a = TcpTransport::bind(loopback()).unwrap();
    let one = node(&a, 1);
    let two = node(&a, 2);
    a.send(1, 2, Message::Fenced { epoch: 1 });
    a.send(2, 1, Message::Fenced { epoch: 2 });
    assert!(wait_for(&a, &two, 1));
    assert!(wait_for(&a, &one, 1));
    assert_eq!(a.rejected(), 0);
}

#[test]
fn a_sync_standby_replicates_over_tcp() {
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let fs = || Arc::new(OsFileSystem::default()) as Arc<dyn FileSystem>;
    let options = |id: NodeId| {
        let mut options = NodeOptions::new(id);
        options.database = crate::DatabaseOptions::default().background_threads(false);
        options
    };
    let ta = TcpTransport::bind(loopback()).unwrap();
    let tb = TcpTransport::bind(loopback()).unwrap();
    ta.add_peer(1, tb.local_addr());
    tb.add_peer(0, ta.local_addr());
    let mut primary_options = options(0);
    primary_options.sync = Some(SyncPolicy {
        level: AckLevel::Durable,
        quorum: Quorum::Any(1),
        timeout: Duration::from_secs(10),
        degrade_to_async: false,
    });
    let primary = ReplicationNode::open_primary(
        fs(),
        dirs[0].path(),
        Arc::clone(&ta) as Arc<dyn Transport>,
        primary_options,
    )
    .unwrap();
    let standby = ReplicationNode::open_replica(
        fs(),
        dirs[1].path(),
        Arc::clone(&tb) as Arc<dyn Transport>,
        options(1),
        0,
    )
    .unwrap();
    primary.add_standby(1);
    let engine = primary.database().unwrap().engine().clone();
    for i in 0..20u32 {
        engine
            .put(format!("k{i}").as_bytes(), &i.to_be_bytes())
            .unwrap();
        // The commit returned: the standby has made it durable.
        let lag = primary.lag();
        assert!(
            lag[0].progress.durable >= primary.last_sequence(),
            "{lag:?}"
        );
    }
    // Applied follows durable on the standby shortly after.
    let target = primary.last_sequence();
    assert!(tb.wait_until(
        &mut || standby.last_sequence() >= target,
        Duration::from_secs(10)
    ));
    let replica = standby.database().unwrap();
    for i in 0..20u32 {
        let got = replica.engine().get(format!("k{i}").as_bytes()).unwrap();
        assert_eq!(got.as_deref(), Some(&i.to_be_bytes()[..]));
    }
    assert_eq!(standby.role(), Role::Replica { source: 0 });
    primary.close().unwrap();
    // (`close` on a replica is refused as a write: ReadOnlyReplica; the
    // standby is dropped instead.)
}

#[test]
fn a_late_replica_catches_up_by_snapshot_over_tcp() {
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let fs = || Arc::new(OsFileSystem::default()) as Arc<dyn FileSystem>;
    let options = |id: NodeId| {
        let mut options = NodeOptions::new(id);
        options.database = crate::DatabaseOptions::default().background_threads(false);
        // Few retained frames and small chunks: a snapshot of many pieces.
        options.retained_frames = 4;
        options.snapshot_chunk_bytes = 512;
        options
    };
    let ta = TcpTransport::bind(loopback()).unwrap();
    let tb = TcpTransport::bind(loopback()).unwrap();
    ta.add_peer(1, tb.local_addr());
    tb.add_peer(0, ta.local_addr());
    let primary = ReplicationNode::open_primary(
        fs(),
        dirs[0].path(),
        Arc::clone(&ta) as Arc<dyn Transport>,
        options(0),
    )
    .unwrap();
    let db = primary.database().unwrap();
    for i in 0..200u32 {
        db.engine()
            .put(format!("k{i:04}").as_bytes(), &[7u8; 64])
            .unwrap();
    }
    db.engine().flush().unwrap();
    primary.add_replica(1);
    let replica = ReplicationNode::open_replica(
        fs(),
        dirs[1].path(),
        Arc::clone(&tb) as Arc<dyn Transport>,
        options(1),
        0,
    )
    .unwrap();
    let target = primary.last_sequence();
    // Ticks re-ask for whatever was lost; the wait ends on arrival.
    assert!(tb.wait_until(
        &mut || {
            primary.tick();
            replica.tick();
            // The count moves just after the position: both are waited
            // for.
            replica.last_sequence() >= target && replica.stats().snapshots_installed >= 1
        },
        Duration::from_secs(20)
    ));
    assert!(
        primary.stats().snapshots_served >= 1,
        "{:?}",
        primary.stats()
    );
    let copy = replica.database().unwrap();
    for i in 0..200u32 {
        let got = copy.engine().get(format!("k{i:04}").as_bytes()).unwrap();
        assert_eq!(got.as_deref(), Some(&[7u8; 64][..]), "k{i:04}");
    }
    assert_eq!(ta.rejected() + tb.rejected(), 0);
}

#[test]
fn a_peer_restarted_at_the_same_address_is_reconnected_to() {
    let a = TcpTransport::bind(loopback()).unwrap();
    let old = TcpTransport::bind(loopback()).unwrap();
    let addr = old.local_addr();
    let first = node(&old, 2);
    a.add_peer(2, addr);
    a.send(1, 2, Message::Fenced { epoch: 1 });
    assert!(wait_for(&old, &first, 1));
    drop(old);
    let new = TcpTransport::bind(addr).unwrap();
    let second = node(&new, 2);
    // The old connection is dead but A does not know yet: the first
    // writes on it are lost (as the protocol allows), a failed one drops
    // it, and a later send reconnects. Resending is what the protocol's
    // retransmission does.
    let mut arrived = false;
    for epoch in 2..200 {
        a.send(1, 2, Message::Fenced { epoch });
        if new.wait_until(
            &mut || !second.got.lock().is_empty(),
            Duration::from_millis(50),
        ) {
            arrived = true;
            break;
        }
    }
    assert!(arrived, "never reconnected");
    assert_eq!(second.got.lock()[0].0, 1);
}

/// A reader that hands out `data` and records the largest buffer it was
/// asked to fill: what the frame reader had allocated at most.
struct Trickle {
    data: Vec<u8>,
    at: usize,
    largest_buffer: usize,
}

impl Read for Trickle {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.largest_buffer = self.largest_buffer.max(buf.len());
        let n = buf.len().min(self.data.len() - self.at);
        buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

fn trickle(declared: u32, body: usize) -> Trickle {
    let mut data = declared.to_be_bytes().to_vec();
    data.extend((0..body).map(|i| i as u8));
    Trickle {
        data,
        at: 0,
        largest_buffer: 0,
    }
}

#[test]
fn a_forged_frame_length_allocates_only_as_much_as_arrives() {
    // Declares the largest allowed frame, sends 100 bytes, hangs up.
    let declared = u32::try_from(MAX_FRAME_BYTES).unwrap();
    let mut reader = trickle(declared, 100);
    assert_eq!(read_frame(&mut reader, MAX_FRAME_BYTES), FrameRead::Ended);
    assert!(
        reader.largest_buffer <= READ_STEP_BYTES,
        "{}",
        reader.largest_buffer
    );

    // 1 MiB of a 64 MiB frame: the buffer stays within twice what came.
    let mut reader = trickle(declared, 1 << 20);
    assert_eq!(read_frame(&mut reader, MAX_FRAME_BYTES), FrameRead::Ended);
    assert!(
        reader.largest_buffer <= 2 << 20,
        "{}",
        reader.largest_buffer
    );

    // Above the limit: refused before any byte of it is read.
    let mut reader = trickle(declared + 1, 10);
    assert_eq!(
        read_frame(&mut reader, MAX_FRAME_BYTES),
        FrameRead::Oversized
    );
    assert_eq!(reader.at, 4);
    let mut reader = trickle(u32::MAX, 10);
    assert_eq!(read_frame(&mut reader, 1 << 20), FrameRead::Oversized);
}

#[test]
fn frames_of_every_size_read_back_whole() {
    for len in [
        0usize,
        1,
        READ_STEP_BYTES - 1,
        READ_STEP_BYTES,
        3 * READ_STEP_BYTES + 7,
    ] {
        let mut reader = trickle(u32::try_from(len).unwrap(), len);
        let expected: Vec<u8> = (0..len).map(|i| i as u8).collect();
        assert_eq!(
            read_frame(&mut reader, MAX_FRAME_BYTES),
            FrameRead::Frame(expected)
        );
        assert_eq!(read_frame(&mut reader, MAX_FRAME_BYTES), FrameRead::Ended);
    }
    // A stream that ends inside the length.
    let mut reader = Trickle {
        data: vec![0, 0],
        at: 0,
        largest_buffer: 0,
    };
    assert_eq!(read_frame(&mut reader, MAX_FRAME_BYTES), FrameRead::Ended);
}
