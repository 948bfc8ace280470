//! Object tagging after the fact (`put_object_tagging`,
//! `get_object_tagging`, `delete_object_tagging`): a version's tags are
//! part of its attributes, so changing them rewrites that version's row
//! under the key's lock — the body, ETag and version id stay the same.

use super::Objects;
use super::error::Result;
use super::lock::{lock_target, read_lock_target};
use super::names::validate_tags;
use super::record::VersionKind;
use super::versions::KeyChange;

impl Objects<'_> {
    /// Replaces the tags of a version (the current one without
    /// `version_id`); returns the version id it changed (`None` for a
    /// version that has none to report).
    pub fn put_object_tagging(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        tags: Vec<(String, String)>,
    ) -> Result<Option<String>> {
        validate_tags(&tags)?;
        let store = self.store;
        let _gate = store.gate.read();
        let record = store.bucket(bucket)?;
        let _key_lock = store.lock_key(record.id, key);
        let mut change = KeyChange::load(store, &record, bucket, key)?;
        let mut version = lock_target(&change, key, version_id)?;
        if let VersionKind::Object(object) = &mut version.record.kind {
            object.attributes.tags = tags;
        }
        change.rewrite(&version);
        change.commit()?;
        Ok(Some(version.version_id()))
    }

    /// The tags of a version (the current one without `version_id`) and
    /// that version's id.
    pub fn get_object_tagging(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<(Vec<(String, String)>, String)> {
        let (version, object) = read_lock_target(self.store, bucket, key, version_id)?;
        Ok((object.attributes.tags, version.version_id()))
    }

    /// Removes every tag of a version; returns its version id.
    pub fn delete_object_tagging(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<Option<String>> {
        self.put_object_tagging(bucket, key, version_id, Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use crate::Database;
    use crate::objects::{BucketVersioningStatus, Error};

    fn pair(k: &str, v: &str) -> (String, String) {
        (k.to_owned(), v.to_owned())
    }

    #[test]
    fn tags_are_replaced_per_version_and_the_body_stays() {
        let db = Database::memory().unwrap();
        let s3 = db.objects();
        s3.create_bucket("bkt").send().unwrap();
        s3.put_bucket_versioning("bkt")
            .status(BucketVersioningStatus::Enabled)
            .send()
            .unwrap();
        let first = s3
            .put_object("bkt", "k")
            .body(b"one".to_vec())
            .tagging("a", "1")
            .send()
            .unwrap();
        let second = s3
            .put_object("bkt", "k")
            .body(b"two".to_vec())
            .send()
            .unwrap();
        let first_id = first.version_id.unwrap();
        s3.put_object_tagging("bkt", "k", None, vec![pair("x", "y")])
            .unwrap();
        let (tags, id) = s3.get_object_tagging("bkt", "k", None).unwrap();
        assert_eq!(tags, vec![pair("x", "y")]);
        assert_eq!(Some(id), second.version_id);
        let (old, _) = s3.get_object_tagging("bkt", "k", Some(&first_id)).unwrap();
        assert_eq!(old, vec![pair("a", "1")]);
        s3.delete_object_tagging("bkt", "k", Some(&first_id))
            .unwrap();
        assert!(
            s3.get_object_tagging("bkt", "k", Some(&first_id))
                .unwrap()
                .0
                .is_empty()
        );
        let got = s3.get_object("bkt", "k").send().unwrap();
        assert_eq!(got.e_tag, second.e_tag);
        assert_eq!(got.body.collect().unwrap(), &b"two"[..]);
    }

    #[test]
    fn bad_tagging_changes_nothing() {
        let db = Database::memory().unwrap();
        let s3 = db.objects();
        s3.create_bucket("bkt").send().unwrap();
        s3.put_object("bkt", "k")
            .body(b"x".to_vec())
            .tagging("a", "1")
            .send()
            .unwrap();
        let eleven = (0..11).map(|i| pair(&format!("k{i}"), "v")).collect();
        assert!(s3.put_object_tagging("bkt", "k", None, eleven).is_err());
        assert_eq!(
            s3.get_object_tagging("bkt", "k", None).unwrap().0,
            vec![pair("a", "1")]
        );
        assert!(matches!(
            s3.get_object_tagging("bkt", "missing", None),
            Err(Error::NoSuchKey { .. })
        ));
    }
}
