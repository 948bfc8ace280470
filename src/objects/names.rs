//! Validation of what a caller names: bucket names (S3's rules for
//! general-purpose buckets), object keys, user metadata and tags.

use super::error::{Error, Result};
use super::limits::{
    BUCKET_NAME_BYTES_MAX, BUCKET_NAME_BYTES_MIN, KEY_BYTES_MAX, TAG_KEY_CHARS_MAX,
    TAG_VALUE_CHARS_MAX, TAGS_PER_OBJECT_MAX, USER_METADATA_BYTES_MAX,
};

/// Prefixes S3 reserves for its own bucket names.
const RESERVED_PREFIXES: [&str; 3] = ["xn--", "sthree-", "amzn-s3-demo-"];

/// Suffixes S3 reserves for access points and directory buckets.
const RESERVED_SUFFIXES: [&str; 4] = ["-s3alias", "--ol-s3", ".mrap", "--x-s3"];

/// Checks `name` against S3's bucket naming rules.
pub(crate) fn validate_bucket_name(name: &str) -> Result<()> {
    let invalid = |reason: &str| {
        Err(Error::InvalidBucketName {
            reason: format!("{name:?}: {reason}"),
        })
    };
    if name.len() < BUCKET_NAME_BYTES_MIN || name.len() > BUCKET_NAME_BYTES_MAX {
        return invalid("a bucket name has 3 to 63 characters");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
    {
        return invalid("only lowercase letters, digits, '.' and '-' are allowed");
    }
    let alphanumeric =
        |b: Option<u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if !alphanumeric(name.bytes().next()) || !alphanumeric(name.bytes().last()) {
        return invalid("a bucket name begins and ends with a letter or digit");
    }
    if name.contains("..") {
        return invalid("a bucket name has no two adjacent periods");
    }
    if looks_like_ipv4(name) {
        return invalid("a bucket name must not be formatted as an IP address");
    }
    if RESERVED_PREFIXES
        .iter()
        .any(|prefix| name.starts_with(prefix))
    {
        return invalid("the prefix is reserved");
    }
    if RESERVED_SUFFIXES
        .iter()
        .any(|suffix| name.ends_with(suffix))
    {
        return invalid("the suffix is reserved");
    }
    Ok(())
}

fn looks_like_ipv4(name: &str) -> bool {
    let parts: Vec<&str> = name.split('.').collect();
    parts.len() == 4
        && parts.iter().all(|part| {
            !part.is_empty() && part.len() <= 3 && part.bytes().all(|b| b.is_ascii_digit())
        })
}

/// Checks an object key: non-empty and at most 1024 bytes of UTF-8 (a
/// `&str` is UTF-8 already).
pub(crate) fn validate_key(key: &str) -> Result<()> {
    if key.is_empty() {
        return Err(Error::InvalidArgument("the object key is empty".into()));
    }
    if key.len() > KEY_BYTES_MAX {
        return Err(Error::InvalidArgument(format!(
            "the object key has {} bytes, above the limit of {KEY_BYTES_MAX}",
            key.len()
        )));
    }
    Ok(())
}

/// Normalises user metadata: names are case-insensitive in S3 (HTTP
/// headers), so they are stored lowercased and must be unique after that;
/// the total of keys and values is at most 2 KB.
pub(crate) fn normalize_metadata(metadata: Vec<(String, String)>) -> Result<Vec<(String, String)>> {
    let mut normalized: Vec<(String, String)> = Vec::with_capacity(metadata.len());
    let mut size = 0usize;
    for (name, value) in metadata {
        if name.is_empty() {
            return Err(Error::InvalidArgument("a metadata name is empty".into()));
        }
        if !name.bytes().all(is_header_name_byte) {
            return Err(Error::InvalidArgument(format!(
                "the metadata name {name:?} is not a valid header name"
            )));
        }
        let name = name.to_ascii_lowercase();
        size += name.len() + value.len();
        if normalized.iter().any(|(existing, _)| *existing == name) {
            return Err(Error::InvalidArgument(format!(
                "the metadata name {name:?} is given twice"
            )));
        }
        normalized.push((name, value));
    }
    if size > USER_METADATA_BYTES_MAX {
        return Err(Error::MetadataTooLarge {
            size,
            limit: USER_METADATA_BYTES_MAX,
        });
    }
    normalized.sort();
    Ok(normalized)
}

/// The token characters of an HTTP header name (RFC 9110).
fn is_header_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Checks object tags: at most 10, unique keys, S3's length limits.
pub(crate) fn validate_tags(tags: &[(String, String)]) -> Result<()> {
    if tags.len() > TAGS_PER_OBJECT_MAX {
        return Err(Error::InvalidArgument(format!(
            "an object has at most {TAGS_PER_OBJECT_MAX} tags, not {}",
            tags.len()
        )));
    }
    for (index, (key, value)) in tags.iter().enumerate() {
        if key.is_empty() || key.chars().count() > TAG_KEY_CHARS_MAX {
            return Err(Error::InvalidArgument(format!(
                "the tag key {key:?} must have 1 to {TAG_KEY_CHARS_MAX} characters"
            )));
        }
        if value.chars().count() > TAG_VALUE_CHARS_MAX {
            return Err(Error::InvalidArgument(format!(
                "the value of tag {key:?} has more than {TAG_VALUE_CHARS_MAX} characters"
            )));
        }
        if tags[..index].iter().any(|(other, _)| other == key) {
            return Err(Error::InvalidArgument(format!(
                "the tag key {key:?} is given twice"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names_follow_the_s3_rules() {
        for good in ["abc", "my-bucket.logs", "a1b", &"a".repeat(63), "1.2.3"] {
            assert!(validate_bucket_name(good).is_ok(), "{good}");
        }
        for bad in [
            "ab",
            &"a".repeat(64),
            "Abc",
            "a_b",
            "-abc",
            "abc-",
            "a..b",
            "192.168.1.1",
            "xn--abc",
            "sthree-x",
            "abc-s3alias",
            "abc--ol-s3",
            "abc.mrap",
            "abc--x-s3",
        ] {
            assert!(
                matches!(
                    validate_bucket_name(bad),
                    Err(Error::InvalidBucketName { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn metadata_is_case_folded_and_bounded() {
        let meta = normalize_metadata(vec![("Color".into(), "blü".into())]).unwrap();
        assert_eq!(meta, vec![("color".to_owned(), "blü".to_owned())]);
        assert!(
            normalize_metadata(vec![("a".into(), "x".into()), ("A".into(), "y".into())]).is_err()
        );
        assert!(matches!(
            normalize_metadata(vec![("k".into(), "v".repeat(2048))]),
            Err(Error::MetadataTooLarge { size: 2049, .. })
        ));
        assert!(normalize_metadata(vec![("k".into(), "v".repeat(2047))]).is_ok());
        assert!(normalize_metadata(vec![("bad name".into(), "v".into())]).is_err());
    }

    #[test]
    fn keys_are_bounded() {
        assert!(validate_key("").is_err());
        assert!(validate_key(&"k".repeat(1024)).is_ok());
        assert!(validate_key(&"k".repeat(1025)).is_err());
        assert!(validate_key("ключ/\u{FFFF}").is_ok());
    }
}
