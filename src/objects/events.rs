//! Event notifications through a durable outbox.
//!
//! A subscription names a bucket, the event types it wants and optional
//! key prefix and suffix filters. Every operation that commits a change
//! writes one outbox row per matching subscription *in the same batch* as
//! the change, so each committed change is enqueued exactly once and a
//! failed or crashed operation enqueues nothing.
//!
//! Consumers either pull (`receive_events`, then `delete_events` with the
//! sequences they processed, like an SQS queue) or register a handler and
//! call `deliver_events`, which removes each event after its handler
//! returned `Ok`. A crash between a handler's return and that removal
//! delivers the event again, so handlers get each event's `sequence` to
//! make redelivery harmless.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use parking_lot::{Mutex, RwLock};

use super::codec::{Reader, Writer};
use super::error::{Error, Result};
use super::keys;
use super::store::system_time;
use crate::storage::{Direction, Engine, WriteBatch};

/// The kinds of event (S3 event names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EventType {
    /// `s3:ObjectCreated:Put`.
    ObjectCreatedPut,
    /// `s3:ObjectCreated:Copy`.
    ObjectCreatedCopy,
    /// `s3:ObjectCreated:CompleteMultipartUpload`.
    ObjectCreatedCompleteMultipartUpload,
    /// `s3:ObjectRemoved:Delete` (a version deleted for good).
    ObjectRemovedDelete,
    /// `s3:ObjectRemoved:DeleteMarkerCreated`.
    ObjectRemovedDeleteMarkerCreated,
    /// `s3:ObjectRestore:Completed`.
    ObjectRestoreCompleted,
    /// `s3:LifecycleExpiration:Delete`.
    LifecycleExpirationDelete,
    /// `s3:LifecycleExpiration:DeleteMarkerCreated`.
    LifecycleExpirationDeleteMarkerCreated,
    /// `s3:LifecycleTransition`.
    LifecycleTransition,
}

const EVENT_NAMES: [(EventType, &str); 9] = [
    (EventType::ObjectCreatedPut, "s3:ObjectCreated:Put"),
    (EventType::ObjectCreatedCopy, "s3:ObjectCreated:Copy"),
    (
        EventType::ObjectCreatedCompleteMultipartUpload,
        "s3:ObjectCreated:CompleteMultipartUpload",
    ),
    (EventType::ObjectRemovedDelete, "s3:ObjectRemoved:Delete"),
    (
        EventType::ObjectRemovedDeleteMarkerCreated,
        "s3:ObjectRemoved:DeleteMarkerCreated",
    ),
    (
        EventType::ObjectRestoreCompleted,
        "s3:ObjectRestore:Completed",
    ),
    (
        EventType::LifecycleExpirationDelete,
        "s3:LifecycleExpiration:Delete",
    ),
    (
        EventType::LifecycleExpirationDeleteMarkerCreated,
        "s3:LifecycleExpiration:DeleteMarkerCreated",
    ),
    (EventType::LifecycleTransition, "s3:LifecycleTransition"),
];

impl EventType {
    /// The S3 event name (`"s3:ObjectCreated:Put"`).
    pub fn as_str(self) -> &'static str {
        EVENT_NAMES
            .iter()
            .find(|(kind, _)| *kind == self)
            .map_or("", |(_, name)| name)
    }

    /// Whether a subscription pattern (`"s3:ObjectCreated:*"` or an exact
    /// name) covers this event.
    pub fn matches(self, pattern: &str) -> bool {
        let name = self.as_str();
        match pattern.strip_suffix('*') {
            Some(prefix) => name.starts_with(prefix),
            None => name == pattern,
        }
    }

    fn to_byte(self) -> u8 {
        EVENT_NAMES
            .iter()
            .position(|(kind, _)| *kind == self)
            .map_or(0, |index| index as u8)
    }

    fn from_byte(byte: u8) -> Option<Self> {
        EVENT_NAMES.get(usize::from(byte)).map(|(kind, _)| *kind)
    }
}

/// One committed change, as delivered to a subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Increases with each event of a subscription; unique per
    /// subscription, so a consumer can drop a redelivered event.
    pub sequence: u64,
    /// What happened.
    pub event_type: EventType,
    /// The bucket.
    pub bucket: String,
    /// The object key.
    pub key: String,
    /// The version created or removed (`"null"` for the null version).
    pub version_id: Option<String>,
    /// The object's size, for created objects.
    pub size: Option<u64>,
    /// The object's ETag, for created objects.
    pub e_tag: Option<String>,
    /// When the change committed (the database clock).
    pub event_time: SystemTime,
}

/// What a committing operation knows about its change.
#[derive(Debug, Clone)]
pub(crate) struct PendingEvent {
    pub(crate) event_type: EventType,
    pub(crate) key: String,
    pub(crate) version_id: Option<String>,
    pub(crate) size: Option<u64>,
    pub(crate) e_tag: Option<String>,
}

/// A durable subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SubscriptionRecord {
    pub(crate) id: u64,
    pub(crate) name: String,
    pub(crate) bucket: String,
    pub(crate) bucket_id: u64,
    pub(crate) events: Vec<String>,
    pub(crate) prefix: Option<String>,
    pub(crate) suffix: Option<String>,
}

impl SubscriptionRecord {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(64);
        w.u8(1)
            .varint(self.id)
            .str(&self.name)
            .str(&self.bucket)
            .varint(self.bucket_id)
            .varint(self.events.len() as u64);
        for pattern in &self.events {
            w.str(pattern);
        }
        w.opt_str(self.prefix.as_deref())
            .opt_str(self.suffix.as_deref());
        w.finish()
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes, "subscription");
        if r.u8()? != 1 {
            return Err(Error::corrupt_row("subscription: unknown format"));
        }
        let id = r.varint()?;
        let name = r.string()?;
        let bucket = r.string()?;
        let bucket_id = r.varint()?;
        let count = r.len(r.remaining())?;
        let mut events = Vec::with_capacity(count);
        for _ in 0..count {
            events.push(r.string()?);
        }
        let prefix = r.opt_string()?;
        let suffix = r.opt_string()?;
        r.finish()?;
        Ok(Self {
            id,
            name,
            bucket,
            bucket_id,
            events,
            prefix,
            suffix,
        })
    }

    fn wants(&self, event: &PendingEvent) -> bool {
        self.events
            .iter()
            .any(|pattern| event.event_type.matches(pattern))
            && self
                .prefix
                .as_deref()
                .is_none_or(|prefix| event.key.starts_with(prefix))
            && self
                .suffix
                .as_deref()
                .is_none_or(|suffix| event.key.ends_with(suffix))
    }
}

fn encode_event(event: &PendingEvent, bucket: &str, time_nanos: u64) -> Vec<u8> {
    let mut w = Writer::with_capacity(64 + event.key.len());
    w.u8(1)
        .u8(event.event_type.to_byte())
        .str(bucket)
        .str(&event.key)
        .opt_str(event.version_id.as_deref())
        .opt_varint(event.size)
        .opt_str(event.e_tag.as_deref())
        .varint(time_nanos);
    w.finish()
}

fn decode_event(sequence: u64, bytes: &[u8]) -> Result<Event> {
    let mut r = Reader::new(bytes, "event");
    if r.u8()? != 1 {
        return Err(Error::corrupt_row("event: unknown format"));
    }
    let event_type =
        EventType::from_byte(r.u8()?).ok_or_else(|| Error::corrupt_row("event: unknown type"))?;
    let event = Event {
        sequence,
        event_type,
        bucket: r.string()?,
        key: r.string()?,
        version_id: r.opt_string()?,
        size: r.opt_varint()?,
        e_tag: r.opt_string()?,
        event_time: system_time(r.varint()?),
    };
    r.finish()?;
    Ok(event)
}

/// A handler called by `deliver_events`.
pub(crate) type Handler = Arc<dyn Fn(&Event) -> std::result::Result<(), String> + Send + Sync>;

/// The in-memory side of the outbox: subscriptions by bucket, sequence
/// allocation, handlers.
pub(crate) struct EventHub {
    by_bucket: RwLock<HashMap<u64, Vec<Arc<SubscriptionRecord>>>>,
    next_sequence: AtomicU64,
    next_subscription_id: AtomicU64,
    handlers: RwLock<HashMap<String, Handler>>,
    /// Serialises deliveries, so one event is not handed to two callers.
    delivery: Mutex<()>,
}

impl std::fmt::Debug for EventHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventHub")
            .field("next_sequence", &self.next_sequence)
            .finish_non_exhaustive()
    }
}

impl EventHub {
    /// Loads the subscriptions and the highest sequence in the outbox.
    pub(crate) fn open(engine: &Engine) -> Result<Self> {
        let mut by_bucket: HashMap<u64, Vec<Arc<SubscriptionRecord>>> = HashMap::new();
        let mut next_subscription_id = 1;
        for row in engine.prefix(&keys::subscriptions(), Direction::Forward, None)? {
            let (_, value) = row?;
            let record = SubscriptionRecord::decode(&value)?;
            next_subscription_id = next_subscription_id.max(record.id + 1);
            by_bucket
                .entry(record.bucket_id)
                .or_default()
                .push(Arc::new(record));
        }
        let mut next_sequence = 1;
        for row in engine.prefix(
            &keys::tag_prefix(keys::TAG_OUTBOX),
            Direction::Forward,
            None,
        )? {
            let (key, _) = row?;
            next_sequence = next_sequence.max(keys::parse_outbox(&key)? + 1);
        }
        Ok(Self {
            by_bucket: RwLock::new(by_bucket),
            next_sequence: AtomicU64::new(next_sequence),
            next_subscription_id: AtomicU64::new(next_subscription_id),
            handlers: RwLock::new(HashMap::new()),
            delivery: Mutex::new(()),
        })
    }

    /// Loads the subscriptions and outbox position again, after replicated
    /// batches changed them (a replica, or a standby about to be promoted);
    /// handlers stay.
    pub(crate) fn reload(&self, engine: &Engine) -> Result<()> {
        let fresh = Self::open(engine)?;
        *self.by_bucket.write() = fresh.by_bucket.into_inner();
        self.next_sequence
            .fetch_max(fresh.next_sequence.into_inner(), Ordering::Relaxed);
        self.next_subscription_id
            .fetch_max(fresh.next_subscription_id.into_inner(), Ordering::Relaxed);
        Ok(())
    }

    /// Adds an outbox row for every subscription of the bucket that wants
    /// `event` to `batch`.
    pub(crate) fn record(
        &self,
        batch: &mut WriteBatch,
        bucket_id: u64,
        bucket: &str,
        time_nanos: u64,
        event: &PendingEvent,
    ) {
        let by_bucket = self.by_bucket.read();
        let Some(subscriptions) = by_bucket.get(&bucket_id) else {
            return;
        };
        let mut encoded = None;
        for subscription in subscriptions.iter().filter(|s| s.wants(event)) {
            let value = encoded.get_or_insert_with(|| encode_event(event, bucket, time_nanos));
            let sequence = self.next_sequence.fetch_add(1, Ordering::Relaxed);
            batch.put(&keys::outbox(subscription.id, sequence), value);
        }
    }

    pub(crate) fn new_subscription_id(&self) -> u64 {
        self.next_subscription_id.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn added(&self, record: SubscriptionRecord) {
        let mut by_bucket = self.by_bucket.write();
        let list = by_bucket.entry(record.bucket_id).or_default();
        list.retain(|existing| existing.name != record.name);
        list.push(Arc::new(record));
    }

    pub(crate) fn removed(&self, bucket_id: u64, name: &str) {
        if let Some(list) = self.by_bucket.write().get_mut(&bucket_id) {
            list.retain(|existing| existing.name != name);
        }
        self.handlers.write().remove(name);
    }

    pub(crate) fn set_handler(&self, name: &str, handler: Handler) {
        self.handlers.write().insert(name.to_owned(), handler);
    }

    pub(crate) fn handlers(&self) -> Vec<(String, Handler)> {
        self.handlers
            .read()
            .iter()
            .map(|(name, handler)| (name.clone(), Arc::clone(handler)))
            .collect()
    }

    pub(crate) fn delivery_lock(&self) -> parking_lot::MutexGuard<'_, ()> {
        self.delivery.lock()
    }
}

/// The pending events of subscription `id`, oldest first, at most `max`.
pub(crate) fn pending(engine: &Engine, id: u64, max: usize) -> Result<Vec<Event>> {
    let mut events = Vec::new();
    for row in engine.prefix(&keys::outbox_of(id), Direction::Forward, None)? {
        if events.len() >= max {
            break;
        }
        let (key, value) = row?;
        events.push(decode_event(keys::parse_outbox(&key)?, &value)?);
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_event_names() {
        assert!(EventType::ObjectCreatedPut.matches("s3:ObjectCreated:*"));
        assert!(EventType::ObjectCreatedPut.matches("s3:ObjectCreated:Put"));
        assert!(!EventType::ObjectCreatedPut.matches("s3:ObjectRemoved:*"));
        assert!(EventType::LifecycleTransition.matches("s3:*"));
    }

    #[test]
    fn records_round_trip() {
        let record = SubscriptionRecord {
            id: 3,
            name: "q".into(),
            bucket: "b".into(),
            bucket_id: 9,
            events: vec!["s3:ObjectCreated:*".into()],
            prefix: Some("logs/".into()),
            suffix: None,
        };
        assert_eq!(
            SubscriptionRecord::decode(&record.encode()).unwrap(),
            record
        );
        let event = PendingEvent {
            event_type: EventType::ObjectRemovedDelete,
            key: "k".into(),
            version_id: Some("null".into()),
            size: None,
            e_tag: None,
        };
        let decoded = decode_event(4, &encode_event(&event, "b", 77)).unwrap();
        assert_eq!(decoded.key, "k");
        assert_eq!(decoded.sequence, 4);
        assert_eq!(decoded.event_type, EventType::ObjectRemovedDelete);
    }
}
