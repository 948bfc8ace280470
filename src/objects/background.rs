//! The object store's timed work, run by the database's background thread
//! (`kv::Sweeper`): delivering outbox events to registered handlers,
//! applying lifecycle rules, and collecting unreferenced chunks — each on
//! its own interval from [`ObjectSchedule`].
//!
//! Every task is idempotent and safe to repeat, so a failed round (a
//! closed or failing engine, a handler that refused an event) is simply
//! retried when the task is next due. The explicit calls
//! ([`Objects::deliver_events`], [`Objects::run_lifecycle`],
//! [`Objects::gc`]) keep working with or without the thread.

use std::time::{Duration, Instant};

use super::{ObjectStore, Objects};

/// How often the background thread runs each object-store task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectSchedule {
    /// How often pending events are handed to the handlers registered with
    /// [`Objects::set_event_handler`] (default 100 ms): an event reaches
    /// its handler about this long after its change committed.
    pub event_delivery_interval: Duration,
    /// How often lifecycle rules are applied (default 1 h). S3 evaluates
    /// them about once a day; rules are day-based, so an hourly run acts
    /// within an hour of an object becoming due.
    pub lifecycle_interval: Duration,
    /// How often unreferenced chunks past their grace period are freed and
    /// mostly dead packs rewritten (default 1 h).
    pub gc_interval: Duration,
}

impl Default for ObjectSchedule {
    fn default() -> Self {
        Self {
            event_delivery_interval: Duration::from_millis(100),
            lifecycle_interval: Duration::from_secs(3600),
            gc_interval: Duration::from_secs(3600),
        }
    }
}

impl ObjectSchedule {
    /// The shortest interval: the background thread wakes at least this
    /// often for the object store.
    pub(crate) fn tick(&self) -> Duration {
        self.event_delivery_interval
            .min(self.lifecycle_interval)
            .min(self.gc_interval)
            .max(Duration::from_millis(1))
    }
}

/// When each task is next due.
#[derive(Debug)]
pub(crate) struct ObjectTasks {
    schedule: ObjectSchedule,
    events: Instant,
    lifecycle: Instant,
    gc: Instant,
}

impl ObjectTasks {
    /// Tasks first due one interval after `now`.
    pub(crate) fn new(schedule: ObjectSchedule, now: Instant) -> Self {
        Self {
            schedule,
            events: now + schedule.event_delivery_interval,
            lifecycle: now + schedule.lifecycle_interval,
            gc: now + schedule.gc_interval,
        }
    }

    /// Runs every task due at `now` on `store` and schedules its next run.
    /// Errors are dropped: the task runs again when next due.
    pub(crate) fn run_due(&mut self, store: &ObjectStore, now: Instant) {
        let objects = Objects {
            store: &store.inner,
        };
        if now >= self.events {
            let _ = objects.deliver_events();
            self.events = now + self.schedule.event_delivery_interval;
        }
        if now >= self.lifecycle {
            let _ = objects.run_lifecycle();
            self.lifecycle = now + self.schedule.lifecycle_interval;
        }
        if now >= self.gc {
            let _ = objects.gc();
            self.gc = now + self.schedule.gc_interval;
        }
    }
}
