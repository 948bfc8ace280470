//! Who may do what on the S3 endpoint.
//!
//! - [`S3User`]: an access key with its secret, owner id and display name.
//!   `Keys` hands s3s the secret to verify a SigV4 signature with.
//! - A bucket made through this endpoint records its owner and canned ACL
//!   as bucket attributes (`owner`, `acl`). The owner may do everything;
//!   another user or an anonymous request may only read (GET/HEAD objects,
//!   list, HEAD bucket, location) and only if the ACL is `public-read`;
//!   everything else is `AccessDenied`, as in S3. Anonymous requests are
//!   refused everywhere else (listing buckets, creating one).
//! - A bucket without an owner row (made through the Rust API) belongs to
//!   every configured user: the embedding program owns it.
//! - `VirtualHosts`: `bucket.<domain>[:port]` selects the bucket; any
//!   other host (an IP address, `localhost`) means path-style.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use s3s::access::{S3Access, S3AccessContext};
use s3s::auth::{S3Auth, SecretKey};
use s3s::host::{S3Host, VirtualHost};
use s3s::path::S3Path;
use s3s::{S3Result, s3_error};

use crate::Database;

/// Bucket attribute holding the owner id.
pub(super) const OWNER_ATTRIBUTE: &str = "owner";
/// Bucket attribute holding the canned ACL (`private` or `public-read`).
pub(super) const ACL_ATTRIBUTE: &str = "acl";
/// The owner every request acts as when no access key is configured.
pub(super) const LOCAL_OWNER_ID: &str = "nimbus";

/// One configured access key of the S3 endpoint.
#[derive(Clone, PartialEq, Eq)]
pub struct S3User {
    /// The access key id clients sign with.
    pub access_key: String,
    /// The secret access key.
    pub secret_key: String,
    /// The canonical owner id of what this user creates.
    pub owner_id: String,
    /// The owner's display name in listings and ACLs.
    pub display_name: String,
}

impl std::fmt::Debug for S3User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secret never reaches a log line.
        f.debug_struct("S3User")
            .field("access_key", &self.access_key)
            .field("owner_id", &self.owner_id)
            .field("display_name", &self.display_name)
            .finish_non_exhaustive()
    }
}

impl S3User {
    /// A user whose owner id and display name are its access key.
    pub fn new(access_key: impl Into<String>, secret_key: impl Into<String>) -> Self {
        let access_key = access_key.into();
        Self {
            owner_id: access_key.clone(),
            display_name: access_key.clone(),
            access_key,
            secret_key: secret_key.into(),
        }
    }

    /// Parses `KEY:SECRET[:OWNER]` (the command line's form); the owner id
    /// is also the display name, and defaults to the access key.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut parts = text.splitn(3, ':');
        let (Some(key), Some(secret)) = (parts.next(), parts.next()) else {
            return Err(format!("{text:?} is not KEY:SECRET[:OWNER]"));
        };
        if key.is_empty() || secret.is_empty() {
            return Err(format!("{text:?} has an empty key or secret"));
        }
        let mut user = Self::new(key, secret);
        if let Some(owner) = parts.next().filter(|owner| !owner.is_empty()) {
            owner.clone_into(&mut user.owner_id);
            owner.clone_into(&mut user.display_name);
        }
        Ok(user)
    }
}

/// The configured users by access key.
#[derive(Debug, Clone, Default)]
pub(super) struct Keys(Arc<HashMap<String, S3User>>);

impl Keys {
    pub(super) fn new(users: &[S3User]) -> Self {
        Self(Arc::new(
            users
                .iter()
                .map(|user| (user.access_key.clone(), user.clone()))
                .collect(),
        ))
    }

    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The user a request acts as: the signer's, or the local owner when
    /// no key is configured; `None` for an anonymous request.
    pub(super) fn identity(&self, access_key: Option<&str>) -> Option<(String, String)> {
        if self.0.is_empty() {
            return Some((LOCAL_OWNER_ID.to_owned(), LOCAL_OWNER_ID.to_owned()));
        }
        let user = self.0.get(access_key?)?;
        Some((user.owner_id.clone(), user.display_name.clone()))
    }

    /// The display name of an owner id (the id itself if unknown).
    pub(super) fn display_name(&self, owner_id: &str) -> String {
        self.0
            .values()
            .find(|user| user.owner_id == owner_id)
            .map_or_else(|| owner_id.to_owned(), |user| user.display_name.clone())
    }
}

#[async_trait::async_trait]
impl S3Auth for Keys {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        match self.0.get(access_key) {
            Some(user) => Ok(SecretKey::from(user.secret_key.as_str())),
            None => Err(s3_error!(
                InvalidAccessKeyId,
                "The AWS Access Key Id you provided does not exist in our records."
            )),
        }
    }
}

/// What a bucket's owner and ACL rows say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct BucketAcl {
    /// `None`: made through the Rust API, owned by every configured user.
    pub(super) owner: Option<String>,
    pub(super) public_read: bool,
}

/// Reads a bucket's owner and ACL (blocking); `None` if it does not exist.
pub(super) fn bucket_acl(db: &Database, bucket: &str) -> crate::objects::Result<Option<BucketAcl>> {
    let objects = db.objects();
    let owner = match objects.get_bucket_attribute(bucket, OWNER_ATTRIBUTE) {
        Ok(owner) => owner,
        Err(crate::objects::Error::NoSuchBucket { .. }) => return Ok(None),
        Err(error) => return Err(error),
    };
    let acl = match objects.get_bucket_attribute(bucket, ACL_ATTRIBUTE) {
        Ok(acl) => acl,
        Err(crate::objects::Error::NoSuchBucket { .. }) => return Ok(None),
        Err(error) => return Err(error),
    };
    Ok(Some(BucketAcl {
        owner: owner.map(|bytes| String::from_utf8_lossy(&bytes).into_owned()),
        public_read: acl.as_deref() == Some(b"public-read"),
    }))
}

/// Operations a `public-read` bucket allows to anyone.
fn is_public_read_operation(name: &str) -> bool {
    matches!(
        name,
        "GetObject"
            | "HeadObject"
            | "ListObjects"
            | "ListObjectsV2"
            | "HeadBucket"
            | "GetBucketLocation"
    )
}

/// Whether `owner_id` (or an anonymous caller, `None`) may run `operation`
/// on a bucket with `acl`.
pub(super) fn allowed(acl: &BucketAcl, owner_id: Option<&str>, operation: &str) -> bool {
    let is_owner = match (&acl.owner, owner_id) {
        (_, None) => false,
        (None, Some(_)) => true,
        (Some(owner), Some(caller)) => owner == caller,
    };
    is_owner || (acl.public_read && is_public_read_operation(operation))
}

/// The per-request decision s3s asks for before it parses the input.
pub(super) struct Access {
    db: Database,
    keys: Keys,
}

impl Access {
    pub(super) fn new(db: Database, keys: Keys) -> Self {
        Self { db, keys }
    }
}

#[async_trait::async_trait]
impl S3Access for Access {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        let caller = self
            .keys
            .identity(cx.credentials().map(|c| c.access_key.as_str()))
            .map(|(owner_id, _)| owner_id);
        let bucket = match cx.s3_path() {
            S3Path::Root => None,
            S3Path::Bucket { bucket } | S3Path::Object { bucket, .. } => Some(bucket.to_string()),
        };
        let operation = cx.s3_op().name().to_owned();
        let Some(bucket) = bucket.filter(|_| operation != "CreateBucket") else {
            return match caller {
                Some(_) => Ok(()),
                None => Err(s3_error!(AccessDenied, "Anonymous access is not allowed")),
            };
        };
        let db = self.db.clone();
        let acl = tokio::task::spawn_blocking(move || bucket_acl(&db, &bucket))
            .await
            .map_err(|error| s3_error!(InternalError, "access check failed: {error}"))?
            .map_err(super::error::to_s3)?;
        match acl {
            // A missing bucket answers NoSuchBucket to a known caller.
            None if caller.is_some() => Ok(()),
            Some(acl) if allowed(&acl, caller.as_deref(), &operation) => Ok(()),
            _ => Err(s3_error!(AccessDenied, "Access Denied")),
        }
    }
}

/// Virtual-host-style addressing for a set of base domains.
#[derive(Debug)]
pub(super) struct VirtualHosts(Vec<String>);

impl VirtualHosts {
    pub(super) fn new(domains: &[String]) -> std::io::Result<Self> {
        for domain in domains {
            if domain.is_empty() || domain.contains([':', '/']) {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("{domain:?} is not a base domain for virtual hosts"),
                ));
            }
        }
        Ok(Self(
            domains.iter().map(|d| d.to_ascii_lowercase()).collect(),
        ))
    }

    /// The bucket a Host header names, if it is `bucket.<domain>`.
    fn bucket_of<'h>(&self, host: &'h str) -> Option<&'h str> {
        let name = host.rsplit_once(':').map_or(host, |(name, _)| name);
        self.0.iter().find_map(|domain| {
            let stem = name.strip_suffix(domain.as_str())?.strip_suffix('.')?;
            (!stem.is_empty()).then_some(stem)
        })
    }
}

impl S3Host for VirtualHosts {
    fn parse_host_header<'a>(&'a self, host: &'a str) -> S3Result<VirtualHost<'a>> {
        let domain: Cow<'a, str> = Cow::Borrowed(host);
        Ok(match self.bucket_of(host) {
            Some(bucket) => VirtualHost::new(domain).with_bucket(bucket),
            None => VirtualHost::new(domain),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_parse_from_the_command_line_form() {
        let user = S3User::parse("AK:SECRET:alice").unwrap();
        assert_eq!(user.access_key, "AK");
        assert_eq!(user.secret_key, "SECRET");
        assert_eq!(user.owner_id, "alice");
        assert_eq!(S3User::parse("AK:S").unwrap().owner_id, "AK");
        assert!(S3User::parse("AK").is_err());
        assert!(S3User::parse(":S").is_err());
        assert!(!format!("{user:?}").contains("SECRET"));
    }

    #[test]
    fn owners_and_public_read_decide() {
        let private = BucketAcl {
            owner: Some("alice".into()),
            public_read: false,
        };
        let public = BucketAcl {
            public_read: true,
            ..private.clone()
        };
        assert!(allowed(&private, Some("alice"), "PutObject"));
        assert!(!allowed(&private, Some("bob"), "GetObject"));
        assert!(!allowed(&private, None, "GetObject"));
        assert!(allowed(&public, None, "GetObject"));
        assert!(allowed(&public, Some("bob"), "ListObjectsV2"));
        assert!(!allowed(&public, Some("bob"), "PutObject"));
        assert!(!allowed(&public, None, "DeleteObject"));
        let unowned = BucketAcl {
            owner: None,
            public_read: false,
        };
        assert!(allowed(&unowned, Some("bob"), "DeleteBucket"));
        assert!(!allowed(&unowned, None, "GetObject"));
    }

    #[test]
    fn virtual_hosts_name_buckets_only_under_their_domains() {
        let hosts = VirtualHosts::new(&["localhost".into(), "s3.example.com".into()]).unwrap();
        assert_eq!(hosts.bucket_of("photos.localhost:9000"), Some("photos"));
        assert_eq!(hosts.bucket_of("a.b.s3.example.com"), Some("a.b"));
        assert_eq!(hosts.bucket_of("localhost:9000"), None);
        assert_eq!(hosts.bucket_of("127.0.0.1:9000"), None);
        assert_eq!(hosts.bucket_of("evil.com"), None);
        assert!(VirtualHosts::new(&["a:1".into()]).is_err());
    }
}
