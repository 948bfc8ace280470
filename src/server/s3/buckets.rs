//! Bucket operations: create (owned by the caller, MD5 ETags, canned ACL),
//! delete, head, list (the caller's buckets), location, versioning, ACL
//! and bucket tagging.

use hyper::StatusCode;
use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result, s3_error};

use super::access::{ACL_ATTRIBUTE, OWNER_ATTRIBUTE, bucket_acl};
use super::convert::{tag_pairs, tag_set, timestamp};
use super::error::to_s3;
use super::service::NimbusS3;
use crate::objects::BucketVersioningStatus as Versioning;

/// Bucket attribute holding the bucket's tags (JSON pairs).
const TAGGING_ATTRIBUTE: &str = "tagging";

/// The canned ACLs this endpoint keeps: `private` and `public-read`.
fn canned_acl(acl: Option<&str>) -> S3Result<Option<&'static str>> {
    match acl {
        None => Ok(None),
        Some("private") => Ok(Some("private")),
        Some("public-read") => Ok(Some("public-read")),
        Some(other) => Err(S3Error::with_message(
            S3ErrorCode::NotImplemented,
            format!("the canned ACL {other:?} is not supported (private, public-read are)"),
        )),
    }
}

fn conflict(code: S3ErrorCode, message: &str) -> S3Error {
    let mut error = S3Error::with_message(code, message.to_owned());
    error.set_status_code(StatusCode::CONFLICT);
    error
}

impl NimbusS3 {
    pub(super) async fn create_bucket(
        &self,
        req: S3Request<CreateBucketInput>,
    ) -> S3Result<S3Response<CreateBucketOutput>> {
        let (owner, _) = self
            .caller(&req)
            .ok_or_else(|| s3_error!(AccessDenied, "Anonymous users cannot create buckets"))?;
        let input = req.input;
        let acl = canned_acl(input.acl.as_ref().map(BucketCannedACL::as_str))?;
        let lock = input.object_lock_enabled_for_bucket.unwrap_or(false);
        let bucket = input.bucket;
        let location = self
            .blocking(move |db| {
                if let Some(existing) = bucket_acl(db, &bucket).map_err(to_s3)? {
                    return Err(match existing.owner {
                        Some(other) if other != owner => conflict(
                            S3ErrorCode::BucketAlreadyExists,
                            "The requested bucket name is not available.",
                        ),
                        _ => conflict(
                            S3ErrorCode::BucketAlreadyOwnedByYou,
                            "Your previous request to create the named bucket succeeded and you already own it.",
                        ),
                    });
                }
                // The owner and ACL commit in the bucket's creating batch:
                // a crash never leaves a bucket without its owner.
                let mut create = db
                    .objects()
                    .create_bucket(bucket.as_str())
                    .md5_e_tags(true)
                    .object_lock_enabled_for_bucket(lock)
                    .attribute(OWNER_ATTRIBUTE, owner.as_bytes());
                if let Some(acl) = acl {
                    create = create.attribute(ACL_ATTRIBUTE, acl.as_bytes());
                }
                Ok(create.send().map_err(to_s3)?.location)
            })
            .await?;
        Ok(S3Response::new(CreateBucketOutput {
            location: Some(location),
        }))
    }

    pub(super) async fn delete_bucket(
        &self,
        req: S3Request<DeleteBucketInput>,
    ) -> S3Result<S3Response<DeleteBucketOutput>> {
        let bucket = req.input.bucket;
        self.blocking(move |db| db.objects().delete_bucket(bucket).send().map_err(to_s3))
            .await?;
        Ok(S3Response::new(DeleteBucketOutput {}))
    }

    pub(super) async fn head_bucket(
        &self,
        req: S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        let bucket = req.input.bucket;
        self.blocking(move |db| db.objects().head_bucket(bucket).send().map_err(to_s3))
            .await?;
        Ok(S3Response::new(HeadBucketOutput {
            bucket_region: Some(self.region.clone()),
            ..Default::default()
        }))
    }

    pub(super) async fn list_buckets(
        &self,
        req: S3Request<ListBucketsInput>,
    ) -> S3Result<S3Response<ListBucketsOutput>> {
        let (owner, display_name) = self
            .caller(&req)
            .ok_or_else(|| s3_error!(AccessDenied, "Anonymous users cannot list buckets"))?;
        let prefix = req.input.prefix;
        let caller = owner.clone();
        let buckets = self
            .blocking(move |db| {
                let all = db.objects().list_buckets().send().map_err(to_s3)?.buckets;
                let mut mine = Vec::new();
                for bucket in all {
                    if prefix
                        .as_ref()
                        .is_some_and(|p| !bucket.name.starts_with(p.as_str()))
                    {
                        continue;
                    }
                    // A bucket deleted meanwhile has no ACL: skip it.
                    let Some(acl) = bucket_acl(db, &bucket.name).map_err(to_s3)? else {
                        continue;
                    };
                    if acl.owner.as_ref().is_none_or(|owner| *owner == caller) {
                        mine.push(Bucket {
                            name: Some(bucket.name),
                            creation_date: Some(timestamp(bucket.creation_date)),
                            bucket_region: None,
                        });
                    }
                }
                Ok(mine)
            })
            .await?;
        Ok(S3Response::new(ListBucketsOutput {
            buckets: Some(buckets),
            owner: Some(Owner {
                id: Some(owner),
                display_name: Some(display_name),
            }),
            ..Default::default()
        }))
    }

    pub(super) async fn get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        let bucket = req.input.bucket;
        self.blocking(move |db| db.objects().head_bucket(bucket).send().map_err(to_s3))
            .await?;
        // S3 reports us-east-1 as an empty location constraint.
        let location = (self.region != "us-east-1")
            .then(|| BucketLocationConstraint::from(self.region.clone()));
        Ok(S3Response::new(GetBucketLocationOutput {
            location_constraint: location,
        }))
    }

    pub(super) async fn get_bucket_versioning(
        &self,
        req: S3Request<GetBucketVersioningInput>,
    ) -> S3Result<S3Response<GetBucketVersioningOutput>> {
        let bucket = req.input.bucket;
        let status = self
            .blocking(move |db| {
                db.objects()
                    .get_bucket_versioning(bucket)
                    .send()
                    .map_err(to_s3)
            })
            .await?
            .status;
        let status = status.map(|status| {
            BucketVersioningStatus::from_static(match status {
                Versioning::Enabled => BucketVersioningStatus::ENABLED,
                _ => BucketVersioningStatus::SUSPENDED,
            })
        });
        Ok(S3Response::new(GetBucketVersioningOutput {
            status,
            mfa_delete: None,
        }))
    }

    pub(super) async fn put_bucket_versioning(
        &self,
        req: S3Request<PutBucketVersioningInput>,
    ) -> S3Result<S3Response<PutBucketVersioningOutput>> {
        let input = req.input;
        let status = match input
            .versioning_configuration
            .status
            .as_ref()
            .map(BucketVersioningStatus::as_str)
        {
            Some(BucketVersioningStatus::ENABLED) => Versioning::Enabled,
            Some(BucketVersioningStatus::SUSPENDED) => Versioning::Suspended,
            _ => {
                return Err(s3_error!(
                    IllegalVersioningConfigurationException,
                    "The versioning status must be Enabled or Suspended"
                ));
            }
        };
        let bucket = input.bucket;
        self.blocking(move |db| {
            db.objects()
                .put_bucket_versioning(bucket)
                .status(status)
                .send()
                .map_err(to_s3)
        })
        .await?;
        Ok(S3Response::new(PutBucketVersioningOutput {}))
    }

    pub(super) async fn get_bucket_acl(
        &self,
        req: S3Request<GetBucketAclInput>,
    ) -> S3Result<S3Response<GetBucketAclOutput>> {
        let bucket = req.input.bucket;
        let acl = self
            .blocking(move |db| bucket_acl(db, &bucket).map_err(to_s3))
            .await?
            .ok_or_else(|| s3_error!(NoSuchBucket))?;
        let owner_id = acl
            .owner
            .clone()
            .unwrap_or_else(|| super::access::LOCAL_OWNER_ID.to_owned());
        let owner = Owner {
            display_name: Some(self.keys.display_name(&owner_id)),
            id: Some(owner_id),
        };
        let mut grants = vec![Grant {
            grantee: Some(Grantee {
                display_name: owner.display_name.clone(),
                email_address: None,
                id: owner.id.clone(),
                type_: Type::from_static(Type::CANONICAL_USER),
                uri: None,
            }),
            permission: Some(Permission::from_static(Permission::FULL_CONTROL)),
        }];
        if acl.public_read {
            grants.push(Grant {
                grantee: Some(Grantee {
                    display_name: None,
                    email_address: None,
                    id: None,
                    type_: Type::from_static(Type::GROUP),
                    uri: Some("http://acs.amazonaws.com/groups/global/AllUsers".to_owned()),
                }),
                permission: Some(Permission::from_static(Permission::READ)),
            });
        }
        Ok(S3Response::new(GetBucketAclOutput {
            grants: Some(grants),
            owner: Some(owner),
        }))
    }

    pub(super) async fn put_bucket_acl(
        &self,
        req: S3Request<PutBucketAclInput>,
    ) -> S3Result<S3Response<PutBucketAclOutput>> {
        let input = req.input;
        let acl =
            canned_acl(input.acl.as_ref().map(BucketCannedACL::as_str))?.ok_or_else(|| {
                S3Error::with_message(
                    S3ErrorCode::NotImplemented,
                    "only canned ACLs (x-amz-acl: private or public-read) are supported",
                )
            })?;
        let bucket = input.bucket;
        self.blocking(move |db| {
            db.objects()
                .put_bucket_attribute(&bucket, ACL_ATTRIBUTE, acl.as_bytes())
                .map_err(to_s3)
        })
        .await?;
        Ok(S3Response::new(PutBucketAclOutput {}))
    }

    pub(super) async fn get_bucket_tagging(
        &self,
        req: S3Request<GetBucketTaggingInput>,
    ) -> S3Result<S3Response<GetBucketTaggingOutput>> {
        let bucket = req.input.bucket;
        let stored = self
            .blocking(move |db| {
                db.objects()
                    .get_bucket_attribute(&bucket, TAGGING_ATTRIBUTE)
                    .map_err(to_s3)
            })
            .await?;
        let Some(stored) = stored else {
            let mut error = s3_error!(NoSuchTagSet, "The TagSet does not exist");
            error.set_status_code(StatusCode::NOT_FOUND);
            return Err(error);
        };
        let pairs: Vec<(String, String)> = serde_json::from_slice(&stored)
            .map_err(|e| s3_error!(InternalError, "stored bucket tags are damaged: {e}"))?;
        Ok(S3Response::new(GetBucketTaggingOutput {
            tag_set: tag_set(pairs),
        }))
    }

    pub(super) async fn put_bucket_tagging(
        &self,
        req: S3Request<PutBucketTaggingInput>,
    ) -> S3Result<S3Response<PutBucketTaggingOutput>> {
        let input = req.input;
        let pairs = tag_pairs(input.tagging.tag_set)?;
        // S3 allows 50 tags per bucket with the object tag length limits.
        if pairs.len() > 50 {
            return Err(super::error::invalid_argument(
                "a bucket has at most 50 tags",
            ));
        }
        let encoded = serde_json::to_vec(&pairs)
            .map_err(|e| s3_error!(InternalError, "cannot encode tags: {e}"))?;
        let bucket = input.bucket;
        self.blocking(move |db| {
            db.objects()
                .put_bucket_attribute(&bucket, TAGGING_ATTRIBUTE, &encoded)
                .map_err(to_s3)
        })
        .await?;
        Ok(S3Response::new(PutBucketTaggingOutput {}))
    }

    pub(super) async fn delete_bucket_tagging(
        &self,
        req: S3Request<DeleteBucketTaggingInput>,
    ) -> S3Result<S3Response<DeleteBucketTaggingOutput>> {
        let bucket = req.input.bucket;
        self.blocking(move |db| {
            db.objects()
                .delete_bucket_attribute(&bucket, TAGGING_ATTRIBUTE)
                .map_err(to_s3)
        })
        .await?;
        let mut response = S3Response::new(DeleteBucketTaggingOutput {});
        response.status = Some(StatusCode::NO_CONTENT);
        Ok(response)
    }
}
