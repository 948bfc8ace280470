//! Entry points for the fuzz targets (`fuzz/fuzz_targets/objects_*.rs`):
//! the decoders of every catalogue row that comes from disk. Each must
//! return an error on bad input, never panic, and a value it accepts must
//! encode back to the same bytes.

use super::events::SubscriptionRecord;
use super::lifecycle::{decode_rules, encode_rules};
use super::record::{
    BucketRecord, ChunkLocation, KeyHead, PartRecord, UploadRecord, VersionRecord,
};

/// Decodes `bytes` as each kind of catalogue row; for every kind that
/// accepts them, checks that encoding the value gives `bytes` back.
pub fn decode_catalogue_rows(bytes: &[u8]) {
    if let Ok(record) = VersionRecord::decode(bytes) {
        assert_eq!(record.encode(), bytes, "manifest re-encodes differently");
    }
    if let Ok(record) = PartRecord::decode(bytes) {
        assert_eq!(record.encode(), bytes, "part re-encodes differently");
    }
    if let Ok(record) = UploadRecord::decode(bytes) {
        assert_eq!(record.encode(), bytes, "upload re-encodes differently");
    }
    if let Ok(record) = BucketRecord::decode(bytes) {
        assert_eq!(record.encode(), bytes, "bucket re-encodes differently");
    }
    if let Ok(record) = KeyHead::decode(bytes) {
        assert_eq!(record.encode(), bytes, "key head re-encodes differently");
    }
    if let Ok(record) = ChunkLocation::decode(bytes) {
        assert_eq!(
            record.encode(),
            bytes,
            "chunk location re-encodes differently"
        );
    }
    if let Ok(record) = SubscriptionRecord::decode(bytes) {
        assert_eq!(
            record.encode(),
            bytes,
            "subscription re-encodes differently"
        );
    }
    if let Ok(rules) = decode_rules(bytes) {
        assert_eq!(
            encode_rules(&rules),
            bytes,
            "lifecycle re-encodes differently"
        );
    }
}

/// Valid encodings of every kind of catalogue row, as seeds for the fuzz
/// corpus and for mutation tests.
pub fn sample_catalogue_rows() -> Vec<Vec<u8>> {
    use super::lifecycle::{LifecycleExpiration, LifecycleFilter, LifecycleRule, Transition};
    use super::record::{
        Body, ChunkList, ChunkRef, Codec, ObjectAttributes, ObjectRecord, VersionKind,
    };
    use super::types::{ObjectLockMode, StorageClass, Tier, Versioning};

    let chunks = ChunkList {
        body_id: [1; 16],
        tier: Tier::Cold,
        chunks: vec![
            ChunkRef::whole([2; 32], 300),
            ChunkRef {
                hash: [3; 32],
                offset: 4096,
                len: 1 << 20,
            },
        ],
    };
    let attributes = ObjectAttributes {
        content_type: Some("text/plain".into()),
        metadata: vec![("owner".into(), "zoë".into())],
        tags: vec![("team".into(), "a".into())],
        storage_class: StorageClass::StandardIa,
        retention: Some((ObjectLockMode::Governance, 1_700_000_000_000_000_000)),
        legal_hold: true,
        ..ObjectAttributes::default()
    };
    let object = |body: Body, part_sizes: Vec<u64>| VersionRecord {
        id: Some([9; 8]),
        last_modified_nanos: 1_700_000_000_000_000_000,
        kind: VersionKind::Object(Box::new(ObjectRecord {
            size: body.len(),
            e_tag: "abc-2".into(),
            attributes: attributes.clone(),
            restored_until: Some(5),
            part_sizes,
            body,
        })),
    };
    let mut rule = LifecycleRule::new("r", LifecycleFilter::prefix("logs/"));
    rule.expiration = Some(LifecycleExpiration::Days(3));
    rule.transitions = vec![Transition::after_days(30, StorageClass::Glacier)];
    vec![
        object(
            Body::Inline(bytes::Bytes::from_static(b"tiny body")),
            Vec::new(),
        )
        .encode(),
        object(Body::Chunked(chunks.clone()), vec![300, 1 << 20]).encode(),
        VersionRecord {
            id: None,
            last_modified_nanos: 7,
            kind: VersionKind::DeleteMarker,
        }
        .encode(),
        PartRecord {
            last_modified_nanos: 3,
            e_tag: "e".into(),
            md5: Some([4; 16]),
            chunks,
        }
        .encode(),
        UploadRecord {
            initiated_nanos: 11,
            attributes,
        }
        .encode(),
        BucketRecord {
            id: 3,
            created_nanos: 4,
            versioning: Versioning::Enabled,
            object_lock: true,
            default_retention: None,
            md5_etags: false,
        }
        .encode(),
        KeyHead {
            next_seq: 4,
            null_seq: Some(2),
            count: 3,
        }
        .encode(),
        ChunkLocation {
            pack: 1,
            offset: 16,
            stored_len: 100,
            raw_len: 200,
            codec: Codec::Lz4,
        }
        .encode(),
        encode_rules(&[rule]),
    ]
}
