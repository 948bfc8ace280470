//! The database-owned background thread of the kv layer's timed work: the
//! TTL sweep (every `DatabaseOptions::ttl_sweep_interval`) and stream
//! trimming (every [`TRIM_INTERVAL`]) and point-in-time recovery's
//! snapshots and retention (every [`PITR_MAINTENANCE_INTERVAL`]).
//!
//! It holds only a weak reference between rounds, so it never keeps a
//! dropped database alive, and `close()` stops and joins it. A failed
//! round (a closed or failing engine) is retried at the next tick; the
//! work is idempotent.

use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::db::DatabaseInner;

/// How often stream records past retention are trimmed.
pub const TRIM_INTERVAL: Duration = Duration::from_secs(10);

/// How often due PITR base snapshots are taken and retention applied.
pub const PITR_MAINTENANCE_INTERVAL: Duration = Duration::from_secs(60);

/// The stop signal shared with the thread.
#[derive(Debug, Default)]
struct Signal {
    stopped: Mutex<bool>,
    wake: Condvar,
    /// Rounds finished so far, for callers waiting for one.
    rounds: Mutex<u64>,
    round_done: Condvar,
}

/// The handle on the background thread (idle until started).
#[derive(Debug, Default)]
pub(crate) struct Sweeper {
    signal: Arc<Signal>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Sweeper {
    /// Starts the thread (once).
    pub(crate) fn start(db: &Arc<DatabaseInner>) {
        let sweeper = &db.sweeper;
        let mut thread = sweeper.thread.lock();
        if thread.is_some() || *sweeper.signal.stopped.lock() {
            return;
        }
        let weak = Arc::downgrade(db);
        let signal = Arc::clone(&sweeper.signal);
        let interval = db.ttl_sweep_interval.max(Duration::from_millis(1));
        // Without a thread nothing expires by itself; the explicit
        // `run_ttl_sweep_now` / `trim_streams_now` still work.
        *thread = std::thread::Builder::new()
            .name("nimbus-kv-sweeper".into())
            .spawn(move || run(&weak, &signal, interval))
            .ok();
    }

    /// Stops the thread and waits for it, unless called from it.
    pub(crate) fn stop(&self) {
        self.signal_stop();
        let handle = self.thread.lock().take();
        if let Some(handle) = handle
            && handle.thread().id() != std::thread::current().id()
        {
            // A panic in a round has already been reported by the panic
            // hook; there is nothing more to do with it here.
            let _ = handle.join();
        }
    }

    /// Waits until a round that started after this call has finished;
    /// false if no thread runs (background threads are off or stopped).
    pub(crate) fn wait_for_round(&self) -> bool {
        if self.thread.lock().is_none() {
            return false;
        }
        let mut rounds = self.signal.rounds.lock();
        // The round in progress may have started before the call.
        let target = *rounds + 2;
        self.signal.wake.notify_all();
        while *rounds < target {
            if *self.signal.stopped.lock() {
                return false;
            }
            self.signal.round_done.wait(&mut rounds);
        }
        true
    }

    /// Tells the thread to stop without waiting (from `Drop`).
    pub(crate) fn signal_stop(&self) {
        *self.signal.stopped.lock() = true;
        self.signal.wake.notify_all();
        // Waiters see `stopped` once woken.
        let _rounds = self.signal.rounds.lock();
        self.signal.round_done.notify_all();
    }
}

fn run(db: &Weak<DatabaseInner>, signal: &Signal, interval: Duration) {
    let mut next_trim = Instant::now() + TRIM_INTERVAL;
    let mut next_pitr = Instant::now() + PITR_MAINTENANCE_INTERVAL;
    loop {
        {
            let mut stopped = signal.stopped.lock();
            if !*stopped {
                signal.wake.wait_for(&mut stopped, interval);
            }
            if *stopped {
                return;
            }
        }
        let Some(inner) = db.upgrade() else { return };
        if inner.kv.is_closed() {
            return;
        }
        let _ = super::sweep_expired(&inner);
        if Instant::now() >= next_trim {
            let _ = super::trim_streams(&inner);
            next_trim = Instant::now() + TRIM_INTERVAL;
        }
        if Instant::now() >= next_pitr {
            let _ = super::pitr::maintain(&inner);
            next_pitr = Instant::now() + PITR_MAINTENANCE_INTERVAL;
        }
        drop(inner);
        *signal.rounds.lock() += 1;
        signal.round_done.notify_all();
    }
}
