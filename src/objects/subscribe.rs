//! The public side of events: durable subscriptions, pulling and deleting
//! pending events, and handler delivery (the outbox itself is in
//! `events`).

use std::sync::Arc;

use super::Objects;
use super::error::{Error, Result};
use super::events::{Event, EventType, SubscriptionRecord, pending};
use super::keys;
use super::limits::{EVENTS_PER_RECEIVE_MAX, SUBSCRIPTION_NAME_BYTES_MAX};
use super::store::StoreInner;
use crate::storage::{Direction, WriteBatch};

fn validate_name(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > SUBSCRIPTION_NAME_BYTES_MAX {
        return Err(Error::InvalidArgument(format!(
            "a subscription name has 1 to {SUBSCRIPTION_NAME_BYTES_MAX} bytes"
        )));
    }
    Ok(())
}

impl StoreInner {
    fn subscription(&self, name: &str) -> Result<SubscriptionRecord> {
        validate_name(name)?;
        match self.engine.get(&keys::subscription(name))? {
            Some(bytes) => SubscriptionRecord::decode(&bytes),
            None => Err(Error::NoSuchConfiguration {
                what: format!("subscription {name:?}"),
            }),
        }
    }

    /// Adds the removal of a subscription and its pending events to `batch`.
    fn drop_subscription(&self, batch: &mut WriteBatch, record: &SubscriptionRecord) -> Result<()> {
        for row in self
            .engine
            .prefix(&keys::outbox_of(record.id), Direction::Forward, None)?
        {
            let (key, _) = row?;
            batch.delete(&key);
        }
        batch.delete(&keys::subscription(&record.name));
        Ok(())
    }

    /// Adds the removal of every subscription of a bucket to `batch`,
    /// returning their names.
    pub(crate) fn drop_subscriptions_of(
        &self,
        batch: &mut WriteBatch,
        bucket_id: u64,
    ) -> Result<Vec<String>> {
        let mut names = Vec::new();
        for row in self
            .engine
            .prefix(&keys::subscriptions(), Direction::Forward, None)?
        {
            let (_, value) = row?;
            let record = SubscriptionRecord::decode(&value)?;
            if record.bucket_id == bucket_id {
                self.drop_subscription(batch, &record)?;
                names.push(record.name);
            }
        }
        Ok(names)
    }
}

/// `create_subscription` request.
#[derive(Debug)]
#[must_use = "a request does nothing until `send` is called"]
pub struct CreateSubscription<'a> {
    store: &'a StoreInner,
    name: String,
    bucket: Option<String>,
    events: Vec<String>,
    prefix: Option<String>,
    suffix: Option<String>,
}

impl CreateSubscription<'_> {
    /// The bucket whose changes it receives (required).
    pub fn bucket(mut self, bucket: impl Into<String>) -> Self {
        self.bucket = Some(bucket.into());
        self
    }

    /// Adds an event type it receives.
    pub fn event(mut self, event: EventType) -> Self {
        self.events.push(event.as_str().to_owned());
        self
    }

    /// Adds an event name pattern (`"s3:ObjectCreated:*"`).
    pub fn event_pattern(mut self, pattern: impl Into<String>) -> Self {
        self.events.push(pattern.into());
        self
    }

    /// Only keys starting with `prefix`.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Some(prefix.into());
        self
    }

    /// Only keys ending with `suffix`.
    pub fn suffix(mut self, suffix: impl Into<String>) -> Self {
        self.suffix = Some(suffix.into());
        self
    }

    /// Creates (or replaces) the subscription; it receives changes that
    /// commit from now on.
    pub fn send(self) -> Result<()> {
        validate_name(&self.name)?;
        let bucket_name = self
            .bucket
            .ok_or_else(|| Error::InvalidArgument("a subscription needs a bucket".into()))?;
        if self.events.is_empty() {
            return Err(Error::InvalidArgument(
                "a subscription needs at least one event type".into(),
            ));
        }
        for pattern in &self.events {
            let known = [
                EventType::ObjectCreatedPut,
                EventType::ObjectCreatedCopy,
                EventType::ObjectCreatedCompleteMultipartUpload,
                EventType::ObjectRemovedDelete,
                EventType::ObjectRemovedDeleteMarkerCreated,
                EventType::ObjectRestoreCompleted,
                EventType::LifecycleExpirationDelete,
                EventType::LifecycleExpirationDeleteMarkerCreated,
                EventType::LifecycleTransition,
            ];
            if !known.iter().any(|event| event.matches(pattern)) {
                return Err(Error::InvalidArgument(format!(
                    "unknown event type {pattern:?}"
                )));
            }
        }
        let store = self.store;
        // Exclusive, so no write commits between the row and the cache.
        let _gate = store.gate.write();
        let bucket = store.bucket(&bucket_name)?;
        let mut batch = WriteBatch::new();
        let id = match store.subscription(&self.name) {
            Ok(existing) => {
                store.drop_subscription(&mut batch, &existing)?;
                store.events.removed(existing.bucket_id, &existing.name);
                existing.id
            }
            Err(Error::NoSuchConfiguration { .. }) => store.events.new_subscription_id(),
            Err(error) => return Err(error),
        };
        let record = SubscriptionRecord {
            id,
            name: self.name,
            bucket: bucket_name,
            bucket_id: bucket.id,
            events: self.events,
            prefix: self.prefix,
            suffix: self.suffix,
        };
        batch.put(&keys::subscription(&record.name), &record.encode());
        store.engine.write(batch)?;
        store.events.added(record);
        Ok(())
    }
}

impl<'a> Objects<'a> {
    /// Creates a durable event subscription named `name`.
    pub fn create_subscription(&self, name: impl Into<String>) -> CreateSubscription<'a> {
        CreateSubscription {
            store: self.store,
            name: name.into(),
            bucket: None,
            events: Vec::new(),
            prefix: None,
            suffix: None,
        }
    }

    /// Deletes a subscription and its pending events.
    pub fn delete_subscription(&self, name: &str) -> Result<()> {
        let store = self.store;
        let _gate = store.gate.write();
        let record = store.subscription(name)?;
        let mut batch = WriteBatch::new();
        store.drop_subscription(&mut batch, &record)?;
        store.engine.write(batch)?;
        store.events.removed(record.bucket_id, name);
        Ok(())
    }

    /// The oldest pending events of a subscription (at most `max`, at most
    /// 1000). They stay pending until [`Objects::delete_events`].
    pub fn receive_events(&self, name: &str, max: usize) -> Result<Vec<Event>> {
        let record = self.store.subscription(name)?;
        pending(
            &self.store.engine,
            record.id,
            max.min(EVENTS_PER_RECEIVE_MAX),
        )
    }

    /// Removes processed events of a subscription by sequence number.
    pub fn delete_events(&self, name: &str, sequences: &[u64]) -> Result<()> {
        let record = self.store.subscription(name)?;
        let mut batch = WriteBatch::new();
        for sequence in sequences {
            batch.delete(&keys::outbox(record.id, *sequence));
        }
        self.store.engine.write(batch)?;
        Ok(())
    }

    /// Registers the handler [`Objects::deliver_events`] calls for each
    /// event of subscription `name` (in memory: register it again after
    /// reopening). An `Err` leaves the event pending.
    pub fn set_event_handler(
        &self,
        name: &str,
        handler: impl Fn(&Event) -> std::result::Result<(), String> + Send + Sync + 'static,
    ) -> Result<()> {
        self.store.subscription(name)?;
        self.store.events.set_handler(name, Arc::new(handler));
        Ok(())
    }

    /// Hands every pending event of every subscription with a handler to
    /// it, oldest first, removing each once its handler returned `Ok`;
    /// stops a subscription's delivery at its first failure. Returns how
    /// many events were delivered.
    pub fn deliver_events(&self) -> Result<usize> {
        let store = self.store;
        let _delivery = store.events.delivery_lock();
        let mut delivered = 0;
        for (name, handler) in store.events.handlers() {
            let record = match store.subscription(&name) {
                Ok(record) => record,
                Err(Error::NoSuchConfiguration { .. }) => continue,
                Err(error) => return Err(error),
            };
            'subscription: loop {
                let events = pending(&store.engine, record.id, EVENTS_PER_RECEIVE_MAX)?;
                if events.is_empty() {
                    break;
                }
                for event in events {
                    if handler(&event).is_err() {
                        break 'subscription;
                    }
                    store
                        .engine
                        .delete(&keys::outbox(record.id, event.sequence))?;
                    delivered += 1;
                }
            }
        }
        Ok(delivered)
    }
}
