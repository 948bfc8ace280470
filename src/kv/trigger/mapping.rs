//! The event-source mapping (Lambda's, in process): a handler registered
//! on a table's stream gets its records in batches, per shard in order and
//! shards in parallel (one worker thread per readable shard); a failing
//! batch is retried (optionally bisected) and blocks only its shard; each
//! acknowledged batch is checkpointed durably before the next is read, so
//! after a crash delivery resumes after the last acknowledged batch
//! (at-least-once, never skipping). A handler that panics has failed the
//! batch, as a crashed function has for Lambda: the panic is caught, and
//! the worker retries or skips the batch as configured.

use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::checkpoint::{self, Checkpoint, StartingPosition};
use super::consumer::current_stream;
use crate::db::DatabaseInner;
use crate::kv::error::{Error, Result};
use crate::kv::stream::{Position, Record, StreamLog, read_shard};
use crate::value::Item;
use crate::{Database, item};

/// What a handler returns on failure.
pub type HandlerError = Box<dyn std::error::Error + Send + Sync>;

/// A batch handler.
pub type Handler = Arc<dyn Fn(&[Record]) -> std::result::Result<(), HandlerError> + Send + Sync>;

/// The largest `batch_size`: 10,000, as Lambda allows for streams.
pub const BATCH_SIZE_MAX: usize = 10_000;
/// The longest `maximum_batching_window`: 300 s, as Lambda allows.
pub const BATCHING_WINDOW_MAX: Duration = Duration::from_secs(300);
/// The largest `maximum_retry_attempts`: 10,000.
pub const RETRY_ATTEMPTS_MAX: u32 = 10_000;
/// The oldest `maximum_record_age`: 7 days (604,800 s).
pub const RECORD_AGE_MAX: Duration = Duration::from_secs(604_800);
/// How long an idle worker waits for new records before looking again
/// (a write wakes it sooner).
const IDLE_WAIT: Duration = Duration::from_millis(50);

/// Why a batch went to the on-failure destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureReason {
    /// The handler kept failing past `maximum_retry_attempts`.
    RetryAttemptsExhausted,
    /// The records were older than `maximum_record_age`.
    RecordAgeExceeded,
}

/// What the on-failure destination learns about a batch it skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedBatch {
    /// The mapping's name.
    pub mapping: String,
    /// The stream.
    pub stream_arn: String,
    /// The shard.
    pub shard_id: String,
    /// The first record's sequence number.
    pub start_sequence_number: String,
    /// The last record's sequence number.
    pub end_sequence_number: String,
    /// How many records the batch had.
    pub batch_size: usize,
    /// Why it was skipped.
    pub reason: FailureReason,
    /// The handler's last error (empty for age).
    pub error: String,
}

/// Where skipped batches are reported.
#[derive(Clone)]
pub enum OnFailure {
    /// Called with each skipped batch's metadata.
    Callback(Arc<dyn Fn(&FailedBatch) + Send + Sync>),
    /// A table (partition key of type S) that receives one item per
    /// skipped batch, keyed by `mapping/shard/first sequence number`.
    Table(String),
}

impl fmt::Debug for OnFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Callback(_) => f.write_str("Callback(..)"),
            Self::Table(table) => f.debug_tuple("Table").field(table).finish(),
        }
    }
}

/// A `create_event_source_mapping` request.
#[must_use = "a request does nothing until `send` is called"]
pub struct CreateEventSourceMapping {
    db: Database,
    table: String,
    handler: Handler,
    config: Config,
}

impl fmt::Debug for CreateEventSourceMapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CreateEventSourceMapping")
            .field("table", &self.table)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone)]
struct Config {
    name: Option<String>,
    batch_size: usize,
    maximum_batching_window: Duration,
    starting_position: StartingPosition,
    maximum_retry_attempts: Option<u32>,
    bisect_batch_on_function_error: bool,
    maximum_record_age: Option<Duration>,
    retry_backoff: Duration,
    on_failure: Option<OnFailure>,
}

impl CreateEventSourceMapping {
    pub(crate) fn new(db: Database, table: String, handler: Handler) -> Self {
        Self {
            db,
            table,
            handler,
            config: Config {
                name: None,
                batch_size: 100,
                maximum_batching_window: Duration::ZERO,
                starting_position: StartingPosition::Latest,
                maximum_retry_attempts: None,
                bisect_batch_on_function_error: false,
                maximum_record_age: None,
                retry_backoff: Duration::from_millis(10),
                on_failure: None,
            },
        }
    }

    /// The mapping's durable name, the key of its checkpoints: a mapping
    /// created again under the same name (after a restart, or after the
    /// first was stopped) resumes from them. Names are unique among the
    /// database's running mappings. Default: `<table>-mapping`, so a
    /// second mapping of a table running at the same time needs a name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.config.name = Some(name.into());
        self
    }

    /// Records per batch, at most (1..=10,000, default 100).
    pub fn batch_size(mut self, size: usize) -> Self {
        self.config.batch_size = size;
        self
    }

    /// How long to gather records before calling the handler with fewer
    /// than `batch_size` (at most 300 s; default zero: at once).
    pub fn maximum_batching_window(mut self, window: Duration) -> Self {
        self.config.maximum_batching_window = window;
        self
    }

    /// Where a new mapping starts (default `Latest`).
    pub fn starting_position(mut self, position: StartingPosition) -> Self {
        self.config.starting_position = position;
        self
    }

    /// Retries of a failing batch before it is skipped (0..=10,000;
    /// default: until it succeeds or its records are too old).
    pub fn maximum_retry_attempts(mut self, attempts: u32) -> Self {
        self.config.maximum_retry_attempts = Some(attempts);
        self
    }

    /// Splits a failing batch in two and retries the halves separately.
    pub fn bisect_batch_on_function_error(mut self, on: bool) -> Self {
        self.config.bisect_batch_on_function_error = on;
        self
    }

    /// Skips records older than this (by the database's clock; at most 7
    /// days; default: no limit).
    pub fn maximum_record_age(mut self, age: Duration) -> Self {
        self.config.maximum_record_age = Some(age);
        self
    }

    /// The pause before the first retry, doubled per retry up to 1 s
    /// (default 10 ms).
    pub fn retry_backoff(mut self, backoff: Duration) -> Self {
        self.config.retry_backoff = backoff;
        self
    }

    /// Where skipped batches are reported.
    pub fn on_failure(mut self, destination: OnFailure) -> Self {
        self.config.on_failure = Some(destination);
        self
    }

    /// Validates the mapping and starts delivering. Fails with
    /// [`Error::ResourceInUse`] (Lambda's `ResourceConflictException`)
    /// while a running mapping of this database has the same name: the
    /// two would share one set of checkpoints.
    pub fn send(self) -> Result<EventSourceMapping> {
        let config = self.config;
        if config.batch_size == 0 || config.batch_size > BATCH_SIZE_MAX {
            return Err(Error::validation(format!(
                "BatchSize must be between 1 and {BATCH_SIZE_MAX}"
            )));
        }
        if config.maximum_batching_window > BATCHING_WINDOW_MAX {
            return Err(Error::validation(format!(
                "MaximumBatchingWindowInSeconds must be between 0 and {}",
                BATCHING_WINDOW_MAX.as_secs()
            )));
        }
        if config
            .maximum_retry_attempts
            .is_some_and(|n| n > RETRY_ATTEMPTS_MAX)
        {
            return Err(Error::validation(format!(
                "MaximumRetryAttempts must be between 0 and {RETRY_ATTEMPTS_MAX}"
            )));
        }
        if config
            .maximum_record_age
            .is_some_and(|age| age > RECORD_AGE_MAX || age < Duration::from_secs(60))
        {
            return Err(Error::validation(
                "MaximumRecordAgeInSeconds must be between 60 and 604800",
            ));
        }
        if let Some(OnFailure::Table(table)) = &config.on_failure {
            self.db.inner.kv.table(table)?;
        }
        let name = config
            .name
            .clone()
            .unwrap_or_else(|| format!("{}-mapping", self.table));
        checkpoint::check_name(&name)?;
        let log = current_stream(&self.db, &self.table)?;
        let streams = &self.db.inner.streams;
        streams.add_mapping(&name, || {
            start(&self.db, name.clone(), log, self.handler, config)
        })
    }
}

/// Loads (or, for a new name, saves) the checkpoints of mapping `name`
/// and starts its coordinator.
fn start(
    db: &Database,
    name: String,
    log: Arc<StreamLog>,
    handler: Handler,
    config: Config,
) -> Result<EventSourceMapping> {
    let checkpoints = checkpoint::start(&db.inner, &name, &log, config.starting_position)?;
    let shared = Arc::new(Shared {
        name,
        stream_arn: log.descriptor().arn(),
        log,
        handler,
        config,
        stopped: Mutex::new(false),
        ended: AtomicBool::new(false),
        wake: Condvar::new(),
        checkpoints: Mutex::new(checkpoints),
        workers: Mutex::new(HashMap::new()),
    });
    let weak = Arc::downgrade(&db.inner);
    let coordinator = Arc::clone(&shared);
    let thread = std::thread::Builder::new()
        .name(format!("nimbus-mapping-{}", shared.name))
        .spawn(move || coordinate(&weak, &coordinator))
        .map_err(|e| Error::validation(format!("cannot start the mapping: {e}")))?;
    Ok(EventSourceMapping {
        shared,
        thread: Arc::new(Mutex::new(Some(thread))),
    })
}

/// A running event-source mapping. It runs until [`stop`](Self::stop) or
/// the database closes; dropping the handle does not stop it.
#[derive(Clone)]
pub struct EventSourceMapping {
    shared: Arc<Shared>,
    thread: Arc<Mutex<Option<JoinHandle<()>>>>,
}

impl fmt::Debug for EventSourceMapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventSourceMapping")
            .field("name", &self.shared.name)
            .finish_non_exhaustive()
    }
}

impl EventSourceMapping {
    /// The mapping's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// Whether any thread of the mapping still runs (false once it has
    /// stopped, or the database has gone): until then its name is taken.
    pub(crate) fn is_running(&self) -> bool {
        !self.shared.ended.load(Ordering::Acquire)
    }

    /// Stops delivery and waits for the workers (a batch being handled
    /// finishes first; its checkpoint is saved if it succeeded).
    pub fn stop(&self) {
        {
            *self.shared.stopped.lock() = true;
        }
        self.shared.wake.notify_all();
        self.shared.log.wake_all();
        let thread = self.thread.lock().take();
        if let Some(thread) = thread
            && thread.thread().id() != std::thread::current().id()
        {
            // The coordinator runs no user code (workers do, and catch a
            // handler's panic): its panic, if any, was a bug the panic
            // hook has already reported.
            let _ = thread.join();
        }
    }
}

struct Shared {
    name: String,
    stream_arn: String,
    log: Arc<StreamLog>,
    handler: Handler,
    config: Config,
    stopped: Mutex<bool>,
    /// Set by the coordinator once it has joined every worker: nothing of
    /// the mapping runs or saves checkpoints any more.
    ended: AtomicBool,
    /// Wakes the coordinator (a shard finished, or stop).
    wake: Condvar,
    checkpoints: Mutex<HashMap<u32, Checkpoint>>,
    workers: Mutex<HashMap<u32, JoinHandle<()>>>,
}

impl Shared {
    fn is_stopped(&self) -> bool {
        *self.stopped.lock()
    }

    /// Waits up to `pause` unless stopped; false once stopped.
    fn pause(&self, pause: Duration) -> bool {
        let mut stopped = self.stopped.lock();
        if !*stopped && !pause.is_zero() {
            self.wake.wait_for(&mut stopped, pause);
        }
        !*stopped
    }
}

/// Starts a worker for each shard that became readable; joins them on stop.
fn coordinate(db: &Weak<DatabaseInner>, shared: &Arc<Shared>) {
    loop {
        let ready = {
            let checkpoints = shared.checkpoints.lock();
            checkpoint::ready_shards(&shared.log.descriptor(), &checkpoints)
        };
        {
            let mut workers = shared.workers.lock();
            workers.retain(|_, worker| !worker.is_finished());
            for shard in ready {
                if workers.contains_key(&shard) {
                    continue;
                }
                let (db, worker_shared) = (db.clone(), Arc::clone(shared));
                let spawned = std::thread::Builder::new()
                    .name(format!("nimbus-mapping-{}-{shard}", shared.name))
                    .spawn(move || work(&db, &worker_shared, shard));
                if let Ok(handle) = spawned {
                    workers.insert(shard, handle);
                }
            }
        }
        if !shared.pause(IDLE_WAIT) || db.strong_count() == 0 {
            break;
        }
    }
    *shared.stopped.lock() = true;
    shared.log.wake_all();
    let workers: Vec<_> = shared.workers.lock().drain().map(|(_, w)| w).collect();
    for worker in workers {
        let _ = worker.join();
    }
    shared.ended.store(true, Ordering::Release);
}

/// Delivers one shard's records until it is drained or the mapping stops.
fn work(db: &Weak<DatabaseInner>, shared: &Shared, shard: u32) {
    while !shared.is_stopped() {
        let Some(inner) = db.upgrade() else { return };
        if inner.kv.is_closed() {
            return;
        }
        let database = Database { inner };
        match step(&database, shared, shard) {
            Ok(Step::Delivered) => {}
            Ok(Step::Idle(bound)) => {
                drop(database);
                shared.log.wait_beyond(bound, IDLE_WAIT);
            }
            Ok(Step::Drained) => {
                shared.wake.notify_all();
                return;
            }
            // A failing engine: try again shortly (or stop with it).
            Err(_) => {
                drop(database);
                if !shared.pause(IDLE_WAIT) {
                    return;
                }
            }
        }
    }
}

enum Step {
    Delivered,
    /// Nothing new below this visible bound.
    Idle(u64),
    Drained,
}

fn step(db: &Database, shared: &Shared, shard: u32) -> Result<Step> {
    let saved = shared
        .checkpoints
        .lock()
        .get(&shard)
        .copied()
        .unwrap_or_else(|| checkpoint::initial(&shared.log, shard));
    let bound = shared.log.visible_bound();
    let position = Position {
        keyspace: shared.log.keyspace,
        shard,
        next: saved.next.max(shared.log.shard_trimmed_through(shard) + 1),
        issued_millis: 0,
    };
    let batch_size = shared.config.batch_size;
    let read = |position| read_all(db, &shared.log, position, batch_size);
    let (mut records, mut next) = read(position)?;
    let window = shared.config.maximum_batching_window;
    if !records.is_empty() && records.len() < batch_size && !window.is_zero() {
        let deadline = Instant::now() + window;
        while records.len() < batch_size && next.is_some() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || shared.is_stopped() {
                break;
            }
            shared.log.wait_beyond(shared.log.visible_bound(), left);
            (records, next) = read(position)?;
        }
    }
    if records.is_empty() {
        return Ok(match next {
            None => {
                save(db, shared, shard, position.next, true)?;
                Step::Drained
            }
            Some(_) => Step::Idle(bound),
        });
    }
    let shard_id = {
        let descriptor = shared.log.descriptor();
        descriptor
            .shards
            .iter()
            .find(|s| s.number == shard)
            .map(|s| descriptor.shard_id(s))
            .unwrap_or_default()
    };
    if !deliver(db, shared, &shard_id, &records) {
        return Ok(Step::Idle(bound));
    }
    let after = next.unwrap_or_else(|| last_sequence(&records) + 1);
    save(db, shared, shard, after, next.is_none())?;
    Ok(if next.is_none() {
        Step::Drained
    } else {
        Step::Delivered
    })
}

/// Reads up to `limit` records from `position` (several pages if needed).
fn read_all(
    db: &Database,
    log: &StreamLog,
    position: Position,
    limit: usize,
) -> Result<(Vec<Record>, Option<u64>)> {
    let mut records = Vec::new();
    let mut position = position;
    loop {
        let want = (limit - records.len()).min(crate::kv::stream::GET_RECORDS_LIMIT_MAX);
        let (page, next) = read_shard(db, log, position, want)?;
        let empty = page.is_empty();
        records.extend(page);
        match next {
            Some(next) if !empty && records.len() < limit => position.next = next,
            _ => return Ok((records, next)),
        }
    }
}

fn last_sequence(records: &[Record]) -> u64 {
    records
        .last()
        .and_then(|r| crate::kv::stream::parse_sequence(&r.dynamodb.sequence_number))
        .unwrap_or(0)
}

fn save(db: &Database, shared: &Shared, shard: u32, next: u64, finished: bool) -> Result<()> {
    let checkpoint = Checkpoint { next, finished };
    checkpoint::save(
        &db.inner,
        &shared.name,
        shared.log.keyspace,
        shard,
        checkpoint,
    )?;
    shared.checkpoints.lock().insert(shard, checkpoint);
    Ok(())
}

/// Delivers `records` (retrying, bisecting, skipping to the on-failure
/// destination as configured); false if the mapping stopped first.
fn deliver(db: &Database, shared: &Shared, shard_id: &str, records: &[Record]) -> bool {
    let config = &shared.config;
    let mut records = records;
    let mut attempts = 0u32;
    let mut backoff = config.retry_backoff;
    loop {
        // Before every attempt, retries included: records that age out
        // while their batch keeps failing are discarded then, not retried
        // for ever.
        records = discard_stale(db, shared, shard_id, records);
        if records.is_empty() {
            return true;
        }
        let error = match invoke(&shared.handler, records) {
            Ok(()) => return true,
            Err(error) => error,
        };
        if config.bisect_batch_on_function_error && records.len() > 1 {
            let (first, second) = records.split_at(records.len() / 2);
            return deliver(db, shared, shard_id, first) && deliver(db, shared, shard_id, second);
        }
        if config
            .maximum_retry_attempts
            .is_some_and(|max| attempts >= max)
        {
            let reason = FailureReason::RetryAttemptsExhausted;
            report(db, shared, shard_id, records, reason, &error);
            return true;
        }
        attempts += 1;
        if !shared.pause(backoff) {
            return false;
        }
        backoff = (backoff * 2).min(Duration::from_secs(1));
    }
}

/// Reports the records older than `maximum_record_age` to the on-failure
/// destination and returns the others. A shard's records are in creation
/// order, so the stale ones are a prefix.
fn discard_stale<'a>(
    db: &Database,
    shared: &Shared,
    shard_id: &str,
    records: &'a [Record],
) -> &'a [Record] {
    let Some(age) = shared.config.maximum_record_age else {
        return records;
    };
    let now = db.inner.clock.now();
    let fresh_from = records.iter().position(|r| {
        now.duration_since(r.dynamodb.approximate_creation_date_time)
            .map_or(true, |elapsed| elapsed <= age)
    });
    let (stale, fresh) = records.split_at(fresh_from.unwrap_or(records.len()));
    if !stale.is_empty() {
        let reason = FailureReason::RecordAgeExceeded;
        report(db, shared, shard_id, stale, reason, "");
    }
    fresh
}

/// Calls the handler with `records`; its error, or its panic, as a
/// message. A panic is a function error like any other (Lambda counts a
/// crash so), which keeps the worker alive and the retry limit in force.
fn invoke(handler: &Handler, records: &[Record]) -> std::result::Result<(), String> {
    // Unwind safety: after a panic the handler is called again, as Lambda
    // calls a function again after a crash; whatever state it shares is
    // its own to keep consistent, and the mapping's is not touched here.
    match std::panic::catch_unwind(AssertUnwindSafe(|| handler(records))) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => Err(error.to_string()),
        Err(payload) => Err(panic_message(payload.as_ref())),
    }
}

/// What a caught panic says, when its payload is text (`panic!` with a
/// literal or with formatting).
fn panic_message(payload: &(dyn Any + Send)) -> String {
    let text = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str));
    match text {
        Some(text) => format!("handler panicked: {text}"),
        None => "handler panicked".to_owned(),
    }
}

/// Sends a skipped batch's metadata to the on-failure destination.
fn report(
    db: &Database,
    shared: &Shared,
    shard_id: &str,
    records: &[Record],
    reason: FailureReason,
    error: &str,
) {
    let (Some(first), Some(last)) = (records.first(), records.last()) else {
        return;
    };
    let failed = FailedBatch {
        mapping: shared.name.clone(),
        stream_arn: shared.stream_arn.clone(),
        shard_id: shard_id.to_owned(),
        start_sequence_number: first.dynamodb.sequence_number.clone(),
        end_sequence_number: last.dynamodb.sequence_number.clone(),
        batch_size: records.len(),
        reason,
        error: error.to_owned(),
    };
    match &shared.config.on_failure {
        Some(OnFailure::Callback(callback)) => callback(&failed),
        Some(OnFailure::Table(table)) => {
            // A destination that cannot take the item loses the report,
            // not the shard: delivery goes on, as with Lambda's.
            let _ = put_failure(db, table, &failed);
        }
        None => {}
    }
}

fn put_failure(db: &Database, table: &str, failed: &FailedBatch) -> Result<()> {
    let key = db
        .inner
        .kv
        .table(table)?
        .definition()
        .key
        .partition_key
        .0
        .clone();
    let reason = match failed.reason {
        FailureReason::RetryAttemptsExhausted => "RetryAttemptsExhausted",
        FailureReason::RecordAgeExceeded => "RecordAgeExceeded",
    };
    let id = format!(
        "{}/{}/{}",
        failed.mapping, failed.shard_id, failed.start_sequence_number
    );
    let item: Item = item! {
        "mapping" => failed.mapping.clone(),
        "stream_arn" => failed.stream_arn.clone(),
        "shard_id" => failed.shard_id.clone(),
        "start_sequence_number" => failed.start_sequence_number.clone(),
        "end_sequence_number" => failed.end_sequence_number.clone(),
        "batch_size" => failed.batch_size as u64,
        "reason" => reason,
        "error" => failed.error.clone(),
    }
    .with(key, id);
    db.put_item(table).item(item).send()?;
    Ok(())
}
