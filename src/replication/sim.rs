//! The deterministic replication simulator (test-only).

use std::cell::Cell;

thread_local! {
    /// The injected bug: followers acknowledge `Durable` before they fsync.
    static ACK_BEFORE_FSYNC: Cell<bool> = const { Cell::new(false) };
}

/// Whether the injected "ack before fsync" bug is on (in this thread).
pub(crate) fn ack_before_fsync() -> bool {
    ACK_BEFORE_FSYNC.with(Cell::get)
}
