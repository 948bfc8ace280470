//! The database-owned background thread that runs the protocol: a step
//! whenever a local change commits or a message arrives, and at least
//! every `interval`. It holds only a weak reference between steps, so it
//! never keeps a dropped database alive; `close()` stops and joins it. A
//! failed step (a closed or failing engine) is retried at the next wake;
//! steps are idempotent.

use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use super::transport::Waker;
use crate::db::DatabaseInner;

#[derive(Debug, Default)]
struct Flags {
    stopped: bool,
    /// Work arrived since the thread last looked.
    pending: bool,
}

#[derive(Debug, Default)]
struct Signal {
    flags: Mutex<Flags>,
    wake: Condvar,
    /// Steps finished so far, for callers waiting for one.
    steps: Mutex<u64>,
    step_done: Condvar,
}

/// The handle on the background thread (idle until started).
#[derive(Debug, Default)]
pub(crate) struct Runner {
    signal: Arc<Signal>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Runner {
    /// A function that wakes the thread.
    pub(crate) fn waker(&self) -> Waker {
        let signal = Arc::clone(&self.signal);
        Arc::new(move || {
            signal.flags.lock().pending = true;
            signal.wake.notify_one();
        })
    }

    /// Starts the thread (once; not again after a stop).
    pub(crate) fn start(db: &Arc<DatabaseInner>, interval: Duration) {
        let runner = &db.multi_active.runner;
        let mut thread = runner.thread.lock();
        if thread.is_some() || runner.signal.flags.lock().stopped {
            return;
        }
        let weak = Arc::downgrade(db);
        let signal = Arc::clone(&runner.signal);
        let interval = interval.max(Duration::from_micros(100));
        *thread = std::thread::Builder::new()
            .name("nimbus-multi-active".into())
            .spawn(move || run(&weak, &signal, interval))
            .ok();
    }

    /// Whether the thread runs.
    pub(crate) fn is_running(&self) -> bool {
        self.thread.lock().is_some()
    }

    /// Stops the thread and waits for it, unless called from it.
    pub(crate) fn stop(&self) {
        self.signal_stop();
        let handle = self.thread.lock().take();
        if let Some(handle) = handle
            && handle.thread().id() != std::thread::current().id()
        {
            // A panic in a step has already been reported by the panic
            // hook; there is nothing more to do with it here.
            let _ = handle.join();
        }
    }

    /// Waits until a step that started after this call has finished;
    /// false if no thread runs.
    pub(crate) fn wait_for_step(&self) -> bool {
        if self.thread.lock().is_none() {
            return false;
        }
        let mut steps = self.signal.steps.lock();
        // The step in progress may have started before the call.
        let target = *steps + 2;
        {
            self.signal.flags.lock().pending = true;
            self.signal.wake.notify_one();
        }
        while *steps < target {
            if self.signal.flags.lock().stopped {
                return false;
            }
            self.signal.step_done.wait(&mut steps);
        }
        true
    }

    /// Tells the thread to stop without waiting (from `Drop`).
    pub(crate) fn signal_stop(&self) {
        self.signal.flags.lock().stopped = true;
        self.signal.wake.notify_all();
        // Waiters see `stopped` once woken.
        let _steps = self.signal.steps.lock();
        self.signal.step_done.notify_all();
    }
}

fn run(db: &Weak<DatabaseInner>, signal: &Signal, interval: Duration) {
    loop {
        {
            let mut flags = signal.flags.lock();
            if !flags.stopped && !flags.pending {
                signal.wake.wait_for(&mut flags, interval);
            }
            if flags.stopped {
                return;
            }
            flags.pending = false;
        }
        let Some(inner) = db.upgrade() else { return };
        if inner.kv.is_closed() {
            return;
        }
        let _ = super::step::step(&inner);
        drop(inner);
        *signal.steps.lock() += 1;
        signal.step_done.notify_all();
    }
}
