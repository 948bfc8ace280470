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
