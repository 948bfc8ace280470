//! The database-owned background thread of timed work: the TTL sweep
//! (every `DatabaseOptions::ttl_sweep_interval`), stream trimming (every
//! [`TRIM_INTERVAL`]), point-in-time recovery's snapshots and retention
//! (every [`PITR_MAINTENANCE_INTERVAL`]) and the object store's event
//! delivery, lifecycle and GC (each on its `DatabaseOptions::object_schedule`
//! interval).
//!
//! It holds only a weak reference between rounds, so it never keeps a
//! dropped database alive, and `close()` stops and joins it. A failed
//! round (a closed or failing engine) is retried at the next tick; the
//! work is idempotent.

use std::sync::atomic::{AtomicBool, Ordering};
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
    /// Set by `wait_for_round`: the next round sweeps even if not due.
    sweep_requested: AtomicBool,
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
        let objects = crate::objects::ObjectTasks::new(db.object_schedule, Instant::now());
        let tick = interval.min(db.object_schedule.tick());
        // Without a thread nothing expires by itself; the explicit
        // `run_ttl_sweep_now` / `trim_streams_now` still work.
        *thread = std::thread::Builder::new()
            .name("nimbus-kv-sweeper".into())
            .spawn(move || run(&weak, &signal, interval, tick, objects))
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
        self.signal.sweep_requested.store(true, Ordering::Release);
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

/// The thread's loop: wakes every `tick` (or when woken), sweeps expired
/// items every `interval`, and runs whatever else is due.
fn run(
    db: &Weak<DatabaseInner>,
    signal: &Signal,
    interval: Duration,
    tick: Duration,
    mut objects: crate::objects::ObjectTasks,
) {
    let mut next_trim = Instant::now() + TRIM_INTERVAL;
    let mut next_pitr = Instant::now() + PITR_MAINTENANCE_INTERVAL;
    let mut next_sweep = Instant::now() + interval;
    loop {
        {
            let mut stopped = signal.stopped.lock();
            if !*stopped {
                signal.wake.wait_for(&mut stopped, tick);
            }
            if *stopped {
                return;
            }
        }
        let Some(inner) = db.upgrade() else { return };
        if inner.kv.is_closed() {
            return;
        }
        let now = Instant::now();
        if now >= next_sweep || signal.sweep_requested.swap(false, Ordering::AcqRel) {
            let _ = super::sweep_expired(&inner);
            next_sweep = now + interval;
        }
        objects.run_due(&inner.objects, now);
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
