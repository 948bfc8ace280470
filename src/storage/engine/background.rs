//! The engine's background thread: flushes immutable memtables and runs
//! compactions. It is owned by the engine's [`Handle`], stopped and joined
//! on close or when the last clone is dropped. An error it meets is
//! latched in the shared state, so the next call of any user sees it as
//! `StorageError::PreviousIo`; it is never swallowed.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;

use parking_lot::Mutex;

use super::state::Shared;
use crate::storage::error::{Result, StorageError};

/// What every clone of an `Engine` points at; dropping it stops the engine.
#[derive(Debug)]
pub(super) struct Handle {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Handle {
    /// Starts the background thread (unless the options turn it off).
    pub(super) fn start(shared: Arc<Shared>) -> Result<Arc<Self>> {
        let thread = if shared.options.background_threads {
            let worker = Arc::clone(&shared);
            Some(
                std::thread::Builder::new()
                    .name("nimbus-compaction".into())
                    .spawn(move || run(&worker))
                    .map_err(|e| StorageError::io("spawn", &shared.dir, e))?,
            )
        } else {
            None
        };
        Ok(Arc::new(Self {
            shared,
            thread: Mutex::new(thread),
        }))
    }

    pub(super) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Stops the thread, then the commit pipeline (which syncs the log).
    pub(super) fn close(&self) -> Result<()> {
        let already = self.shared.closed.swap(true, Ordering::AcqRel);
        self.stop_thread();
        if already {
            return Err(StorageError::Closed);
        }
        let closed = match self.shared.pipeline.get() {
            Some(pipeline) => pipeline.close(),
            None => Ok(()),
        };
        self.shared.progressed();
        drop(self.shared.lock.lock().take());
        match &*self.shared.failure.lock() {
            Some(error) => Err(error.clone()),
            None => closed,
        }
    }

    fn stop_thread(&self) {
        self.shared.notify();
        if let Some(thread) = self.thread.lock().take()
            && thread.join().is_err()
        {
            self.shared.fail(StorageError::io(
                "background",
                &self.shared.dir,
                std::io::Error::other("the background thread panicked"),
            ));
        }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        if !self.shared.closed.load(Ordering::Acquire) {
            // Drop cannot report; `close` is the way to see errors.
            let _ = self.close();
        }
    }
}

/// The thread's loop: wait for a wake-up, then flush and compact until
/// nothing is due, until the engine closes or fails.
fn run(shared: &Shared) {
    loop {
        {
            let mut woken = shared.wake_lock.lock();
            while !*woken {
                shared.wake.wait(&mut woken);
            }
            *woken = false;
        }
        if shared.closed.load(Ordering::Acquire) || shared.check().is_err() {
            return;
        }
        // Errors are latched by the functions themselves.
        if shared.run_pending_flushes().is_err() {
            return;
        }
        loop {
            if shared.closed.load(Ordering::Acquire) {
                return;
            }
            match shared.run_one_compaction() {
                Ok(true) => {}
                Ok(false) => break,
                Err(_) => return,
            }
            if !shared.read_state().immutable.is_empty() && shared.run_pending_flushes().is_err() {
                return;
            }
        }
    }
}
