//! Bucket and version configuration: object lock (bucket default,
//! per-version retention, legal hold), lifecycle rules, and notification
//! configuration.
//!
//! Notifications: S3 delivers to SQS/SNS/Lambda; the embedded store
//! delivers to named subscriptions read with `receive_events`. A
//! `QueueConfiguration` becomes the subscription named after its queue
//! (the last `:` part of the queue ARN), with its events and key filter;
//! the configuration itself is kept as a bucket attribute so that GET
//! returns what was PUT. Topic and Lambda destinations are refused.

use hyper::StatusCode;
use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};
use serde::{Deserialize, Serialize};

use super::convert::{count, lifecycle_rule, system_time, timestamp, wire_lifecycle_rule};
use super::error::{invalid_argument, to_s3};
use super::objects::{lock_mode, wire_lock_mode};
use super::service::NimbusS3;
use crate::objects::{
    DefaultRetention as StoreDefault, ObjectLockRetention as StoreRetention, RetentionPeriod,
};

/// Bucket attribute holding the notification configuration.
const NOTIFICATION_ATTRIBUTE: &str = "notification";

/// One queue configuration as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct QueueTarget {
    id: Option<String>,
    queue_arn: String,
    events: Vec<String>,
    prefix: Option<String>,
    suffix: Option<String>,
}

impl QueueTarget {
    /// The subscription a queue ARN names (`arn:aws:sqs:region:account:NAME`).
    fn subscription(&self) -> &str {
        self.queue_arn.rsplit(':').next().unwrap_or(&self.queue_arn)
    }

    fn from_wire(config: QueueConfiguration) -> S3Result<Self> {
        let mut prefix = None;
        let mut suffix = None;
        let rules = config
            .filter
            .and_then(|f| f.key)
            .and_then(|k| k.filter_rules)
            .unwrap_or_default();
        for rule in rules {
            let name = rule.name.as_ref().map(|n| n.as_str().to_ascii_lowercase());
            match name.as_deref() {
                Some("prefix") => prefix = rule.value,
                Some("suffix") => suffix = rule.value,
                _ => return Err(invalid_argument("a filter rule is named prefix or suffix")),
            }
        }
        Ok(Self {
            id: config.id,
            events: config.events.into_iter().map(String::from).collect(),
            queue_arn: config.queue_arn,
            prefix,
            suffix,
        })
    }

    fn to_wire(&self) -> QueueConfiguration {
        let mut rules = Vec::new();
        for (name, value) in [("prefix", &self.prefix), ("suffix", &self.suffix)] {
            if let Some(value) = value {
                rules.push(FilterRule {
                    name: Some(FilterRuleName::from(name.to_owned())),
                    value: Some(value.clone()),
                });
            }
        }
        QueueConfiguration {
            id: self.id.clone(),
            queue_arn: self.queue_arn.clone(),
            events: self.events.iter().map(|e| Event::from(e.clone())).collect(),
            filter: (!rules.is_empty()).then_some(NotificationConfigurationFilter {
                key: Some(S3KeyFilter {
                    filter_rules: Some(rules),
                }),
            }),
        }
    }
}

impl NimbusS3 {
    pub(super) async fn get_object_lock_configuration(
        &self,
        req: S3Request<GetObjectLockConfigurationInput>,
    ) -> S3Result<S3Response<GetObjectLockConfigurationOutput>> {
        let bucket = req.input.bucket;
        let out = self
            .blocking(move |db| {
                db.objects()
                    .get_object_lock_configuration(bucket)
                    .send()
                    .map_err(to_s3)
            })
            .await?;
        let rule = out.default_retention.map(|retention| {
            let (days, years) = match retention.period {
                RetentionPeriod::Days(days) => (i32::try_from(days).ok(), None),
                RetentionPeriod::Years(years) => (None, i32::try_from(years).ok()),
            };
            ObjectLockRule {
                default_retention: Some(DefaultRetention {
                    mode: Some(ObjectLockRetentionMode::from(
                        wire_lock_mode(retention.mode).to_owned(),
                    )),
                    days,
                    years,
                }),
            }
        });
        Ok(S3Response::new(GetObjectLockConfigurationOutput {
            object_lock_configuration: Some(ObjectLockConfiguration {
                object_lock_enabled: Some(ObjectLockEnabled::from_static(
                    ObjectLockEnabled::ENABLED,
                )),
                rule,
            }),
        }))
    }

    pub(super) async fn put_object_lock_configuration(
        &self,
        req: S3Request<PutObjectLockConfigurationInput>,
    ) -> S3Result<S3Response<PutObjectLockConfigurationOutput>> {
        let input = req.input;
        let config = input.object_lock_configuration.unwrap_or_default();
        if config
            .object_lock_enabled
            .as_ref()
            .map(ObjectLockEnabled::as_str)
            != Some(ObjectLockEnabled::ENABLED)
        {
            return Err(s3_error!(MalformedXML, "ObjectLockEnabled must be Enabled"));
        }
        let retention = match config.rule.and_then(|r| r.default_retention) {
            None => None,
            Some(retention) => {
                let mode = retention
                    .mode
                    .as_ref()
                    .ok_or_else(|| s3_error!(MalformedXML, "a default retention needs a Mode"))?;
                let period = match (retention.days, retention.years) {
                    (Some(days), None) => RetentionPeriod::Days(count(days, "Days")?),
                    (None, Some(years)) => RetentionPeriod::Years(count(years, "Years")?),
                    _ => {
                        return Err(s3_error!(
                            MalformedXML,
                            "a default retention has Days or Years"
                        ));
                    }
                };
                Some(StoreDefault {
                    mode: lock_mode(mode.as_str())?,
                    period,
                })
            }
        };
        let bucket = input.bucket;
        self.blocking(move |db| {
            let mut put = db.objects().put_object_lock_configuration(bucket);
            if let Some(retention) = retention {
                put = put.default_retention(retention);
            }
            put.send().map_err(to_s3)
        })
        .await?;
        Ok(S3Response::new(PutObjectLockConfigurationOutput::default()))
    }

    pub(super) async fn get_object_retention(
        &self,
        req: S3Request<GetObjectRetentionInput>,
    ) -> S3Result<S3Response<GetObjectRetentionOutput>> {
        let input = req.input;
        let retention = self
            .blocking(move |db| {
                let mut get = db
                    .objects()
                    .get_object_retention(input.bucket.as_str(), input.key.as_str());
                if let Some(version_id) = input.version_id {
                    get = get.version_id(version_id);
                }
                get.send().map_err(to_s3)
            })
            .await?;
        let Some(retention) = retention else {
            let mut error = s3_error!(
                NoSuchObjectLockConfiguration,
                "The specified object does not have a ObjectLock configuration"
            );
            error.set_status_code(StatusCode::NOT_FOUND);
            return Err(error);
        };
        Ok(S3Response::new(GetObjectRetentionOutput {
            retention: Some(ObjectLockRetention {
                mode: Some(ObjectLockRetentionMode::from(
                    wire_lock_mode(retention.mode).to_owned(),
                )),
                retain_until_date: Some(timestamp(retention.retain_until_date)),
            }),
        }))
    }

    pub(super) async fn put_object_retention(
        &self,
        req: S3Request<PutObjectRetentionInput>,
    ) -> S3Result<S3Response<PutObjectRetentionOutput>> {
        let input = req.input;
        let retention = input
            .retention
            .ok_or_else(|| s3_error!(MalformedXML, "Retention is required"))?;
        let mode = retention
            .mode
            .as_ref()
            .ok_or_else(|| s3_error!(MalformedXML, "a retention needs a Mode"))?;
        let until = retention
            .retain_until_date
            .ok_or_else(|| s3_error!(MalformedXML, "a retention needs a RetainUntilDate"))?;
        let retention = StoreRetention {
            mode: lock_mode(mode.as_str())?,
            retain_until_date: system_time(until),
        };
        self.blocking(move |db| {
            let mut put = db
                .objects()
                .put_object_retention(input.bucket.as_str(), input.key.as_str())
                .retention(retention)
                .bypass_governance_retention(input.bypass_governance_retention == Some(true));
            if let Some(version_id) = input.version_id {
                put = put.version_id(version_id);
            }
            put.send().map_err(to_s3)
        })
        .await?;
        Ok(S3Response::new(PutObjectRetentionOutput::default()))
    }

    pub(super) async fn get_object_legal_hold(
        &self,
        req: S3Request<GetObjectLegalHoldInput>,
    ) -> S3Result<S3Response<GetObjectLegalHoldOutput>> {
        let input = req.input;
        let on = self
            .blocking(move |db| {
                let mut get = db
                    .objects()
                    .get_object_legal_hold(input.bucket.as_str(), input.key.as_str());
                if let Some(version_id) = input.version_id {
                    get = get.version_id(version_id);
                }
                get.send().map_err(to_s3)
            })
            .await?;
        let status = if on {
            ObjectLockLegalHoldStatus::ON
        } else {
            ObjectLockLegalHoldStatus::OFF
        };
        Ok(S3Response::new(GetObjectLegalHoldOutput {
            legal_hold: Some(ObjectLockLegalHold {
                status: Some(ObjectLockLegalHoldStatus::from_static(status)),
            }),
        }))
    }

    pub(super) async fn put_object_legal_hold(
        &self,
        req: S3Request<PutObjectLegalHoldInput>,
    ) -> S3Result<S3Response<PutObjectLegalHoldOutput>> {
        let input = req.input;
        let on = match input
            .legal_hold
            .and_then(|h| h.status)
            .as_ref()
            .map(ObjectLockLegalHoldStatus::as_str)
        {
            Some(ObjectLockLegalHoldStatus::ON) => true,
            Some(ObjectLockLegalHoldStatus::OFF) => false,
            _ => return Err(s3_error!(MalformedXML, "LegalHold Status is ON or OFF")),
        };
        self.blocking(move |db| {
            let mut put = db
                .objects()
                .put_object_legal_hold(input.bucket.as_str(), input.key.as_str())
                .status(on);
            if let Some(version_id) = input.version_id {
                put = put.version_id(version_id);
            }
            put.send().map_err(to_s3)
        })
        .await?;
        Ok(S3Response::new(PutObjectLegalHoldOutput::default()))
    }

    pub(super) async fn get_bucket_lifecycle_configuration(
        &self,
        req: S3Request<GetBucketLifecycleConfigurationInput>,
    ) -> S3Result<S3Response<GetBucketLifecycleConfigurationOutput>> {
        let bucket = req.input.bucket;
        let rules = self
            .blocking(move |db| {
                db.objects()
                    .get_bucket_lifecycle_configuration(bucket)
                    .send()
                    .map_err(to_s3)
            })
            .await?;
        Ok(S3Response::new(GetBucketLifecycleConfigurationOutput {
            rules: Some(rules.into_iter().map(wire_lifecycle_rule).collect()),
            ..Default::default()
        }))
    }

    pub(super) async fn put_bucket_lifecycle_configuration(
        &self,
        req: S3Request<PutBucketLifecycleConfigurationInput>,
    ) -> S3Result<S3Response<PutBucketLifecycleConfigurationOutput>> {
        let input = req.input;
        let rules = input
            .lifecycle_configuration
            .ok_or_else(|| s3_error!(MalformedXML, "LifecycleConfiguration is required"))?
            .rules
            .into_iter()
            .map(lifecycle_rule)
            .collect::<S3Result<Vec<_>>>()?;
        let bucket = input.bucket;
        self.blocking(move |db| {
            let mut put = db.objects().put_bucket_lifecycle_configuration(bucket);
            for rule in rules {
                put = put.rule(rule);
            }
            put.send().map_err(to_s3)
        })
        .await?;
        Ok(S3Response::new(
            PutBucketLifecycleConfigurationOutput::default(),
        ))
    }

    pub(super) async fn delete_bucket_lifecycle(
        &self,
        req: S3Request<DeleteBucketLifecycleInput>,
    ) -> S3Result<S3Response<DeleteBucketLifecycleOutput>> {
        let bucket = req.input.bucket;
        self.blocking(move |db| db.objects().delete_bucket_lifecycle(&bucket).map_err(to_s3))
            .await?;
        let mut response = S3Response::new(DeleteBucketLifecycleOutput::default());
        response.status = Some(StatusCode::NO_CONTENT);
        Ok(response)
    }

    pub(super) async fn get_bucket_notification_configuration(
        &self,
        req: S3Request<GetBucketNotificationConfigurationInput>,
    ) -> S3Result<S3Response<GetBucketNotificationConfigurationOutput>> {
        let bucket = req.input.bucket;
        let stored = self
            .blocking(move |db| {
                db.objects()
                    .get_bucket_attribute(&bucket, NOTIFICATION_ATTRIBUTE)
                    .map_err(to_s3)
            })
            .await?;
        let targets: Vec<QueueTarget> = match stored {
            Some(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                s3_error!(
                    InternalError,
                    "stored notification configuration is damaged: {e}"
                )
            })?,
            None => Vec::new(),
        };
        Ok(S3Response::new(GetBucketNotificationConfigurationOutput {
            queue_configurations: (!targets.is_empty())
                .then(|| targets.iter().map(QueueTarget::to_wire).collect()),
            ..Default::default()
        }))
    }

    pub(super) async fn put_bucket_notification_configuration(
        &self,
        req: S3Request<PutBucketNotificationConfigurationInput>,
    ) -> S3Result<S3Response<PutBucketNotificationConfigurationOutput>> {
        let input = req.input;
        let config = input.notification_configuration;
        if config
            .topic_configurations
            .as_ref()
            .is_some_and(|c| !c.is_empty())
            || config
                .lambda_function_configurations
                .as_ref()
                .is_some_and(|c| !c.is_empty())
            || config.event_bridge_configuration.is_some()
        {
            return Err(invalid_argument(
                "Unable to validate the following destination configurations: only queue destinations (local subscriptions) are supported",
            ));
        }
        let targets = config
            .queue_configurations
            .unwrap_or_default()
            .into_iter()
            .map(QueueTarget::from_wire)
            .collect::<S3Result<Vec<_>>>()?;
        let encoded = serde_json::to_vec(&targets)
            .map_err(|e| s3_error!(InternalError, "cannot encode the configuration: {e}"))?;
        let bucket = input.bucket;
        self.blocking(move |db| {
            let objects = db.objects();
            let old: Vec<QueueTarget> = objects
                .get_bucket_attribute(&bucket, NOTIFICATION_ATTRIBUTE)
                .map_err(to_s3)?
                .and_then(|bytes| serde_json::from_slice(&bytes).ok())
                .unwrap_or_default();
            // Validate every new subscription before dropping an old one:
            // a refused configuration changes nothing.
            for target in &targets {
                if target.events.is_empty() {
                    return Err(invalid_argument(
                        "a queue configuration needs at least one event",
                    ));
                }
            }
            for target in &old {
                if !targets
                    .iter()
                    .any(|t| t.subscription() == target.subscription())
                {
                    objects
                        .delete_subscription(target.subscription())
                        .map_err(to_s3)?;
                }
            }
            for target in &targets {
                let mut create = objects
                    .create_subscription(target.subscription())
                    .bucket(bucket.as_str());
                for event in &target.events {
                    create = create.event_pattern(event.as_str());
                }
                if let Some(prefix) = &target.prefix {
                    create = create.prefix(prefix.as_str());
                }
                if let Some(suffix) = &target.suffix {
                    create = create.suffix(suffix.as_str());
                }
                create.send().map_err(to_s3)?;
            }
            objects
                .put_bucket_attribute(&bucket, NOTIFICATION_ATTRIBUTE, &encoded)
                .map_err(to_s3)
        })
        .await?;
        Ok(S3Response::new(
            PutBucketNotificationConfigurationOutput::default(),
        ))
    }
}
