//! The background syncer: bounds how long a `Buffered` write stays only in
//! the OS page cache.
//!
//! One thread per file-backed pipeline wakes every interval (or when
//! [`BackgroundSync::sync_and_wait`] asks) and syncs the log if anything
//! appended is not yet durable. A sync failure is latched by the pipeline's
//! terminal state like any other. The thread stops when the pipeline is
//! closed or dropped; it never outlives it.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use crate::storage::error::{Result, StorageError};

/// What the thread does each round.
pub(super) type SyncRound = Box<dyn Fn() + Send + Sync>;

/// A running background syncer.
#[derive(Debug)]
pub(super) struct BackgroundSync {
    control: Arc<Control>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Debug)]
struct Control {
    state: Mutex<ControlState>,
    wakeup: Condvar,
    interval: Duration,
}

#[derive(Debug, Default)]
struct ControlState {
    stop: bool,
    /// Rounds asked for by [`BackgroundSync::sync_and_wait`].
    requested: u64,
    /// The highest request a finished round has served.
    served: u64,
}

impl BackgroundSync {
    /// Starts a thread that runs `round` every `interval` and on request.
    pub(super) fn start(interval: Duration, round: SyncRound) -> Result<Self> {
        let control = Arc::new(Control {
            state: Mutex::new(ControlState::default()),
            wakeup: Condvar::new(),
            interval,
        });
        let thread_control = Arc::clone(&control);
        let thread = std::thread::Builder::new()
            .name("nimbus-wal-sync".into())
            .spawn(move || run(&thread_control, &round))
            .map_err(|e| StorageError::io("spawn", "nimbus-wal-sync", e))?;
        Ok(Self {
            control,
            thread: Some(thread),
        })
    }

    /// Asks for a round now and waits until one that started after the
    /// request has finished (or the syncer stopped). Tests use this instead
    /// of sleeping for an interval.
    pub(super) fn sync_and_wait(&self) {
        let mut state = self.control.state.lock();
        state.requested += 1;
        let ticket = state.requested;
        self.control.wakeup.notify_all();
        while state.served < ticket && !state.stop {
            self.control.wakeup.wait(&mut state);
        }
    }

    /// Stops the thread and waits for it. Returns an error if it panicked.
    pub(super) fn stop(&mut self) -> Result<()> {
        self.control.state.lock().stop = true;
        self.control.wakeup.notify_all();
        match self.thread.take().map(JoinHandle::join) {
            Some(Err(_)) => Err(StorageError::io(
                "background sync",
                "nimbus-wal-sync",
                std::io::Error::other("the background sync thread panicked"),
            )),
            _ => Ok(()),
        }
    }
}

impl Drop for BackgroundSync {
    fn drop(&mut self) {
        // A panic of the thread was already reported by the round's own
        // error latching, if it got that far; drop cannot report more.
        let _ = self.stop();
    }
}

fn run(control: &Control, round: &SyncRound) {
    let mut state = control.state.lock();
    loop {
        if state.stop {
            return;
        }
        if state.served == state.requested {
            control.wakeup.wait_for(&mut state, control.interval);
            if state.stop {
                return;
            }
        }
        let serving = state.requested;
        drop(state);
        round();
        state = control.state.lock();
        state.served = state.served.max(serving);
        control.wakeup.notify_all();
    }
}
