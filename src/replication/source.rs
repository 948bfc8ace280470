//! The shipping side of a node (a primary, or a replica forwarding to its
//! own followers): the commit hook that frames and sends each group and,
//! for a synchronous primary, waits for the quorum before the group
//! becomes visible; subscriptions (stream from the retained log, or a
//! snapshot when too far behind or diverged); acknowledgements; heartbeats.

use std::sync::Arc;
use std::time::Duration;

use super::epoch::same_lineage;
use super::frame::{Frame, Message, NodeId, Progress};
use super::node::{
    Follower, NodeInner, NodeState, Quorum, ReplicationEvent, Retained, Role, SyncPolicy,
    heartbeat_of,
};
use crate::storage::commit::CommittedBatch;
use crate::storage::{Engine, StorageError};

/// How often a waiting synchronous commit re-prompts lagging standbys
/// (a heartbeat makes one that lost a frame subscribe again).
const RETRANSMIT_INTERVAL: Duration = Duration::from_millis(20);

/// The most frames sent in answer to one subscription; the rest follow as
/// the follower acknowledges (a heartbeat shows it is still behind).
const CATCH_UP_FRAMES_MAX: usize = 1_024;

/// The most object-chunk bytes sent in answer to one subscription (at
/// least one frame's are).
const CATCH_UP_CHUNK_BYTES_MAX: usize = 64 << 20;

impl NodeInner {
    /// Installs the replication hook on `engine`.
    pub(crate) fn install_hook_on(&self, engine: &Engine) -> Result<(), StorageError> {
        let weak = self.weak.clone();
        engine.set_replication_hook(Some(Arc::new(move |group: &[CommittedBatch]| {
            match weak.upgrade() {
                Some(node) => node.ship(group),
                None => Ok(()),
            }
        })))
    }

    /// The hook: frames the group, sends it to streaming followers and,
    /// on a synchronous primary, waits for the quorum.
    fn ship(&self, group: &[CommittedBatch]) -> Result<(), StorageError> {
        let now = self.transport.now_micros();
        let (epoch, frames, targets, wait) = {
            let mut state = self.state.lock();
            let epoch = state.epochs.epoch;
            if let Role::Fenced { newer } = state.role {
                return Err(StorageError::Fenced { epoch, newer });
            }
            let policy = match (state.role, self.options.sync) {
                (Role::Primary, Some(policy)) if !state.degraded && !state.opening => Some(policy),
                _ => None,
            };
            let ack = policy.map(|p| p.level);
            let mut frames = Vec::with_capacity(group.len());
            for committed in group {
                let frame = Frame::new(epoch, committed.first_seq, &committed.batch, ack);
                state.last_sequence = frame.last_sequence;
                state.last_checksum = Some(frame.checksum);
                state.retained.push_back(Retained {
                    frame: frame.clone(),
                    shipped_micros: now,
                });
                frames.push(frame);
            }
            while state.retained.len() > self.options.retained_frames {
                state.retained.pop_front();
            }
            let targets: Vec<NodeId> = state
                .followers
                .iter()
                .filter(|(_, f)| f.streaming)
                .map(|(&id, _)| id)
                .collect();
            state.stats.frames_sent += (frames.len() * targets.len()) as u64;
            (
                epoch,
                frames,
                targets,
                policy.map(|p| (p, state.last_sequence)),
            )
        };
        // Commit groups reach the hook one at a time, so the disk copy
        // keeps their order.
        if let Some(log) = self.retained_log.lock().as_mut() {
            log.append(&frames);
        }
        // Object bodies go ahead of the frames naming them.
        let chunks: Vec<Vec<Message>> = if targets.is_empty() {
            Vec::new()
        } else {
            group
                .iter()
                .map(|committed| self.chunk_messages(epoch, &committed.batch))
                .collect()
        };
        for &to in &targets {
            for (i, frame) in frames.iter().enumerate() {
                for chunk in chunks.get(i).into_iter().flatten() {
                    self.transport.send(self.options.id, to, chunk.clone());
                }
                self.transport
                    .send(self.options.id, to, Message::Frame(frame.clone()));
            }
        }
        match wait {
            Some((policy, sequence)) => self.await_quorum(policy, sequence),
            None => Ok(()),
        }
    }

    /// Waits until the policy's quorum acknowledged `sequence`.
    fn await_quorum(&self, policy: SyncPolicy, sequence: u64) -> Result<(), StorageError> {
        let mut waited = Duration::ZERO;
        loop {
            let slice = RETRANSMIT_INTERVAL.min(policy.timeout - waited);
            let mut done = || {
                let state = self.state.lock();
                matches!(state.role, Role::Fenced { .. }) || quorum_met(&state, policy, sequence).0
            };
            let met = self.transport.wait_until(&mut done, slice);
            waited += slice;
            let mut state = self.state.lock();
            if let Role::Fenced { newer } = state.role {
                return Err(StorageError::Fenced {
                    epoch: state.epochs.epoch,
                    newer,
                });
            }
            if met {
                return Ok(());
            }
            if waited >= policy.timeout {
                let (_, acknowledged, required) = quorum_met(&state, policy, sequence);
                if policy.degrade_to_async {
                    state.degraded = true;
                    state.stats.degraded_commits += 1;
                    state.event(ReplicationEvent::DegradedToAsync { sequence });
                    return Ok(());
                }
                return Err(StorageError::ReplicationTimeout {
                    sequence,
                    acknowledged,
                    required,
                    waited_ms: u64::try_from(waited.as_millis()).unwrap_or(u64::MAX),
                });
            }
            // Prompt the standbys that have not acknowledged: a heartbeat
            // makes one that lost frames (or never subscribed) ask again.
            let heartbeat = heartbeat_of(&state);
            let lagging: Vec<NodeId> = state
                .followers
                .iter()
                .filter(|(_, f)| f.synchronous && policy.level.position(&f.progress) < sequence)
                .map(|(&id, _)| id)
                .collect();
            drop(state);
            for id in lagging {
                self.transport.send(self.options.id, id, heartbeat.clone());
            }
        }
    }

    /// A follower asks to be streamed to from after `last_sequence`.
    pub(crate) fn on_subscribe(
        &self,
        from: NodeId,
        epoch: u64,
        last_sequence: u64,
        last_checksum: Option<u64>,
        lineage: u64,
    ) {
        let mut state = self.state.lock();
        let own_epoch = state.epochs.epoch;
        if epoch > own_epoch {
            self.fence_locked(&mut state, epoch);
            return;
        }
        if matches!(state.role, Role::Fenced { .. }) {
            return;
        }
        let follower = state.followers.entry(from).or_default().clone();
        // A subscriber of another lineage shares no history with this node
        // however its positions compare (a directory that held another
        // database): it is resynchronised from a snapshot.
        let diverged = !same_lineage(state.epochs.lineage, lineage, last_sequence)
            || diverged(&state, epoch, last_sequence, last_checksum);
        let oldest = state.retained.front().map(|r| r.frame.sequence);
        let covered = last_sequence == state.last_sequence
            || oldest.is_some_and(|first| last_sequence + 1 >= first);
        if diverged || !covered {
            if diverged {
                state.event(ReplicationEvent::Diverged {
                    follower: from,
                    epoch,
                    last_sequence,
                });
            }
            // An unfinished snapshot of this follower is offered again, so
            // a transfer resumes rather than restarts.
            // One it already installed (it is at or past the snapshot's
            // position) is not offered again, nor one taken under another
            // epoch history: the offer labels it with the current history,
            // and a copy of a replaced lineage so labelled would pass every
            // divergence check later (seed 1410 of the long run).
            let offer = follower.snapshot.and_then(|id| {
                state
                    .served
                    .get(&id)
                    .filter(|s| last_sequence < s.last_sequence && s.epochs == state.epochs)
                    .map(|s| (id, s.files.len()))
            });
            drop(state);
            let offer = match offer {
                Some(offer) => Some(offer),
                None => self.start_snapshot(from),
            };
            if let Some((id, files)) = offer {
                // Labelled with the history the snapshot was taken under.
                let epochs = self.state.lock().served.get(&id).map(|s| s.epochs.clone());
                if let Some(epochs) = epochs {
                    let message = Message::NeedSnapshot {
                        id,
                        epoch: epochs.epoch,
                        files: u32::try_from(files).unwrap_or(u32::MAX),
                        starts: epochs.starts,
                        lineage: epochs.lineage,
                    };
                    self.transport.send(self.options.id, from, message);
                }
            }
            return;
        }
        let frames: Vec<Frame> = state
            .retained
            .iter()
            .filter(|r| r.frame.sequence > last_sequence)
            .take(CATCH_UP_FRAMES_MAX)
            .map(|r| {
                let mut frame = r.frame.clone();
                frame.epoch = own_epoch;
                frame
            })
            .collect();
        if let Some(f) = state.followers.get_mut(&from) {
            f.streaming = true;
            f.snapshot = None;
            raise(
                &mut f.progress,
                Progress {
                    received: last_sequence,
                    written: last_sequence,
                    durable: last_sequence,
                    applied: last_sequence,
                },
            );
        }
        state.stats.frames_sent += frames.len() as u64;
        let welcome = Message::Welcome {
            epoch: own_epoch,
            starts: state.epochs.starts.clone(),
            lineage: state.epochs.lineage,
        };
        drop(state);
        self.transport.send(self.options.id, from, welcome);
        let mut chunk_bytes = 0;
        for frame in frames {
            if let Ok(batch) = frame.batch() {
                for chunk in self.chunk_messages(own_epoch, &batch) {
                    if let Message::Chunk { entry, .. } = &chunk {
                        chunk_bytes += entry.len();
                    }
                    self.transport.send(self.options.id, from, chunk);
                }
            }
            self.transport
                .send(self.options.id, from, Message::Frame(frame));
            if chunk_bytes >= CATCH_UP_CHUNK_BYTES_MAX {
                // The rest follow as the follower acknowledges.
                break;
            }
        }
    }

    /// A follower reports progress.
    pub(crate) fn on_ack(&self, from: NodeId, epoch: u64, progress: Progress) {
        let mut state = self.state.lock();
        let own_epoch = state.epochs.epoch;
        if epoch > own_epoch {
            self.fence_locked(&mut state, epoch);
            return;
        }
        if epoch < own_epoch {
            state.stats.stale_rejected += 1;
            state.event(ReplicationEvent::StaleRejected { from, epoch });
            drop(state);
            self.transport
                .send(self.options.id, from, Message::Fenced { epoch: own_epoch });
            return;
        }
        let last = state.last_sequence;
        let degraded = state.degraded;
        let Some(follower) = state.followers.get_mut(&from) else {
            return;
        };
        raise(&mut follower.progress, progress);
        let caught_up = follower.synchronous && follower.progress.applied >= last;
        if degraded && caught_up {
            state.degraded = false;
            state.event(ReplicationEvent::SyncRestored { sequence: last });
        }
        drop(state);
        self.transport.notify();
    }

    /// A node at a newer epoch answered: a primary stops accepting writes.
    pub(crate) fn fence_locked(&self, state: &mut NodeState, newer: u64) {
        if state.role == Role::Primary && newer > state.epochs.epoch {
            state.role = Role::Fenced { newer };
            let epoch = state.epochs.epoch;
            state.event(ReplicationEvent::Fenced { epoch, newer });
            if let Some(db) = self.db.read().as_ref() {
                let _ = db.engine().refuse_local_writes(true);
            }
            self.transport.notify();
        }
    }

    /// Heartbeats to every follower (a source's periodic work).
    pub(crate) fn send_heartbeats(&self) {
        let (heartbeat, followers) = {
            let state = self.state.lock();
            if matches!(state.role, Role::Fenced { .. }) {
                return;
            }
            (
                heartbeat_of(&state),
                state.followers.keys().copied().collect::<Vec<_>>(),
            )
        };
        for id in followers {
            self.transport.send(self.options.id, id, heartbeat.clone());
        }
    }
}

/// Whether the quorum acknowledged `sequence`, with how many did and how
/// many must.
fn quorum_met(state: &NodeState, policy: SyncPolicy, sequence: u64) -> (bool, usize, usize) {
    let standbys: Vec<&Follower> = state.followers.values().filter(|f| f.synchronous).collect();
    let acknowledged = standbys
        .iter()
        .filter(|f| policy.level.position(&f.progress) >= sequence)
        .count();
    let required = match policy.quorum {
        Quorum::Any(k) => k,
        Quorum::All => standbys.len().max(1),
    };
    (acknowledged >= required, acknowledged, required)
}

/// Whether a subscriber at `epoch` with `last_sequence` holds writes this
/// node's lineage does not: it is past the end of its epoch here, past
/// this node's end, or its last frame's checksum differs from ours.
fn diverged(state: &NodeState, epoch: u64, last_sequence: u64, checksum: Option<u64>) -> bool {
    if last_sequence > state.last_sequence {
        return true;
    }
    if epoch < state.epochs.epoch
        && state
            .epochs
            .end_of(epoch)
            .is_some_and(|end| last_sequence > end)
    {
        return true;
    }
    match checksum {
        Some(checksum) => state
            .retained
            .iter()
            .find(|r| r.frame.last_sequence == last_sequence)
            .is_some_and(|r| r.frame.checksum != checksum),
        None => false,
    }
}

/// Raises each position of `to` to `from`'s where that is higher (acks
/// may arrive reordered or duplicated).
fn raise(to: &mut Progress, from: Progress) {
    to.received = to.received.max(from.received);
    to.written = to.written.max(from.written);
    to.durable = to.durable.max(from.durable);
    to.applied = to.applied.max(from.applied);
}
