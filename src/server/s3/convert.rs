//! Conversions between s3s's DTOs and the object store's types: times,
//! storage classes, tag sets, lifecycle rules.

use std::time::SystemTime;

use s3s::S3Result;
use s3s::dto;

use super::error::{invalid_argument, to_s3};
use crate::objects::{
    AbortIncompleteMultipartUpload, LifecycleExpiration, LifecycleFilter, LifecycleRule,
    NoncurrentVersionExpiration, NoncurrentVersionTransition, StorageClass, Transition,
    TransitionTiming,
};

/// A store time as an S3 timestamp.
pub(super) fn timestamp(time: SystemTime) -> dto::Timestamp {
    dto::Timestamp::from(time)
}

/// An S3 timestamp as a store time.
pub(super) fn system_time(timestamp: dto::Timestamp) -> SystemTime {
    SystemTime::from(time::OffsetDateTime::from(timestamp))
}

/// A storage class name as the store's class (`InvalidStorageClass`).
pub(super) fn storage_class(name: &str) -> S3Result<StorageClass> {
    name.parse().map_err(to_s3)
}

/// A strong ETag of a store ETag.
pub(super) fn e_tag(value: String) -> dto::ETag {
    dto::ETag::Strong(value)
}

/// The text of an ETag condition as the store takes it (`*` or the value).
pub(super) fn condition(condition: &dto::ETagCondition) -> String {
    match condition {
        dto::ETagCondition::Any => "*".to_owned(),
        dto::ETagCondition::ETag(tag) => tag.value().to_owned(),
    }
}

/// A non-negative count from the wire.
pub(super) fn count(value: i32, what: &str) -> S3Result<u32> {
    u32::try_from(value).map_err(|_| invalid_argument(format!("{what} must not be negative")))
}

/// Tags of a `x-amz-tagging` header (`k1=v1&k2=v2`, URL-encoded).
pub(super) fn tagging_header(header: &str) -> Vec<(String, String)> {
    header
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(key), percent_decode(value))
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let hex = |byte: u8| (byte as char).to_digit(16);
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            ) {
                (Some(high), Some(low)) => {
                    // Two hex digits make one byte (< 256).
                    out.push(((high << 4) | low) as u8);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A tag set as pairs (every tag needs a key).
pub(super) fn tag_pairs(tags: Vec<dto::Tag>) -> S3Result<Vec<(String, String)>> {
    tags.into_iter()
        .map(|tag| match tag.key {
            Some(key) => Ok((key, tag.value.unwrap_or_default())),
            None => Err(invalid_argument("a tag has no Key")),
        })
        .collect()
}

/// Pairs as a tag set.
pub(super) fn tag_set(pairs: Vec<(String, String)>) -> Vec<dto::Tag> {
    pairs
        .into_iter()
        .map(|(key, value)| dto::Tag {
            key: Some(key),
            value: Some(value),
        })
        .collect()
}

fn days(value: Option<i32>, what: &str) -> S3Result<Option<u32>> {
    value.map(|days| count(days, what)).transpose()
}

fn transition_class(class: Option<dto::TransitionStorageClass>) -> S3Result<StorageClass> {
    let class = class.ok_or_else(|| invalid_argument("a transition needs a StorageClass"))?;
    storage_class(class.as_str())
}

fn size(value: Option<i64>) -> S3Result<Option<u64>> {
    value
        .map(|v| {
            u64::try_from(v).map_err(|_| invalid_argument("an object size must not be negative"))
        })
        .transpose()
}

fn filter(rule: &dto::LifecycleRule) -> S3Result<LifecycleFilter> {
    let mut out = LifecycleFilter::default();
    // The legacy rule-level Prefix and a Filter are alternatives.
    if let Some(prefix) = &rule.prefix {
        out.prefix.clone_from(prefix);
    }
    let Some(filter) = &rule.filter else {
        return Ok(out);
    };
    if let Some(prefix) = &filter.prefix {
        out.prefix.clone_from(prefix);
    }
    if let Some(tag) = &filter.tag {
        out.tags = tag_pairs(vec![tag.clone()])?;
    }
    out.object_size_greater_than = size(filter.object_size_greater_than)?;
    out.object_size_less_than = size(filter.object_size_less_than)?;
    if let Some(and) = &filter.and {
        if let Some(prefix) = &and.prefix {
            out.prefix.clone_from(prefix);
        }
        out.tags = tag_pairs(and.tags.clone().unwrap_or_default())?;
        out.object_size_greater_than =
            size(and.object_size_greater_than)?.or(out.object_size_greater_than);
        out.object_size_less_than = size(and.object_size_less_than)?.or(out.object_size_less_than);
    }
    Ok(out)
}

/// An S3 lifecycle rule as the store's.
pub(super) fn lifecycle_rule(rule: dto::LifecycleRule) -> S3Result<LifecycleRule> {
    let mut out = LifecycleRule::new(rule.id.clone().unwrap_or_default(), filter(&rule)?);
    out.enabled = rule.status.as_str() == dto::ExpirationStatus::ENABLED;
    if let Some(expiration) = rule.expiration {
        out.expiration = Some(
            match (
                expiration.days,
                expiration.date,
                expiration.expired_object_delete_marker,
            ) {
                (Some(days), None, _) => LifecycleExpiration::Days(count(days, "Days")?),
                (None, Some(date), _) => LifecycleExpiration::Date(system_time(date)),
                (None, None, Some(true)) => LifecycleExpiration::ExpiredObjectDeleteMarker,
                _ => {
                    return Err(invalid_argument(
                        "an Expiration has exactly one of Days, Date or ExpiredObjectDeleteMarker",
                    ));
                }
            },
        );
    }
    for transition in rule.transitions.unwrap_or_default() {
        let timing = match (transition.days, transition.date) {
            (Some(days), None) => TransitionTiming::Days(count(days, "Days")?),
            (None, Some(date)) => TransitionTiming::Date(system_time(date)),
            _ => {
                return Err(invalid_argument(
                    "a Transition has exactly one of Days or Date",
                ));
            }
        };
        out.transitions.push(Transition {
            timing,
            storage_class: transition_class(transition.storage_class)?,
        });
    }
    if let Some(noncurrent) = rule.noncurrent_version_expiration {
        out.noncurrent_version_expiration = Some(NoncurrentVersionExpiration {
            noncurrent_days: days(noncurrent.noncurrent_days, "NoncurrentDays")?.unwrap_or(0),
            newer_noncurrent_versions: days(
                noncurrent.newer_noncurrent_versions,
                "NewerNoncurrentVersions",
            )?,
        });
    }
    for transition in rule.noncurrent_version_transitions.unwrap_or_default() {
        out.noncurrent_version_transitions
            .push(NoncurrentVersionTransition {
                noncurrent_days: days(transition.noncurrent_days, "NoncurrentDays")?.unwrap_or(0),
                storage_class: transition_class(transition.storage_class)?,
                newer_noncurrent_versions: days(
                    transition.newer_noncurrent_versions,
                    "NewerNoncurrentVersions",
                )?,
            });
    }
    if let Some(abort) = rule.abort_incomplete_multipart_upload {
        out.abort_incomplete_multipart_upload = Some(AbortIncompleteMultipartUpload {
            days_after_initiation: days(abort.days_after_initiation, "DaysAfterInitiation")?
                .unwrap_or(0),
        });
    }
    Ok(out)
}

fn wire_size(value: Option<u64>) -> Option<i64> {
    value.and_then(|v| i64::try_from(v).ok())
}

fn wire_days(value: u32) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}

/// The store's lifecycle rule as S3's.
pub(super) fn wire_lifecycle_rule(rule: LifecycleRule) -> dto::LifecycleRule {
    let LifecycleFilter {
        prefix,
        tags,
        object_size_greater_than,
        object_size_less_than,
    } = rule.filter;
    let filter = if tags.len() > 1 || (!tags.is_empty() && !prefix.is_empty()) {
        dto::LifecycleRuleFilter {
            and: Some(dto::LifecycleRuleAndOperator {
                prefix: Some(prefix),
                tags: Some(tag_set(tags)),
                object_size_greater_than: wire_size(object_size_greater_than),
                object_size_less_than: wire_size(object_size_less_than),
            }),
            ..Default::default()
        }
    } else {
        dto::LifecycleRuleFilter {
            prefix: Some(prefix),
            tag: tag_set(tags).into_iter().next(),
            object_size_greater_than: wire_size(object_size_greater_than),
            object_size_less_than: wire_size(object_size_less_than),
            ..Default::default()
        }
    };
    let status = if rule.enabled {
        dto::ExpirationStatus::ENABLED
    } else {
        dto::ExpirationStatus::DISABLED
    };
    dto::LifecycleRule {
        id: Some(rule.id),
        status: dto::ExpirationStatus::from_static(status),
        filter: Some(filter),
        prefix: None,
        expiration: rule.expiration.map(|expiration| match expiration {
            LifecycleExpiration::Days(days) => dto::LifecycleExpiration {
                days: Some(wire_days(days)),
                ..Default::default()
            },
            LifecycleExpiration::Date(date) => dto::LifecycleExpiration {
                date: Some(timestamp(date)),
                ..Default::default()
            },
            LifecycleExpiration::ExpiredObjectDeleteMarker => dto::LifecycleExpiration {
                expired_object_delete_marker: Some(true),
                ..Default::default()
            },
        }),
        transitions: (!rule.transitions.is_empty()).then(|| {
            rule.transitions
                .into_iter()
                .map(|transition| {
                    let (days, date) = match transition.timing {
                        TransitionTiming::Days(days) => (Some(wire_days(days)), None),
                        TransitionTiming::Date(date) => (None, Some(timestamp(date))),
                    };
                    dto::Transition {
                        days,
                        date,
                        storage_class: Some(dto::TransitionStorageClass::from(
                            transition.storage_class.as_str().to_owned(),
                        )),
                    }
                })
                .collect()
        }),
        noncurrent_version_expiration: rule.noncurrent_version_expiration.map(|n| {
            dto::NoncurrentVersionExpiration {
                noncurrent_days: Some(wire_days(n.noncurrent_days)),
                newer_noncurrent_versions: n.newer_noncurrent_versions.map(wire_days),
            }
        }),
        noncurrent_version_transitions: (!rule.noncurrent_version_transitions.is_empty()).then(
            || {
                rule.noncurrent_version_transitions
                    .into_iter()
                    .map(|n| dto::NoncurrentVersionTransition {
                        noncurrent_days: Some(wire_days(n.noncurrent_days)),
                        newer_noncurrent_versions: n.newer_noncurrent_versions.map(wire_days),
                        storage_class: Some(dto::TransitionStorageClass::from(
                            n.storage_class.as_str().to_owned(),
                        )),
                    })
                    .collect()
            },
        ),
        abort_incomplete_multipart_upload: rule.abort_incomplete_multipart_upload.map(|a| {
            dto::AbortIncompleteMultipartUpload {
                days_after_initiation: Some(wire_days(a.days_after_initiation)),
            }
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tagging_headers_decode() {
        assert_eq!(
            tagging_header("a=1&b%20c=d+e&empty="),
            vec![
                ("a".to_owned(), "1".to_owned()),
                ("b c".to_owned(), "d e".to_owned()),
                ("empty".to_owned(), String::new()),
            ]
        );
        assert_eq!(
            tagging_header("bad=%zz&x=%4"),
            vec![
                ("bad".to_owned(), "%zz".to_owned()),
                ("x".to_owned(), "%4".to_owned()),
            ]
        );
    }

    #[test]
    fn lifecycle_rules_round_trip() {
        let mut rule = LifecycleRule::new("r1", LifecycleFilter::prefix("logs/"));
        rule.expiration = Some(LifecycleExpiration::Days(30));
        rule.noncurrent_version_expiration = Some(NoncurrentVersionExpiration {
            noncurrent_days: 7,
            newer_noncurrent_versions: Some(2),
        });
        rule.transitions
            .push(Transition::after_days(40, StorageClass::StandardIa));
        let wire = wire_lifecycle_rule(rule.clone());
        let back = lifecycle_rule(wire).unwrap();
        assert_eq!(back, rule);
    }
}
