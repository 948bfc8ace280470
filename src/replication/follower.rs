//! The receiving side of a node (a replica): frames are checked (epoch,
//! checksum, position), applied in sequence order under the primary's
//! sequence numbers, and acknowledged; out-of-order frames wait for the
//! gap to fill, and a gap or a heartbeat showing the follower behind
//! makes it subscribe again. Also the message dispatch and periodic work.

use super::bodies::Readiness;
use super::frame::{AckLevel, Frame, Message, NodeId, Progress};
use super::node::{NodeInner, PENDING_FRAMES_MAX, ReplicationEvent, Role};
use super::transport::Endpoint;
use crate::objects::replica;
use crate::partition::{CATALOGUE_KEYSPACE, keyspace_prefix};
use crate::storage::StorageError;

impl Endpoint for NodeInner {
    fn receive(&self, from: NodeId, message: Message) {
        if matches!(
            message,
            Message::Frame(_)
                | Message::Chunk { .. }
                | Message::Heartbeat { .. }
                | Message::Welcome { .. }
        ) && self.stopped_by_failure()
        {
            return;
        }
        match message {
            Message::Frame(frame) => self.on_frame(from, frame),
            Message::Heartbeat {
                epoch,
                last_sequence,
            } => self.on_heartbeat(from, epoch, last_sequence),
            Message::Welcome {
                epoch,
                starts,
                lineage,
            } => self.on_welcome(from, epoch, starts, lineage),
            Message::Subscribe {
                epoch,
                last_sequence,
                last_checksum,
                lineage,
            } => self.on_subscribe(from, epoch, last_sequence, last_checksum, lineage),
            Message::Ack { epoch, progress } => self.on_ack(from, epoch, progress),
            Message::Fenced { epoch } => {
                let mut state = self.state.lock();
                self.fence_locked(&mut state, epoch);
            }
            Message::NeedSnapshot {
                id,
                epoch,
                files,
                starts,
                lineage,
            } => self.on_need_snapshot(from, id, epoch, files, starts, lineage),
            Message::SnapshotRequest { id, file, offset } => {
                self.on_snapshot_request(from, id, file, offset);
            }
            Message::SnapshotChunk {
                id,
                file,
                name,
                offset,
                file_len,
                data,
            } => self.on_snapshot_chunk(from, id, file, &name, offset, file_len, &data),
            Message::SnapshotGone { id } => self.on_snapshot_gone(from, id),
            Message::Chunk {
                epoch,
                tier,
                hash,
                pack,
                offset,
                entry,
            } => self.on_chunk(from, epoch, (tier, hash, pack, offset), entry),
        }
    }
}

impl NodeInner {
    /// Whether this replica's engine was stopped by a failed write or
    /// fsync. A failed apply may have left its frame on disk (written, then
    /// the fsync failed) without the node counting it; if the node went on
    /// following — adopting a new primary's epoch history, subscribing
    /// from the position it believes — it would vouch for a frame of the
    /// old epoch that the new history does not hold, and the divergence
    /// would never be seen. So it stays silent until it is reopened, which
    /// recounts what is on disk (a snapshot offered meanwhile may still
    /// replace its files).
    fn stopped_by_failure(&self) -> bool {
        matches!(self.state.lock().role, Role::Replica { .. })
            && self
                .db
                .read()
                .as_ref()
                .is_some_and(|db| db.engine().healthy().is_err())
    }
}

/// What to do with a received frame.
enum Verdict {
    Ignore,
    Reject(u64),
    Resubscribe,
    Duplicate,
    Buffered(Option<u64>),
    Apply,
}

impl NodeInner {
    /// The source this node follows, if it is a replica.
    fn source(&self) -> Option<NodeId> {
        match self.state.lock().role {
            Role::Replica { source } => Some(source),
            _ => None,
        }
    }

    /// Asks `source` to stream from after this node's last sequence.
    pub(crate) fn subscribe(&self, source: NodeId) {
        let message = {
            let mut state = self.state.lock();
            if state.incoming.is_some() {
                return;
            }
            state.asked_from = Some(state.last_sequence + 1);
            Message::Subscribe {
                epoch: state.epochs.epoch,
                last_sequence: state.last_sequence,
                last_checksum: state.last_checksum,
                lineage: state.epochs.lineage,
            }
        };
        self.transport.send(self.options.id, source, message);
    }

    fn on_frame(&self, from: NodeId, frame: Frame) {
        let verdict = {
            let mut state = self.state.lock();
            let epoch = state.epochs.epoch;
            if frame.epoch > epoch && state.role == Role::Primary {
                self.fence_locked(&mut state, frame.epoch);
            }
            if state.role != (Role::Replica { source: from }) || !frame.is_intact() {
                Verdict::Ignore
            } else if frame.epoch < epoch {
                state.stats.stale_rejected += 1;
                state.event(ReplicationEvent::StaleRejected {
                    from,
                    epoch: frame.epoch,
                });
                Verdict::Reject(epoch)
            } else if frame.epoch > epoch || state.incoming.is_some() {
                // A new epoch is adopted only from its Welcome (which
                // carries where it began); during a snapshot frames wait.
                if state.incoming.is_some() {
                    Verdict::Ignore
                } else {
                    Verdict::Resubscribe
                }
            } else {
                state.source_heard_micros = self.transport.now_micros();
                if frame.last_sequence <= state.last_sequence {
                    state.stats.duplicates_ignored += 1;
                    Verdict::Duplicate
                } else if frame.sequence > state.last_sequence + 1 {
                    let ask = state.last_sequence + 1;
                    if state.pending.len() < PENDING_FRAMES_MAX {
                        state.pending.insert(frame.sequence, frame.clone());
                    }
                    if state.asked_from == Some(ask) {
                        Verdict::Buffered(None)
                    } else {
                        state.asked_from = Some(ask);
                        Verdict::Buffered(Some(ask))
                    }
                } else if frame.sequence == state.last_sequence + 1 {
                    Verdict::Apply
                } else {
                    // Overlaps what is applied without matching a batch:
                    // another lineage's frame; the subscription sorts it out.
                    Verdict::Resubscribe
                }
            }
        };
        match verdict {
            Verdict::Ignore | Verdict::Buffered(None) => {}
            Verdict::Reject(epoch) => {
                self.transport
                    .send(self.options.id, from, Message::Fenced { epoch });
            }
            Verdict::Resubscribe | Verdict::Buffered(Some(_)) => self.subscribe(from),
            Verdict::Duplicate => self.send_ack(from),
            Verdict::Apply => {
                if frame.ack == Some(AckLevel::Received) {
                    let early = {
                        let state = self.state.lock();
                        ack_message(&state.epochs.epoch, frame.last_sequence, &state)
                    };
                    self.transport.send(self.options.id, from, early);
                }
                self.apply_from(from, frame);
                self.send_ack(from);
            }
        }
    }

    /// Applies `frame` and then every buffered frame that follows it.
    fn apply_from(&self, from: NodeId, first: Frame) {
        let _apply = self.apply.lock();
        let mut next = Some(first);
        let mut touched_catalogue = false;
        while let Some(frame) = next.take() {
            let Some(db) = self.db.read().clone() else {
                return;
            };
            #[allow(unused_mut)]
            let mut durable = self.options.apply_durably
                || frame.ack.is_some_and(|level| level >= AckLevel::Durable);
            #[cfg(test)]
            if super::sim::ack_before_fsync() {
                // The simulator's injected bug: skip the fsync it acks.
                durable = false;
            }
            let applied = frame.batch().and_then(|batch| {
                if let Readiness::Missing = self.bodies_ready(&db, &batch)? {
                    return Ok(None);
                }
                touched_catalogue |= batch
                    .iter()
                    .any(|op| op.key.starts_with(&keyspace_prefix(CATALOGUE_KEYSPACE)));
                let effects = replica::effects(&batch);
                let last = db
                    .engine()
                    .apply_replicated(frame.sequence, batch, durable)?;
                self.after_bodies_applied(&db, effects);
                Ok(Some(last))
            });
            let mut state = self.state.lock();
            match applied {
                Ok(None) => {
                    // A chunk it names has not arrived: ask for the frames
                    // from here again (the source re-sends their chunks).
                    state.pending.clear();
                    state.asked_from = None;
                    drop(state);
                    self.subscribe(from);
                    break;
                }
                Ok(Some(last)) => {
                    if last >= state.last_sequence {
                        state.last_sequence = last;
                        state.last_checksum = Some(frame.checksum);
                    }
                    if durable {
                        state.durable_sequence = state.durable_sequence.max(last);
                    }
                    state.stats.frames_applied += 1;
                    state.pending.retain(|_, f| f.last_sequence > last);
                    next = state.pending.remove(&(last + 1));
                    if state.asked_from.is_some_and(|a| a <= last + 1) && next.is_none() {
                        state.asked_from = None;
                    }
                }
                Err(StorageError::InvalidArgument(_)) => {
                    // Raced with another apply of the same position.
                }
                Err(e) => {
                    state.event(ReplicationEvent::ApplyFailed {
                        error: e.to_string(),
                    });
                    return;
                }
            }
        }
        if touched_catalogue {
            self.state.lock().catalogue_dirty = true;
            self.refresh_catalogue();
        }
    }

    /// Re-reads the kv catalogue after replicated batches changed it.
    pub(crate) fn refresh_catalogue(&self) {
        let Some(db) = self.db.read().clone() else {
            return;
        };
        match db.inner.kv.refresh(db.engine()) {
            Ok(()) => self.state.lock().catalogue_dirty = false,
            Err(e) => self.state.lock().event(ReplicationEvent::ApplyFailed {
                error: format!("catalogue refresh: {e}"),
            }),
        }
    }

    fn send_ack(&self, to: NodeId) {
        let message = {
            let state = self.state.lock();
            ack_message(&state.epochs.epoch, state.last_sequence, &state)
        };
        self.transport.send(self.options.id, to, message);
    }

    fn on_heartbeat(&self, from: NodeId, epoch: u64, last_sequence: u64) {
        let action = {
            let mut state = self.state.lock();
            let own = state.epochs.epoch;
            if epoch > own && state.role == Role::Primary {
                self.fence_locked(&mut state, epoch);
            }
            if state.role != (Role::Replica { source: from }) {
                None
            } else if epoch < own {
                state.stats.stale_rejected += 1;
                Some(Message::Fenced { epoch: own })
            } else {
                state.source_heard_micros = self.transport.now_micros();
                let behind = epoch > own || last_sequence > state.last_sequence;
                (behind && state.incoming.is_none()).then(|| {
                    state.asked_from = Some(state.last_sequence + 1);
                    Message::Subscribe {
                        epoch: own,
                        last_sequence: state.last_sequence,
                        last_checksum: state.last_checksum,
                        lineage: state.epochs.lineage,
                    }
                })
            }
        };
        if let Some(message) = action {
            self.transport.send(self.options.id, from, message);
        }
    }

    /// The source starts streaming: this node adopts its epoch history and
    /// lineage (the source sends it only to a node of its lineage or to an
    /// empty one).
    ///
    /// A node that learns its first lineage this way passes it on to the
    /// followers it streams to (a chain's middle may have welcomed them
    /// before it had one), so they need no snapshot when they next
    /// subscribe.
    fn on_welcome(&self, from: NodeId, epoch: u64, starts: Vec<(u64, u64)>, lineage: u64) {
        let mut downstream = Vec::new();
        {
            let mut state = self.state.lock();
            if state.role != (Role::Replica { source: from }) || epoch < state.epochs.epoch {
                return;
            }
            state.source_heard_micros = self.transport.now_micros();
            // A late duplicate from before the source had a lineage does
            // not take this node's away.
            let lineage = if lineage == 0 {
                state.epochs.lineage
            } else {
                lineage
            };
            if epoch > state.epochs.epoch
                || starts != state.epochs.starts
                || lineage != state.epochs.lineage
            {
                let first_lineage = state.epochs.lineage == 0 && lineage != 0;
                let mut epochs = state.epochs.clone();
                epochs.epoch = epoch;
                epochs.starts = starts;
                epochs.lineage = lineage;
                if let Err(e) = epochs.store(self.fs.as_ref(), &self.path) {
                    state.event(ReplicationEvent::ApplyFailed {
                        error: format!("epoch record: {e}"),
                    });
                    return;
                }
                if first_lineage {
                    let welcome = Message::Welcome {
                        epoch: epochs.epoch,
                        starts: epochs.starts.clone(),
                        lineage,
                    };
                    downstream = state
                        .followers
                        .iter()
                        .filter(|(_, f)| f.streaming)
                        .map(|(&id, _)| (id, welcome.clone()))
                        .collect();
                }
                state.epochs = epochs;
            }
        }
        for (id, welcome) in downstream {
            self.transport.send(self.options.id, id, welcome);
        }
        self.send_ack(from);
    }

    /// Periodic work; see `ReplicationNode::tick`.
    pub(crate) fn tick(&self) {
        self.send_heartbeats();
        if let Some(log) = self.retained_log.lock().as_mut() {
            log.sync();
        }
        let Some(source) = self.source() else {
            return;
        };
        if !self.options.apply_durably
            && let Some(db) = self.db.read().clone()
            && db.sync().is_ok()
        {
            let mut state = self.state.lock();
            state.durable_sequence = state.last_sequence;
        }
        if self.state.lock().catalogue_dirty {
            self.refresh_catalogue();
        }
        if !self.resume_snapshot(source) {
            let stuck = !self.state.lock().pending.is_empty();
            if stuck {
                self.subscribe(source);
            }
        }
        self.send_ack(source);
    }
}

/// An acknowledgement of everything up to `last` (received and written;
/// durable as far as fsynced).
fn ack_message(epoch: &u64, received: u64, state: &super::node::NodeState) -> Message {
    let applied = state.last_sequence;
    Message::Ack {
        epoch: *epoch,
        progress: Progress {
            received: received.max(applied),
            written: applied,
            durable: durable_position(state),
            applied,
        },
    }
}

/// The position this follower reports as fsynced.
fn durable_position(state: &super::node::NodeState) -> u64 {
    #[cfg(test)]
    if super::sim::ack_before_fsync() {
        // The simulator's injected bug: claim durability that is not there.
        return state.last_sequence;
    }
    state.durable_sequence.min(state.last_sequence)
}
