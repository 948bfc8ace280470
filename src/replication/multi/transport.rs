//! How replicas exchange changes: the [`Message`]s of the protocol, the
//! [`Transport`] trait that carries them, and [`SimNetwork`], an
//! in-process network that is deterministic for a seed and can drop,
//! duplicate, delay and reorder messages and cut links (partitions).
//!
//! The protocol assumes nothing of a transport: messages may be lost,
//! repeated or arrive in any order. Senders repeat what is not yet
//! acknowledged, and receivers ignore what they already applied.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Debug;
use std::sync::Arc;

use parking_lot::Mutex;

use super::clock::{ReplicaId, Timestamp};
use super::rows::Change;

/// One message between two replicas.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// The entries of the sender's outbox with sequence numbers in
    /// `(after, through]` (entries missing from that range were abandoned
    /// writes), and a promise: every write of the sender with a timestamp
    /// up to `stable` is in its outbox at or before `through`.
    Changes {
        /// The sender (the changes' origin).
        from: ReplicaId,
        /// The receiver.
        to: ReplicaId,
        /// The range starts after this sequence number.
        after: u64,
        /// The range ends here (inclusive).
        through: u64,
        /// The sender's stable timestamp for this range.
        stable: Timestamp,
        /// The sender's incarnation: its life under its id (positions count
        /// within one life; see `incarnation.rs`).
        incarnation: u64,
        /// Every peer of the sender has applied each of its writes with a
        /// timestamp up to here (zero while it is not caught up): a
        /// receiver removes the tombstone of one of its deletes only below
        /// this, since a delete an origin shipped to only some peers
        /// survives its loss only in their tombstones.
        acknowledged: Timestamp,
        /// The entries of the range, in sequence order.
        changes: Vec<Change>,
    },
    /// The receiver has applied (durably) the sender's outbox through
    /// `applied_through`.
    Ack {
        /// The acknowledging replica.
        from: ReplicaId,
        /// The origin of the acknowledged changes.
        to: ReplicaId,
        /// The acknowledging replica's incarnation.
        incarnation: u64,
        /// The origin's incarnation whose positions are acknowledged (an
        /// acknowledgement of an earlier life of the origin means nothing
        /// to its current one).
        origin_incarnation: u64,
        /// Everything up to here is applied.
        applied_through: u64,
    },
    /// The sender lacks changes the receiver no longer keeps (it is new to
    /// the group or lost its state) and asks for the page of the
    /// receiver's copy of `table` that starts after the row `after`.
    CopyRequest {
        /// The replica being brought up to date.
        from: ReplicaId,
        /// The replica whose tables it copies.
        to: ReplicaId,
        /// The copy this request belongs to.
        copy_id: u64,
        /// The table (the same name at every replica).
        table: String,
        /// The last row received (an item's row key without its keyspace
        /// id); empty for the start of the table.
        after: Vec<u8>,
    },
    /// One page of a table copy: the items (tombstones included, as
    /// deletes) stored in `table` after the row `after`, each with its
    /// stored version, read after every outbox entry of the sender up to
    /// `through` committed.
    Copy {
        /// The replica whose table this is.
        from: ReplicaId,
        /// The replica that asked.
        to: ReplicaId,
        /// The copy the page answers.
        copy_id: u64,
        /// The table.
        table: String,
        /// The page starts after this row (as asked).
        after: Vec<u8>,
        /// Where the next page starts; `None` for the table's last page.
        next: Option<Vec<u8>>,
        /// The sender's outbox position when the page was read: every
        /// entry up to it is reflected in the page's items.
        through: u64,
        /// The sender's stable timestamp at `through` (as in `Changes`).
        stable: Timestamp,
        /// The sender's incarnation (`through` counts in it).
        incarnation: u64,
        /// The items in row order (`seq` 0).
        items: Vec<Change>,
    },
}

impl Message {
    /// The sender.
    pub fn from(&self) -> ReplicaId {
        match self {
            Self::Changes { from, .. }
            | Self::Ack { from, .. }
            | Self::CopyRequest { from, .. }
            | Self::Copy { from, .. } => *from,
        }
    }

    /// The receiver.
    pub fn to(&self) -> ReplicaId {
        match self {
            Self::Changes { to, .. }
            | Self::Ack { to, .. }
            | Self::CopyRequest { to, .. }
            | Self::Copy { to, .. } => *to,
        }
    }
}

/// Called by a transport when a message for a replica arrives, so its
/// background thread wakes at once instead of at its next tick.
pub type Waker = Arc<dyn Fn() + Send + Sync>;

/// Carries messages between replicas. Delivery may lose, repeat or reorder
/// messages; it must not alter them.
pub trait Transport: Send + Sync + Debug {
    /// Sends `message` to `message.to()` (never blocks for long).
    fn send(&self, message: Message);

    /// Takes up to `limit` messages that have arrived for `replica`.
    fn receive(&self, replica: ReplicaId, limit: usize) -> Vec<Message>;

    /// Registers the function to call when a message for `replica`
    /// arrives (default: none; the replica polls).
    fn set_waker(&self, _replica: ReplicaId, _waker: Waker) {}
}

/// The faults a [`SimNetwork`] injects.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetworkFaults {
    /// Messages lost, per thousand.
    pub drop_per_mille: u32,
    /// Messages delivered twice, per thousand.
    pub duplicate_per_mille: u32,
    /// Each message is delayed by up to this many ticks (`tick()`).
    pub delay_ticks_max: u64,
    /// Whether messages arriving together are delivered in random order.
    pub reorder: bool,
}

/// What a [`SimNetwork`] did so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetworkStats {
    /// Messages handed to `send`.
    pub sent: u64,
    /// Messages handed to receivers.
    pub delivered: u64,
    /// Messages lost to `drop_per_mille` or a partition.
    pub dropped: u64,
    /// Extra copies made by `duplicate_per_mille`.
    pub duplicated: u64,
}

#[derive(Debug)]
struct InFlight {
    deliver_at: u64,
    order: u64,
    message: Message,
}

struct NetworkState {
    rng: u64,
    now: u64,
    next_order: u64,
    faults: NetworkFaults,
    queue: Vec<InFlight>,
    cut: BTreeSet<(ReplicaId, ReplicaId)>,
    wakers: HashMap<ReplicaId, Waker>,
    stats: NetworkStats,
}

impl Debug for NetworkState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetworkState")
            .field("now", &self.now)
            .field("faults", &self.faults)
            .field("in_flight", &self.queue.len())
            .field("cut", &self.cut)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl NetworkState {
    /// splitmix64: small, fast and fully determined by the seed.
    fn next_random(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn chance(&mut self, per_mille: u32) -> bool {
        per_mille > 0 && self.next_random() % 1000 < u64::from(per_mille)
    }

    fn is_cut(&self, a: ReplicaId, b: ReplicaId) -> bool {
        self.cut.contains(&(a.min(b), a.max(b)))
    }

    fn enqueue(&mut self, message: Message) {
        let delay = match self.faults.delay_ticks_max {
            0 => 0,
            max => self.next_random() % (max + 1),
        };
        let order = self.next_order;
        self.next_order += 1;
        self.queue.push(InFlight {
            deliver_at: self.now + delay,
            order,
            message,
        });
    }
}

/// An in-process network for replicas in one process: deterministic for a
/// seed (given the same sequence of calls), with injectable faults. Clones
/// share one network.
#[derive(Debug, Clone)]
pub struct SimNetwork {
    state: Arc<Mutex<NetworkState>>,
}

impl SimNetwork {
    /// A reliable network (no faults) whose random choices follow `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            state: Arc::new(Mutex::new(NetworkState {
                rng: seed,
                now: 0,
                next_order: 0,
                faults: NetworkFaults::default(),
                queue: Vec::new(),
                cut: BTreeSet::new(),
                wakers: HashMap::new(),
                stats: NetworkStats::default(),
            })),
        }
    }

    /// Sets the faults injected from now on.
    pub fn set_faults(&self, faults: NetworkFaults) {
        self.state.lock().faults = faults;
    }

    /// Cuts the link between `a` and `b` (both directions): messages sent
    /// or in flight between them are lost until [`Self::heal`].
    pub fn partition(&self, a: ReplicaId, b: ReplicaId) {
        self.state.lock().cut.insert((a.min(b), a.max(b)));
    }

    /// Restores every cut link.
    pub fn heal(&self) {
        self.state.lock().cut.clear();
    }

    /// Advances the network's time by one tick (delayed messages become
    /// deliverable).
    pub fn tick(&self) {
        self.state.lock().now += 1;
    }

    /// Messages sent and not yet delivered or lost.
    pub fn in_flight(&self) -> usize {
        self.state.lock().queue.len()
    }

    /// What the network did so far.
    pub fn stats(&self) -> NetworkStats {
        self.state.lock().stats
    }
}

impl Transport for SimNetwork {
    fn send(&self, message: Message) {
        let waker = {
            let mut state = self.state.lock();
            state.stats.sent += 1;
            let (from, to) = (message.from(), message.to());
            if state.is_cut(from, to) || {
                let drop = state.faults.drop_per_mille;
                state.chance(drop)
            } {
                state.stats.dropped += 1;
                return;
            }
            let duplicate = state.faults.duplicate_per_mille;
            if state.chance(duplicate) {
                state.stats.duplicated += 1;
                state.enqueue(message.clone());
            }
            state.enqueue(message);
            state.wakers.get(&to).cloned()
        };
        if let Some(waker) = waker {
            waker();
        }
    }

    fn receive(&self, replica: ReplicaId, limit: usize) -> Vec<Message> {
        let mut state = self.state.lock();
        let now = state.now;
        let mut ready = Vec::new();
        let mut index = 0;
        while index < state.queue.len() {
            let entry = &state.queue[index];
            if entry.message.to() == replica && entry.deliver_at <= now {
                ready.push(state.queue.remove(index));
            } else {
                index += 1;
            }
        }
        ready.sort_by_key(|m| (m.deliver_at, m.order));
        if state.faults.reorder {
            // Fisher-Yates with the network's own generator.
            for i in (1..ready.len()).rev() {
                let j = (state.next_random() % (i as u64 + 1)) as usize;
                ready.swap(i, j);
            }
        }
        // What exceeds the limit goes back, to be received next time.
        let mut delivered = Vec::with_capacity(ready.len().min(limit));
        for entry in ready {
            if delivered.len() >= limit {
                state.queue.push(entry);
            } else if state.is_cut(entry.message.from(), replica) {
                state.stats.dropped += 1;
            } else {
                state.stats.delivered += 1;
                delivered.push(entry.message);
            }
        }
        delivered
    }

    fn set_waker(&self, replica: ReplicaId, waker: Waker) {
        self.state.lock().wakers.insert(replica, waker);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ack(from: u64, to: u64, applied_through: u64) -> Message {
        Message::Ack {
            from: ReplicaId(from),
            to: ReplicaId(to),
            incarnation: 1,
            origin_incarnation: 1,
            applied_through,
        }
    }

    #[test]
    fn a_reliable_network_delivers_in_order_to_the_addressee() {
        let network = SimNetwork::new(1);
        network.send(ack(1, 2, 1));
        network.send(ack(1, 2, 2));
        network.send(ack(2, 1, 9));
        assert_eq!(
            network.receive(ReplicaId(2), 10),
            vec![ack(1, 2, 1), ack(1, 2, 2)]
        );
        assert_eq!(network.receive(ReplicaId(1), 10), vec![ack(2, 1, 9)]);
        assert_eq!(network.in_flight(), 0);
    }

    #[test]
    fn partitions_lose_messages_until_healed() {
        let network = SimNetwork::new(1);
        network.partition(ReplicaId(2), ReplicaId(1));
        network.send(ack(1, 2, 1));
        assert!(network.receive(ReplicaId(2), 10).is_empty());
        network.heal();
        network.send(ack(1, 2, 2));
        assert_eq!(network.receive(ReplicaId(2), 10), vec![ack(1, 2, 2)]);
        assert_eq!(network.stats().dropped, 1);
    }

    #[test]
    fn delays_hold_messages_until_their_tick() {
        let network = SimNetwork::new(7);
        network.set_faults(NetworkFaults {
            delay_ticks_max: 3,
            ..NetworkFaults::default()
        });
        for n in 0..20 {
            network.send(ack(1, 2, n));
        }
        let mut received = network.receive(ReplicaId(2), 100).len();
        for _ in 0..3 {
            network.tick();
            received += network.receive(ReplicaId(2), 100).len();
        }
        assert_eq!(received, 20);
    }

    #[test]
    fn the_same_seed_makes_the_same_faults() {
        let run = |seed| {
            let network = SimNetwork::new(seed);
            network.set_faults(NetworkFaults {
                drop_per_mille: 300,
                duplicate_per_mille: 300,
                delay_ticks_max: 0,
                reorder: true,
            });
            for n in 0..50 {
                network.send(ack(1, 2, n));
            }
            network.receive(ReplicaId(2), 1000)
        };
        assert_eq!(run(5), run(5));
        assert_ne!(run(5), run(6));
    }
}
