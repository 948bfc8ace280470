//! The durable descriptions of exports and imports, and the client-token
//! claims that make ExportTableToPointInTime and ImportTable idempotent.
//!
//! Every export and import writes its description into the kv catalogue
//! (docs/format-kv.md, tags `12`–`14`) twice: IN_PROGRESS when it starts,
//! in the same batch as its client token's claim, and COMPLETED or FAILED
//! in the one batch that ends it. A description still IN_PROGRESS when the
//! database opens belongs to an export or import that a crash cut short
//! (nothing resumes one), so opening marks it FAILED.
//!
//! Rows are keyed by ARN, and an ARN starts with its table's ARN, so the
//! descriptions of one table are one key range, and a list page is one
//! reverse scan that stops after the page: newest id first, in DynamoDB's
//! "reverse alphanumeric order of ExportArn".
//!
//! This module never runs an export or import: `export.rs` and `import.rs`
//! call [`begin`], [`finish`] and [`abandon`]; `transfer_reads.rs` serves
//! DescribeExport, ListExports, DescribeImport and ListImports from [`read`]
//! and [`page`].

use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::catalogue::catalogue_key;
use super::error::{Error, Result};
use crate::db::DatabaseInner;
use crate::storage::{Direction, Engine, StorageError, WriteBatch};

/// Catalogue tag of an export's description (key: its ARN).
const EXPORT_TAG: u8 = 0x12;
/// Catalogue tag of an import's description (key: its ARN).
const IMPORT_TAG: u8 = 0x13;
/// Catalogue tag of a client token's claim (key: kind byte, token).
const TOKEN_TAG: u8 = 0x14;

/// How long a client token stays bound to its export or import
/// (DynamoDB's idempotency window: 8 hours).
pub const CLIENT_TOKEN_WINDOW: Duration = Duration::from_secs(8 * 60 * 60);

/// The longest ARN DynamoDB takes.
const ARN_CHARS_MAX: usize = 1024;
/// The shortest export or import ARN DynamoDB takes.
pub(crate) const TRANSFER_ARN_CHARS_MIN: usize = 37;
/// The shortest ListImports `NextToken` (the API's `ImportNextToken`).
const NEXT_TOKEN_CHARS_MIN: usize = 112;
/// The longest ListImports `NextToken`.
const NEXT_TOKEN_CHARS_MAX: usize = 1024;

/// The failure code of an export or import that a crash cut short.
pub const INTERRUPTED_FAILURE_CODE: &str = "InterruptedError";

/// Which of the two a description belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// An export (ExportTableToPointInTime).
    Export,
    /// An import (ImportTable).
    Import,
}

impl Kind {
    fn tag(self) -> u8 {
        match self {
            Self::Export => EXPORT_TAG,
            Self::Import => IMPORT_TAG,
        }
    }

    /// The ARN segment before the id (`<table arn>/export/<id>`).
    pub(crate) fn segment(self) -> &'static str {
        match self {
            Self::Export => "export",
            Self::Import => "import",
        }
    }

    /// DynamoDB's error for an ARN that names nothing.
    pub(crate) fn not_found(self, arn: &str) -> Error {
        match self {
            Self::Export => Error::ExportNotFound(format!("Export not found: {arn}")),
            Self::Import => Error::ImportNotFound(format!("Import not found: {arn}")),
        }
    }

    fn conflict(self, token: &str) -> Error {
        let message = format!(
            "The client token {token} was already used within the last 8 hours by a request \
             with other parameters"
        );
        match self {
            Self::Export => Error::ExportConflict(message),
            Self::Import => Error::ImportConflict(message),
        }
    }
}

/// An export or import description as stored.
pub(crate) trait Described: Serialize + DeserializeOwned {
    /// Export or import.
    const KIND: Kind;
    /// Its ARN (the row's key).
    fn arn(&self) -> &str;
    /// Whether it is still IN_PROGRESS.
    fn in_progress(&self) -> bool;
    /// Marks it FAILED: the export or import was cut short by a crash.
    fn interrupt(&mut self);
}

/// Live state: the lock that makes a client token's check-and-claim
/// atomic, and a counter that keeps ids unique within the process.
#[derive(Debug, Default)]
pub(crate) struct TransferState {
    claims: Mutex<()>,
    sequence: AtomicU64,
}

impl TransferState {
    /// A new export or import id: the start time in milliseconds (so ids
    /// sort by time), then 8 hex digits that differ between any two ids
    /// made in the same millisecond.
    pub(crate) fn new_id(&self, now: Duration, seed: &str) -> String {
        let n = self.sequence.fetch_add(1, Ordering::Relaxed);
        let hash =
            xxhash_rust::xxh3::xxh3_64(format!("{seed}/{n}/{:?}", Instant::now()).as_bytes());
        format!("{:014}-{:08x}", now.as_millis(), hash as u32)
    }
}

/// A client token's claim: the export or import it names and the
/// parameters it was first sent with.
#[derive(Debug, Serialize, Deserialize)]
struct Claim {
    arn: String,
    parameters: String,
    claimed_at_millis: u64,
}

fn corrupt(what: &str, error: impl std::fmt::Display) -> StorageError {
    StorageError::corruption("catalogue", 0, format!("{what}: {error}"))
}

fn encode(value: &impl Serialize, what: &str) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| Error::Storage(corrupt(what, e)))
}

fn decode<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, StorageError> {
    serde_json::from_slice(bytes).map_err(|e| corrupt(what, e))
}

fn description_key(kind: Kind, arn: &str) -> Vec<u8> {
    catalogue_key(kind.tag(), arn.as_bytes())
}

fn token_key(kind: Kind, token: &str) -> Vec<u8> {
    let mut rest = vec![kind.tag()];
    rest.extend_from_slice(token.as_bytes());
    catalogue_key(TOKEN_TAG, &rest)
}

/// What [`begin`] found.
pub(crate) enum Begun {
    /// The description is recorded: run the export or import.
    Started,
    /// The client token already names this export or import, sent with the
    /// same parameters: answer with its description, run nothing.
    Replayed(String),
}

/// Records `description` (IN_PROGRESS) of a new export or import and, in
/// the same batch, claims `token` (the client token and the request's
/// parameters, canonically written) for it. A token claimed within its
/// window names the earlier export or import (same parameters) or is
/// DynamoDB's conflict error (other parameters); then nothing is written.
pub(crate) fn begin<T: Described>(
    db: &DatabaseInner,
    description: &T,
    token: Option<(&str, &str)>,
) -> Result<Begun> {
    let kind = T::KIND;
    let now_millis = db.clock.since_epoch().as_millis() as u64;
    let _claims = db.kv.transfers.claims.lock();
    let mut batch = WriteBatch::new();
    if let Some((token, parameters)) = token {
        let key = token_key(kind, token);
        if let Some(bytes) = db.engine.get(&key)? {
            let claim: Claim = decode(&bytes, "client token claim")?;
            let age_millis = now_millis.saturating_sub(claim.claimed_at_millis);
            if age_millis < CLIENT_TOKEN_WINDOW.as_millis() as u64 {
                if claim.parameters == parameters {
                    return Ok(Begun::Replayed(claim.arn));
                }
                return Err(kind.conflict(token));
            }
        }
        let claim = Claim {
            arn: description.arn().to_owned(),
            parameters: parameters.to_owned(),
            claimed_at_millis: now_millis,
        };
        batch.put(&key, &encode(&claim, "client token claim")?);
    }
    batch.put(
        &description_key(kind, description.arn()),
        &encode(description, "description")?,
    );
    db.engine.write(batch)?;
    Ok(Begun::Started)
}

/// Records the final description (COMPLETED or FAILED) in one batch.
pub(crate) fn finish<T: Described>(db: &DatabaseInner, description: &T) -> Result<()> {
    let mut batch = WriteBatch::new();
    batch.put(
        &description_key(T::KIND, description.arn()),
        &encode(description, "description")?,
    );
    db.engine.write(batch)?;
    Ok(())
}

/// Forgets an export or import that was refused after [`begin`] (an
/// import whose table could not be created): its description and its
/// token's claim go in one batch, so the refusal changes nothing.
pub(crate) fn abandon(
    db: &DatabaseInner,
    kind: Kind,
    arn: &str,
    token: Option<&str>,
) -> Result<()> {
    let _claims = db.kv.transfers.claims.lock();
    let mut batch = WriteBatch::new();
    batch.delete(&description_key(kind, arn));
    if let Some(token) = token {
        let key = token_key(kind, token);
        let ours = match db.engine.get(&key)? {
            Some(bytes) => decode::<Claim>(&bytes, "client token claim")?.arn == arn,
            None => false,
        };
        if ours {
            batch.delete(&key);
        }
    }
    db.engine.write(batch)?;
    Ok(())
}

/// The stored description with ARN `arn`.
pub(crate) fn read<T: Described>(engine: &Engine, arn: &str) -> Result<Option<T>> {
    match engine.get(&description_key(T::KIND, arn))? {
        Some(bytes) => Ok(Some(decode(&bytes, "description")?)),
        None => Ok(None),
    }
}

/// One page of descriptions, newest ARN first: those of `table_arn` (all
/// when `None`) whose ARN sorts before `before`, at most `limit`; and the
/// ARN to continue before, when more remain.
pub(crate) fn page<T: Described>(
    engine: &Engine,
    table_arn: Option<&str>,
    before: Option<&str>,
    limit: usize,
) -> Result<(Vec<T>, Option<String>)> {
    let kind = T::KIND;
    let prefix = match table_arn {
        Some(table) => description_key(kind, &format!("{table}/{}/", kind.segment())),
        None => catalogue_key(kind.tag(), &[]),
    };
    // ARNs are UTF-8, which never holds 0xFF: every key of the range lies
    // below the prefix followed by 0xFF.
    let mut end = prefix.clone();
    end.push(0xFF);
    if let Some(before) = before {
        end = end.min(description_key(kind, before));
    }
    // A token from another filter can lie below the whole range.
    if end <= prefix {
        return Ok((Vec::new(), None));
    }
    let range = (Bound::Included(prefix), Bound::Excluded(end));
    let mut descriptions = Vec::with_capacity(limit);
    for row in engine.range(range, Direction::Reverse, None)? {
        let (_, value) = row?;
        if descriptions.len() == limit {
            let next = descriptions.last().map(|d: &T| d.arn().to_owned());
            return Ok((descriptions, next));
        }
        descriptions.push(decode(&value, "description")?);
    }
    Ok((descriptions, None))
}

/// Marks FAILED every description still IN_PROGRESS: at open, before any
/// export or import can run, each such one was cut short by a crash.
pub(crate) fn recover(engine: &Engine) -> Result<(), StorageError> {
    let mut batch = WriteBatch::new();
    interrupt_all::<super::export::ExportDescription>(engine, &mut batch)?;
    interrupt_all::<super::import::ImportTableDescription>(engine, &mut batch)?;
    if !batch.is_empty() {
        engine.write(batch)?;
    }
    Ok(())
}

fn interrupt_all<T: Described>(
    engine: &Engine,
    batch: &mut WriteBatch,
) -> Result<(), StorageError> {
    for row in engine.prefix(&catalogue_key(T::KIND.tag(), &[]), Direction::Forward, None)? {
        let (key, value) = row?;
        let mut description: T = decode(&value, "description")?;
        if description.in_progress() {
            description.interrupt();
            let json = serde_json::to_vec(&description).map_err(|e| corrupt("description", e))?;
            batch.put(&key, &json);
        }
    }
    Ok(())
}

/// The canonical text of a request's parameters, compared when a client
/// token is reused.
pub(crate) fn parameters_text(parameters: &impl Serialize) -> Result<String> {
    serde_json::to_string(parameters).map_err(|e| Error::Validation(format!("parameters: {e}")))
}

/// DynamoDB's check of an ARN member's length (`exportArn`, `importArn`:
/// 37–1024 characters; `tableArn`: 1–1024), before anything is looked up.
pub(crate) fn check_arn(arn: &str, field: &str, min_chars: usize) -> Result<()> {
    let chars = arn.chars().count();
    if chars < min_chars {
        return Err(constraint(
            arn,
            field,
            &format!("Member must have length greater than or equal to {min_chars}"),
        ));
    }
    if chars > ARN_CHARS_MAX {
        return Err(constraint(
            arn,
            field,
            &format!("Member must have length less than or equal to {ARN_CHARS_MAX}"),
        ));
    }
    Ok(())
}

/// DynamoDB's check of a client token (`^[^$]+$`: not empty, no `$`).
pub(crate) fn check_client_token(token: &str) -> Result<()> {
    if token.is_empty() || token.contains('$') {
        return Err(constraint(
            token,
            "clientToken",
            "Member must satisfy regular expression pattern: ^[^$]+$",
        ));
    }
    Ok(())
}

/// A page size's check: 1 to `max`, in DynamoDB's words.
pub(crate) fn check_page_size(size: i32, field: &str, max: i32) -> Result<usize> {
    if size < 1 {
        return Err(constraint(
            &size.to_string(),
            field,
            "Member must have value greater than or equal to 1",
        ));
    }
    if size > max {
        return Err(constraint(
            &size.to_string(),
            field,
            &format!("Member must have value less than or equal to {max}"),
        ));
    }
    Ok(size as usize)
}

fn constraint(value: &str, field: &str, constraint: &str) -> Error {
    Error::validation(format!(
        "1 validation error detected: Value '{value}' at '{field}' failed to satisfy \
         constraint: {constraint}"
    ))
}

/// The `NextToken` that continues a list before `arn`: its bytes in hex,
/// padded with zero bytes to the shape DynamoDB's ListImports takes
/// (at least 112 characters, a multiple of 16, `([0-9a-f]{16})+`).
pub(crate) fn next_token(arn: &str) -> String {
    let mut hex: String = arn.bytes().map(|b| format!("{b:02x}")).collect();
    while hex.len() < NEXT_TOKEN_CHARS_MIN || !hex.len().is_multiple_of(16) {
        hex.push_str("00");
    }
    hex
}

/// The ARN a `NextToken` continues before; DynamoDB's validation errors
/// for one of the wrong shape.
pub(crate) fn parse_next_token(token: &str) -> Result<String> {
    if token.len() < NEXT_TOKEN_CHARS_MIN {
        return Err(constraint(
            token,
            "nextToken",
            &format!("Member must have length greater than or equal to {NEXT_TOKEN_CHARS_MIN}"),
        ));
    }
    if token.len() > NEXT_TOKEN_CHARS_MAX {
        return Err(constraint(
            token,
            "nextToken",
            &format!("Member must have length less than or equal to {NEXT_TOKEN_CHARS_MAX}"),
        ));
    }
    let well_formed = token.len().is_multiple_of(16)
        && token
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if !well_formed {
        return Err(constraint(
            token,
            "nextToken",
            "Member must satisfy regular expression pattern: ([0-9a-f]{16})+",
        ));
    }
    let mut bytes: Vec<u8> = (0..token.len())
        .step_by(2)
        .filter_map(|i| u8::from_str_radix(token.get(i..i + 2)?, 16).ok())
        .collect();
    while bytes.last() == Some(&0) {
        bytes.pop();
    }
    String::from_utf8(bytes).map_err(|_| Error::validation("The provided NextToken is not valid"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_tokens_round_trip_in_dynamodb_shape() {
        for arn in [
            "a",
            "arn:nimbus:dynamodb:local:000000000000:table/T/import/1-2",
        ] {
            let token = next_token(arn);
            assert!(token.len() >= 112 && token.len().is_multiple_of(16));
            assert_eq!(parse_next_token(&token).unwrap(), arn);
        }
        assert!(parse_next_token("abc").is_err());
        assert!(parse_next_token(&"g".repeat(112)).is_err());
        assert!(parse_next_token(&"0".repeat(120)).is_err());
        // Invalid UTF-8 is refused, not a panic.
        assert!(parse_next_token(&format!("ff{}", "0".repeat(110))).is_err());
    }

    #[test]
    fn page_sizes_are_checked_in_dynamodb_words() {
        assert_eq!(check_page_size(25, "maxResults", 25).unwrap(), 25);
        let low = check_page_size(0, "maxResults", 25).unwrap_err();
        assert!(low.message().contains("greater than or equal to 1"));
        let high = check_page_size(26, "pageSize", 25).unwrap_err();
        assert!(high.message().contains("Value '26' at 'pageSize'"));
        assert!(high.message().contains("less than or equal to 25"));
    }
}
