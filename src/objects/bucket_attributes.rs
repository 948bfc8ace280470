//! Bucket attributes: small opaque values a front end keeps beside a
//! bucket (the S3 endpoint stores the owner, the canned ACL, the bucket's
//! tags and its notification configuration here). The store does not
//! interpret them; it only guarantees that they live and die with the
//! bucket — `delete_bucket` removes them in the same batch, and because
//! bucket ids are never reused a new bucket of the same name starts bare.

use super::Objects;
use super::error::{Error, Result};
use super::keys;
use super::limits::BUCKET_ATTRIBUTE_BYTES_MAX;

/// The longest attribute name, in bytes.
const BUCKET_ATTRIBUTE_NAME_BYTES_MAX: usize = 64;

/// Checks an attribute's name (1 to 64 bytes).
pub(super) fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > BUCKET_ATTRIBUTE_NAME_BYTES_MAX {
        return Err(Error::InvalidArgument(format!(
            "a bucket attribute name has 1 to {BUCKET_ATTRIBUTE_NAME_BYTES_MAX} bytes"
        )));
    }
    Ok(())
}

/// Checks an attribute's name and value (at most
/// [`BUCKET_ATTRIBUTE_BYTES_MAX`] bytes).
pub(super) fn check_attribute(name: &str, value: &[u8]) -> Result<()> {
    check_name(name)?;
    if value.len() > BUCKET_ATTRIBUTE_BYTES_MAX {
        return Err(Error::InvalidArgument(format!(
            "a bucket attribute has at most {BUCKET_ATTRIBUTE_BYTES_MAX} bytes"
        )));
    }
    Ok(())
}

impl Objects<'_> {
    /// Sets (or replaces) the attribute `name` of a bucket. To give a new
    /// bucket attributes that must never be missing (an owner), pass them
    /// to [`CreateBucket::attribute`](super::CreateBucket::attribute)
    /// instead: they are then written in the bucket's creating batch.
    pub fn put_bucket_attribute(&self, bucket: &str, name: &str, value: &[u8]) -> Result<()> {
        check_attribute(name, value)?;
        // The gate's read side keeps `delete_bucket` (write side) from
        // removing the bucket between the lookup and the write.
        let _gate = self.store.gate.read();
        let record = self.store.bucket(bucket)?;
        self.store
            .engine
            .put(&keys::bucket_attribute(record.id, name), value)?;
        Ok(())
    }

    /// The attribute `name` of a bucket, if it was set.
    pub fn get_bucket_attribute(&self, bucket: &str, name: &str) -> Result<Option<Vec<u8>>> {
        check_name(name)?;
        let record = self.store.bucket(bucket)?;
        Ok(self
            .store
            .engine
            .get(&keys::bucket_attribute(record.id, name))?
            .map(|bytes| bytes.to_vec()))
    }

    /// Removes the attribute `name` of a bucket (no error if it was unset).
    pub fn delete_bucket_attribute(&self, bucket: &str, name: &str) -> Result<()> {
        check_name(name)?;
        let _gate = self.store.gate.read();
        let record = self.store.bucket(bucket)?;
        self.store
            .engine
            .delete(&keys::bucket_attribute(record.id, name))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::Database;
    use crate::objects::Error;

    #[test]
    fn attributes_live_and_die_with_their_bucket() {
        let db = Database::memory().unwrap();
        let s3 = db.objects();
        s3.create_bucket("bkt").send().unwrap();
        assert_eq!(s3.get_bucket_attribute("bkt", "owner").unwrap(), None);
        s3.put_bucket_attribute("bkt", "owner", b"alice").unwrap();
        assert_eq!(
            s3.get_bucket_attribute("bkt", "owner").unwrap().as_deref(),
            Some(&b"alice"[..])
        );
        s3.delete_bucket("bkt").send().unwrap();
        s3.create_bucket("bkt").send().unwrap();
        assert_eq!(s3.get_bucket_attribute("bkt", "owner").unwrap(), None);
        s3.put_bucket_attribute("bkt", "acl", b"public-read")
            .unwrap();
        s3.delete_bucket_attribute("bkt", "acl").unwrap();
        assert_eq!(s3.get_bucket_attribute("bkt", "acl").unwrap(), None);
    }

    #[test]
    fn bad_attribute_requests_are_refused() {
        let db = Database::memory().unwrap();
        let s3 = db.objects();
        assert!(matches!(
            s3.put_bucket_attribute("nope", "owner", b"x"),
            Err(Error::NoSuchBucket { .. })
        ));
        s3.create_bucket("bkt").send().unwrap();
        assert!(matches!(
            s3.put_bucket_attribute("bkt", "", b"x"),
            Err(Error::InvalidArgument(_))
        ));
        let huge = vec![0u8; super::BUCKET_ATTRIBUTE_BYTES_MAX + 1];
        assert!(matches!(
            s3.put_bucket_attribute("bkt", "tags", &huge),
            Err(Error::InvalidArgument(_))
        ));
        assert_eq!(s3.get_bucket_attribute("bkt", "tags").unwrap(), None);
    }

    #[test]
    fn attributes_given_at_creation_commit_in_the_bucket_batch() {
        use std::sync::Arc;

        use parking_lot::Mutex;

        use crate::objects::keys;
        use crate::storage::commit::CommittedBatch;

        let db = Database::memory().unwrap();
        // Every committed batch, as the log receives it.
        let batches: Arc<Mutex<Vec<Vec<Vec<u8>>>>> = Arc::default();
        let seen = batches.clone();
        db.engine()
            .set_replication_hook(Some(Arc::new(
                move |group: &[CommittedBatch]| -> crate::storage::Result<()> {
                    for committed in group {
                        let keys = committed.batch.iter().map(|op| op.key.to_vec()).collect();
                        seen.lock().push(keys);
                    }
                    Ok(())
                },
            )))
            .unwrap();
        let s3 = db.objects();
        s3.create_bucket("bkt")
            .attribute("owner", b"alice".to_vec())
            .attribute("acl", b"private".to_vec())
            .attribute("acl", b"public-read".to_vec())
            .send()
            .unwrap();
        let id = db.objects().store.bucket("bkt").unwrap().id;
        let batches = batches.lock();
        let creating: Vec<_> = batches
            .iter()
            .filter(|keys| keys.contains(&keys::bucket("bkt")))
            .collect();
        assert_eq!(creating.len(), 1, "one batch creates the bucket");
        assert!(creating[0].contains(&keys::bucket_attribute(id, "owner")));
        assert!(creating[0].contains(&keys::bucket_attribute(id, "acl")));
        assert_eq!(
            s3.get_bucket_attribute("bkt", "owner").unwrap().as_deref(),
            Some(&b"alice"[..])
        );
        assert_eq!(
            s3.get_bucket_attribute("bkt", "acl").unwrap().as_deref(),
            Some(&b"public-read"[..]),
            "the last value given for a name wins"
        );
    }

    #[test]
    fn a_bad_attribute_at_creation_creates_nothing() {
        let db = Database::memory().unwrap();
        let s3 = db.objects();
        let huge = vec![0u8; super::BUCKET_ATTRIBUTE_BYTES_MAX + 1];
        assert!(matches!(
            s3.create_bucket("bkt").attribute("tags", huge).send(),
            Err(Error::InvalidArgument(_))
        ));
        assert!(matches!(
            s3.create_bucket("bkt").attribute("", b"x".to_vec()).send(),
            Err(Error::InvalidArgument(_))
        ));
        assert!(matches!(
            s3.head_bucket("bkt").send(),
            Err(Error::NoSuchBucket { .. })
        ));
    }
}
