//! Hybrid logical clocks and the versions they stamp on items: what
//! "last writer" means in last-writer-wins.
//!
//! A [`Timestamp`] is wall-clock milliseconds (from the database's
//! injectable clock) plus a logical counter, so it stays close to real time
//! yet never runs backwards and always moves past every timestamp the
//! replica has seen (Kulkarni et al., "Logical Physical Clocks", 2014). A
//! [`Version`] adds the writing replica's id, which breaks ties between
//! equal timestamps, so versions are totally ordered and every replica
//! picks the same winner. This module never reads or writes the engine.

use std::fmt;
use std::time::Duration;

/// The id of one replica of a multi-active group; unique within the group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ReplicaId(pub u64);

impl fmt::Display for ReplicaId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "replica-{}", self.0)
    }
}

/// A hybrid logical clock reading: wall milliseconds, then a counter that
/// orders events within one millisecond (or while the wall clock lags a
/// timestamp seen from a peer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp {
    /// Milliseconds since the Unix epoch.
    pub wall_millis: u64,
    /// Orders timestamps that share `wall_millis`.
    pub logical: u32,
}

impl Timestamp {
    /// The smallest timestamp after this one.
    pub fn successor(self) -> Self {
        match self.logical.checked_add(1) {
            Some(logical) => Self {
                wall_millis: self.wall_millis,
                logical,
            },
            None => Self {
                wall_millis: self.wall_millis.saturating_add(1),
                logical: 0,
            },
        }
    }

    /// The largest timestamp before this one (itself at zero).
    pub fn predecessor(self) -> Self {
        match self.logical.checked_sub(1) {
            Some(logical) => Self {
                wall_millis: self.wall_millis,
                logical,
            },
            None if self.wall_millis == 0 => self,
            None => Self {
                wall_millis: self.wall_millis - 1,
                logical: u32::MAX,
            },
        }
    }
}

/// The version of one item: when and where its last write happened. The
/// derived order (timestamp, then replica) is the last-writer-wins order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    /// When the write happened.
    pub timestamp: Timestamp,
    /// Where it happened: the tie-break between equal timestamps.
    pub replica: ReplicaId,
}

/// A remote timestamp further ahead of the local wall clock than the
/// configured bound: accepting it would drag this replica's clock (and
/// every later write's timestamp) into the future, so it is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockSkew {
    /// How far ahead of the local clock the remote timestamp was.
    pub ahead: Duration,
}

/// One replica's hybrid logical clock (not thread-safe by itself; the
/// owner keeps it under its log lock so timestamps and log positions are
/// handed out in the same order).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct HybridClock {
    last: Timestamp,
}

impl HybridClock {
    /// A clock that will never issue a timestamp at or below `floor` (the
    /// last one issued before a restart).
    pub(crate) fn starting_after(floor: Timestamp) -> Self {
        Self { last: floor }
    }

    /// The last timestamp issued or observed.
    pub(crate) fn last(&self) -> Timestamp {
        self.last
    }

    /// A timestamp for a local write at wall time `now_millis` that is
    /// later than every timestamp issued or observed and than `after` (the
    /// version being overwritten, so a local overwrite always wins
    /// everywhere, as it did here).
    pub(crate) fn tick(&mut self, now_millis: u64, after: Option<Timestamp>) -> Timestamp {
        let floor = after.map_or(self.last, |after| after.max(self.last));
        let next = if now_millis > floor.wall_millis {
            Timestamp {
                wall_millis: now_millis,
                logical: 0,
            }
        } else {
            floor.successor()
        };
        self.last = next;
        next
    }

    /// Moves the clock up to wall time `now_millis` if it is behind (an
    /// idle replica's promise "my next write is later than this" then
    /// follows real time, so peers can collect tombstones).
    pub(crate) fn advance_to(&mut self, now_millis: u64) {
        if now_millis > self.last.wall_millis {
            self.last = Timestamp {
                wall_millis: now_millis,
                logical: 0,
            };
        }
    }

    /// Takes in a timestamp from a peer, unless it is more than
    /// `max_ahead` ahead of the local wall time `now_millis`.
    pub(crate) fn observe(
        &mut self,
        now_millis: u64,
        remote: Timestamp,
        max_ahead: Duration,
    ) -> Result<(), ClockSkew> {
        let ahead_millis = remote.wall_millis.saturating_sub(now_millis);
        if u128::from(ahead_millis) > max_ahead.as_millis() {
            return Err(ClockSkew {
                ahead: Duration::from_millis(ahead_millis),
            });
        }
        self.last = self.last.max(remote);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(wall_millis: u64, logical: u32) -> Timestamp {
        Timestamp {
            wall_millis,
            logical,
        }
    }

    #[test]
    fn tick_follows_the_wall_clock_when_it_moves() {
        let mut clock = HybridClock::default();
        assert_eq!(clock.tick(100, None), ts(100, 0));
        assert_eq!(clock.tick(105, None), ts(105, 0));
    }

    #[test]
    fn tick_counts_logically_when_the_wall_clock_stalls_or_goes_back() {
        let mut clock = HybridClock::default();
        assert_eq!(clock.tick(100, None), ts(100, 0));
        assert_eq!(clock.tick(100, None), ts(100, 1));
        assert_eq!(clock.tick(90, None), ts(100, 2));
    }

    #[test]
    fn tick_passes_the_version_it_overwrites() {
        let mut clock = HybridClock::default();
        assert_eq!(clock.tick(100, Some(ts(250, 7))), ts(250, 8));
        assert_eq!(clock.tick(100, None), ts(250, 9));
    }

    #[test]
    fn observe_moves_the_clock_past_a_remote_timestamp() {
        let mut clock = HybridClock::default();
        clock.tick(100, None);
        let bound = Duration::from_millis(500);
        assert_eq!(clock.observe(100, ts(300, 4), bound), Ok(()));
        assert_eq!(clock.tick(101, None), ts(300, 5));
    }

    #[test]
    fn observe_rejects_a_timestamp_beyond_the_skew_bound_and_stays_put() {
        let mut clock = HybridClock::default();
        clock.tick(1_000, None);
        let bound = Duration::from_millis(500);
        assert_eq!(clock.observe(1_000, ts(1_500, 0), bound), Ok(()));
        assert_eq!(
            clock.observe(1_000, ts(1_501, 0), bound),
            Err(ClockSkew {
                ahead: Duration::from_millis(501)
            })
        );
        assert_eq!(clock.last(), ts(1_500, 0));
    }

    #[test]
    fn advance_to_only_moves_forward_and_later_ticks_pass_it() {
        let mut clock = HybridClock::starting_after(ts(500, 3));
        clock.advance_to(400);
        assert_eq!(clock.last(), ts(500, 3));
        clock.advance_to(900);
        assert_eq!(clock.last(), ts(900, 0));
        assert_eq!(clock.tick(900, None), ts(900, 1));
    }

    #[test]
    fn logical_overflow_carries_into_the_wall_clock() {
        let mut clock = HybridClock::starting_after(ts(7, u32::MAX));
        assert_eq!(clock.tick(7, None), ts(8, 0));
        assert_eq!(ts(8, 0).predecessor(), ts(7, u32::MAX));
        assert_eq!(ts(0, 0).predecessor(), ts(0, 0));
    }

    #[test]
    fn versions_order_by_timestamp_then_replica() {
        let a = Version {
            timestamp: ts(10, 0),
            replica: ReplicaId(9),
        };
        let b = Version {
            timestamp: ts(10, 1),
            replica: ReplicaId(1),
        };
        let c = Version {
            timestamp: ts(10, 1),
            replica: ReplicaId(2),
        };
        assert!(a < b && b < c);
    }
}
