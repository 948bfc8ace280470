//! The [`Transport`] boundary between nodes, and the deterministic
//! in-process network with fault injection ([`MemoryNetwork`]).
//!
//! A transport moves [`Message`]s between the [`Endpoint`]s registered on
//! it; delivery is never guaranteed (the protocol re-asks after loss). The
//! one thing beyond `send` is [`Transport::wait_until`]: a synchronous
//! commit waits there for acknowledgements. A threaded transport (TCP)
//! just waits; the in-process network *delivers messages while it waits*,
//! on the waiting thread, so a whole replication group runs on one thread
//! in an order fixed by the network's seed — which is what makes a
//! simulation run reproducible.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;

use super::frame::{Message, NodeId};
use crate::storage::sim::SimRng;

/// Something that receives messages: a replication node.
pub trait Endpoint: Send + Sync {
    /// Handles `message` from `from`. Must not block waiting for the
    /// network (it may send).
    fn receive(&self, from: NodeId, message: Message);
}

/// Moves messages between endpoints.
pub trait Transport: Send + Sync + fmt::Debug {
    /// Registers (or replaces) the endpoint that receives node `id`'s
    /// messages.
    fn register(&self, id: NodeId, endpoint: Weak<dyn Endpoint>);

    /// Sends `message` from `from` to `to`; it may be lost, delayed,
    /// duplicated or reordered.
    fn send(&self, from: NodeId, to: NodeId, message: Message);

    /// Returns once `done()` holds (true) or `timeout` has passed (false).
    /// An in-process transport delivers messages meanwhile.
    fn wait_until(&self, done: &mut dyn FnMut() -> bool, timeout: Duration) -> bool;

    /// Wakes waiters after a node's state changed outside a delivery.
    fn notify(&self) {}

    /// The transport's clock in microseconds (virtual for a simulation):
    /// lag in time and leases are measured with it.
    fn now_micros(&self) -> u64;
}

/// The fault knobs of a [`MemoryNetwork`] (probabilities in parts per
/// thousand, delays in virtual microseconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Faults {
    /// Chance a message is dropped.
    pub drop_per_mille: u32,
    /// Chance a message is delivered twice.
    pub duplicate_per_mille: u32,
    /// Largest extra delay of a message; delays differ per message, so
    /// messages overtake each other (reordering).
    pub delay_max_micros: u64,
}

impl Faults {
    /// A perfect network: nothing lost, duplicated or delayed.
    pub const NONE: Self = Self {
        drop_per_mille: 0,
        duplicate_per_mille: 0,
        delay_max_micros: 0,
    };
}

/// Virtual time a message takes at the least.
const BASE_LATENCY_MICROS: u64 = 100;

/// How far virtual time jumps when nothing is deliverable and a waiter
/// waits: a waiter's timeout then passes after a bounded number of steps.
const IDLE_STEP_MICROS: u64 = 1_000;

/// A deterministic in-process network: every choice (loss, duplication,
/// delay, hence order) comes from one seeded generator, and virtual time
/// only moves when a waiter or the simulation advances it.
pub struct MemoryNetwork {
    state: Mutex<NetState>,
}

struct NetState {
    rng: SimRng,
    faults: Faults,
    now_micros: u64,
    /// (delivery time, tiebreak) → message.
    queue: BTreeMap<(u64, u64), InFlight>,
    next_tiebreak: u64,
    endpoints: BTreeMap<NodeId, Weak<dyn Endpoint>>,
    /// Directed links that lose everything.
    cut: BTreeSet<(NodeId, NodeId)>,
    /// Nodes that are down: their messages are dropped both ways.
    down: BTreeSet<NodeId>,
    delivered: u64,
    dropped: u64,
}

struct InFlight {
    from: NodeId,
    to: NodeId,
    message: Message,
}

impl fmt::Debug for MemoryNetwork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state.lock();
        f.debug_struct("MemoryNetwork")
            .field("now_micros", &state.now_micros)
            .field("in_flight", &state.queue.len())
            .field("delivered", &state.delivered)
            .field("dropped", &state.dropped)
            .finish_non_exhaustive()
    }
}

impl MemoryNetwork {
    /// A network whose every random choice follows `seed`.
    pub fn new(seed: u64, faults: Faults) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(NetState {
                rng: SimRng::new(seed),
                faults,
                now_micros: 0,
                queue: BTreeMap::new(),
                next_tiebreak: 0,
                endpoints: BTreeMap::new(),
                cut: BTreeSet::new(),
                down: BTreeSet::new(),
                delivered: 0,
                dropped: 0,
            }),
        })
    }

    /// Changes the fault knobs.
    pub fn set_faults(&self, faults: Faults) {
        self.state.lock().faults = faults;
    }

    /// Cuts (or with `false` heals) the link from `a` to `b` and back.
    pub fn partition(&self, a: NodeId, b: NodeId, cut: bool) {
        let mut state = self.state.lock();
        for link in [(a, b), (b, a)] {
            if cut {
                state.cut.insert(link);
            } else {
                state.cut.remove(&link);
            }
        }
    }

    /// Cuts only the link from `a` to `b` (a one-way partition).
    pub fn partition_one_way(&self, a: NodeId, b: NodeId, cut: bool) {
        let mut state = self.state.lock();
        if cut {
            state.cut.insert((a, b));
        } else {
            state.cut.remove(&(a, b));
        }
    }

    /// Heals every partition.
    pub fn heal(&self) {
        self.state.lock().cut.clear();
    }

    /// Marks `id` down (a crashed process: its messages in flight are lost
    /// and nothing reaches it) or up again.
    pub fn set_down(&self, id: NodeId, down: bool) {
        let mut state = self.state.lock();
        if down {
            state.down.insert(id);
            state.queue.retain(|_, m| m.to != id && m.from != id);
        } else {
            state.down.remove(&id);
        }
    }

    /// Messages waiting for delivery.
    pub fn in_flight(&self) -> usize {
        self.state.lock().queue.len()
    }

    /// (delivered, dropped) so far.
    pub fn counts(&self) -> (u64, u64) {
        let state = self.state.lock();
        (state.delivered, state.dropped)
    }

    /// Advances virtual time by `micros`.
    pub fn advance(&self, micros: u64) {
        let mut state = self.state.lock();
        state.now_micros = state.now_micros.saturating_add(micros);
    }

    /// Delivers the earliest message due by now (without moving time).
    /// Returns whether one was delivered.
    pub fn step(&self) -> bool {
        let next = {
            let mut state = self.state.lock();
            let now = state.now_micros;
            let due = state
                .queue
                .first_key_value()
                .is_some_and(|(k, _)| k.0 <= now);
            if !due {
                return false;
            }
            let Some((_, flight)) = state.queue.pop_first() else {
                return false;
            };
            if state.down.contains(&flight.to) || state.cut.contains(&(flight.from, flight.to)) {
                state.dropped += 1;
                return true;
            }
            let endpoint = state.endpoints.get(&flight.to).and_then(Weak::upgrade);
            state.delivered += 1;
            endpoint.map(|e| (e, flight))
        };
        if let Some((endpoint, flight)) = next {
            endpoint.receive(flight.from, flight.message);
        }
        true
    }

    /// Moves time to the next message if none is due, and delivers it.
    /// Returns false when nothing is in flight.
    pub fn step_next(&self) -> bool {
        {
            let mut state = self.state.lock();
            let Some(((at, _), _)) = state.queue.first_key_value() else {
                return false;
            };
            let at = *at;
            state.now_micros = state.now_micros.max(at);
        }
        self.step()
    }

    /// Delivers messages until none is in flight or `max_steps` were taken.
    pub fn run_until_idle(&self, max_steps: usize) -> usize {
        let mut steps = 0;
        while steps < max_steps && self.step_next() {
            steps += 1;
        }
        steps
    }
}

impl Transport for MemoryNetwork {
    fn register(&self, id: NodeId, endpoint: Weak<dyn Endpoint>) {
        self.state.lock().endpoints.insert(id, endpoint);
    }

    fn send(&self, from: NodeId, to: NodeId, message: Message) {
        let mut state = self.state.lock();
        if state.down.contains(&from) || state.down.contains(&to) {
            state.dropped += 1;
            return;
        }
        let faults = state.faults;
        if faults.drop_per_mille > 0 && state.rng.below(1000) < u64::from(faults.drop_per_mille) {
            state.dropped += 1;
            return;
        }
        let copies = if faults.duplicate_per_mille > 0
            && state.rng.below(1000) < u64::from(faults.duplicate_per_mille)
        {
            2
        } else {
            1
        };
        let mut original = Some(message);
        for copy in 0..copies {
            let delay = BASE_LATENCY_MICROS + state.rng.below(faults.delay_max_micros + 1);
            let at = state.now_micros + delay;
            let tiebreak = state.next_tiebreak;
            state.next_tiebreak += 1;
            // The last copy takes the message itself: no clone when nothing
            // is duplicated.
            let message = if copy + 1 == copies {
                original.take()
            } else {
                original.clone()
            };
            if let Some(message) = message {
                state
                    .queue
                    .insert((at, tiebreak), InFlight { from, to, message });
            }
        }
    }

    fn wait_until(&self, done: &mut dyn FnMut() -> bool, timeout: Duration) -> bool {
        let deadline = self
            .now_micros()
            .saturating_add(u64::try_from(timeout.as_micros()).unwrap_or(u64::MAX));
        loop {
            if done() {
                return true;
            }
            if self.now_micros() >= deadline {
                return false;
            }
            if !self.step() {
                // Nothing due: jump to the next message, or idle forward.
                let mut state = self.state.lock();
                let next = state.queue.first_key_value().map(|(k, _)| k.0);
                let step_to = next
                    .unwrap_or(u64::MAX)
                    .min(state.now_micros + IDLE_STEP_MICROS)
                    .min(deadline);
                state.now_micros = state.now_micros.max(step_to);
            }
        }
    }

    fn now_micros(&self) -> u64 {
        self.state.lock().now_micros
    }
}
