//! Export of a table to the object store, in the layout DynamoDB's
//! ExportTableToPointInTime writes to S3 (format DYNAMODB_JSON):
//!
//! ```text
//! <prefix>/AWSDynamoDB/<export id>/manifest-summary.json
//! <prefix>/AWSDynamoDB/<export id>/manifest-files.json
//! <prefix>/AWSDynamoDB/<export id>/data/<n>.json.gz   one {"Item": {...}} per line
//! ```
//!
//! The items come from one engine snapshot, so the export is the table at
//! one instant while writes go on, and it consumes no capacity. Without an
//! export time the export is of the table as it is when the call starts;
//! with one (the table must have point-in-time recovery and the time lie
//! in its window, as in DynamoDB) the items are rebuilt by `kv::pitr` from
//! a base snapshot and the archive.
//!
//! The export's description is recorded (`kv::transfers`) as it starts and
//! again as it ends, so `describe_export` and `list_exports` see it.

use std::io::Write;
use std::time::{Duration, SystemTime};

use flate2::Compression;
use flate2::write::GzEncoder;
use md5::{Digest, Md5};
use serde_json::json;

use serde::{Deserialize, Serialize};

use super::error::{Error, Result};
use super::progress::{OnProgress, Progress};
use super::transfers::{
    self, Begun, Described, INTERRUPTED_FAILURE_CODE, Kind, check_client_token, parameters_text,
};
use crate::Database;
use crate::partition::keyspace_prefix;
use crate::storage::Direction;
use crate::value::decode_item;

/// Items per data file.
const ITEMS_PER_FILE: u64 = 100_000;
/// Uncompressed bytes per data file, at most (roughly).
const BYTES_PER_FILE: usize = 64 << 20;

/// An export's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ExportStatus {
    /// Being written (seen by `describe_export` and `list_exports` while
    /// the call that runs it has not returned).
    InProgress,
    /// Every item was written and the manifests are in place.
    Completed,
    /// The object store refused a write, or a crash cut the export short
    /// (see `failure_code`).
    Failed,
}

/// The only export format nimbus writes (DynamoDB's default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum ExportFormat {
    /// One `{"Item": {...}}` per line, gzip-compressed.
    #[default]
    #[serde(rename = "DYNAMODB_JSON")]
    DynamoDbJson,
}

/// What an export holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ExportType {
    /// Every item of the table at the export time (the only kind nimbus
    /// writes).
    #[default]
    FullExport,
}

/// Where an export went and what it wrote; kept durably, so
/// `describe_export` and `list_exports` answer with it after a reopen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportDescription {
    /// The export's ARN-like id (`<table arn>/export/<id>`).
    pub export_arn: String,
    /// In progress, completed or failed.
    pub export_status: ExportStatus,
    /// The table exported.
    pub table_arn: String,
    /// The table's unique id.
    pub table_id: String,
    /// The instant the items were read at.
    pub export_time: SystemTime,
    /// When the export began.
    pub start_time: SystemTime,
    /// When it completed or failed (absent while in progress, and for one
    /// a crash cut short).
    pub end_time: Option<SystemTime>,
    /// The bucket written to.
    pub s3_bucket: String,
    /// The key prefix written under.
    pub s3_prefix: Option<String>,
    /// The objects' server-side encryption (`AES256`, as the object store
    /// reports for every object).
    pub s3_sse_algorithm: String,
    /// The key of `manifest-summary.json`.
    pub export_manifest: String,
    /// Items written.
    pub item_count: u64,
    /// Uncompressed bytes of the data files.
    pub billed_size_bytes: u64,
    /// The format written.
    pub export_format: ExportFormat,
    /// Always a full export.
    pub export_type: ExportType,
    /// The client token the export was requested with.
    pub client_token: Option<String>,
    /// Why it failed (`S3NoSuchBucket`, ..., or
    /// [`INTERRUPTED_FAILURE_CODE`](super::INTERRUPTED_FAILURE_CODE)).
    pub failure_code: Option<String>,
    /// The object store's message.
    pub failure_message: Option<String>,
}

impl Described for ExportDescription {
    const KIND: Kind = Kind::Export;

    fn arn(&self) -> &str {
        &self.export_arn
    }

    fn in_progress(&self) -> bool {
        self.export_status == ExportStatus::InProgress
    }

    fn interrupt(&mut self) {
        self.export_status = ExportStatus::Failed;
        self.failure_code = Some(INTERRUPTED_FAILURE_CODE.to_owned());
        self.failure_message = Some("The database stopped before the export completed".to_owned());
    }
}

/// The parameters a client token is bound to (compared on reuse).
#[derive(Serialize)]
struct TokenParameters<'a> {
    table_arn: &'a str,
    s3_bucket: &'a str,
    s3_prefix: Option<&'a str>,
    export_time_millis: Option<u128>,
    export_format: ExportFormat,
}

/// An `export_table_to_point_in_time` request.
#[derive(Debug, Clone)]
#[must_use = "a request does nothing until `send` is called"]
pub struct ExportTableToPointInTime {
    db: Database,
    table: String,
    s3_bucket: Option<String>,
    s3_prefix: Option<String>,
    export_format: ExportFormat,
    export_time: Option<SystemTime>,
    client_token: Option<String>,
    on_progress: OnProgress,
}

/// What `export_table_to_point_in_time` returns.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportTableToPointInTimeOutput {
    /// The finished export.
    pub export_description: ExportDescription,
}

/// One data file being filled.
struct DataFile {
    encoder: GzEncoder<Vec<u8>>,
    items: u64,
    bytes: usize,
}

impl DataFile {
    fn new() -> Self {
        Self {
            encoder: GzEncoder::new(Vec::new(), Compression::fast()),
            items: 0,
            bytes: 0,
        }
    }
}

impl ExportTableToPointInTime {
    /// The bucket to write to (required; it must exist).
    pub fn s3_bucket(mut self, bucket: impl Into<String>) -> Self {
        self.s3_bucket = Some(bucket.into());
        self
    }

    /// A key prefix for everything written.
    pub fn s3_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.s3_prefix = Some(prefix.into());
        self
    }

    /// Exports the table as it was at `time` (the table needs point-in-time
    /// recovery and `time` must lie in its window); default: now.
    pub fn export_time(mut self, time: SystemTime) -> Self {
        self.export_time = Some(time);
        self
    }

    /// Makes the request idempotent: for 8 hours ([`CLIENT_TOKEN_WINDOW`](super::CLIENT_TOKEN_WINDOW)),
    /// the same token with the same parameters answers with the first
    /// export's description and exports nothing; with other parameters it
    /// is `ExportConflict`.
    pub fn client_token(mut self, token: impl Into<String>) -> Self {
        self.client_token = Some(token.into());
        self
    }

    /// The format (DynamoDB JSON, the only one nimbus writes).
    pub fn export_format(mut self, format: ExportFormat) -> Self {
        self.export_format = format;
        self
    }

    /// Calls `callback` as items are written (every 1,024 and at the end;
    /// `items_total` is the table's item count when the export starts).
    pub fn on_progress(mut self, callback: impl Fn(&Progress) + Send + Sync + 'static) -> Self {
        self.on_progress = OnProgress::new(callback);
        self
    }

    /// Runs the export; returns when it has completed or failed (its
    /// description is recorded as it starts and again as it ends).
    pub fn send(self) -> Result<ExportTableToPointInTimeOutput> {
        let Some(bucket) = self.s3_bucket.clone() else {
            return Err(Error::validation(
                "1 validation error detected: Value null at 's3Bucket' failed to satisfy \
                 constraint: Member must not be null",
            ));
        };
        if let Some(token) = &self.client_token {
            check_client_token(token)?;
        }
        let inner = &self.db.inner;
        let table = inner.kv.table(&self.table)?;
        let definition = table.definition();
        let now = inner.clock.since_epoch();
        // Held through the export: base snapshots stay while it reads one.
        let _restores = self.export_time.map(|_| inner.kv.backups.lock());
        let at = match self.export_time {
            Some(time) => {
                let (pitr, _, millis) = super::pitr::check_restore_time(inner, &table, time)?;
                Some((pitr, millis))
            }
            None => None,
        };
        let id = inner.kv.transfers.new_id(now, &definition.table_id);
        let root = match &self.s3_prefix {
            Some(prefix) if !prefix.is_empty() => {
                format!("{}/AWSDynamoDB/{id}", prefix.trim_end_matches('/'))
            }
            _ => format!("AWSDynamoDB/{id}"),
        };
        let mut description = ExportDescription {
            export_arn: format!("{}/{}/{id}", definition.table_arn(), Kind::Export.segment()),
            export_status: ExportStatus::InProgress,
            table_arn: definition.table_arn(),
            table_id: definition.table_id.clone(),
            export_time: SystemTime::UNIX_EPOCH
                + at.as_ref()
                    .map_or(now, |(_, millis)| Duration::from_millis(*millis)),
            start_time: SystemTime::UNIX_EPOCH + now,
            end_time: None,
            s3_bucket: bucket.clone(),
            s3_prefix: self.s3_prefix.clone(),
            s3_sse_algorithm: "AES256".to_owned(),
            export_manifest: format!("{root}/manifest-summary.json"),
            item_count: 0,
            billed_size_bytes: 0,
            export_format: self.export_format,
            export_type: ExportType::FullExport,
            client_token: self.client_token.clone(),
            failure_code: None,
            failure_message: None,
        };
        let parameters = parameters_text(&TokenParameters {
            table_arn: &description.table_arn,
            s3_bucket: &bucket,
            s3_prefix: self.s3_prefix.as_deref(),
            export_time_millis: self
                .export_time
                .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
                .map(|d| d.as_millis()),
            export_format: self.export_format,
        })?;
        let token = self
            .client_token
            .as_deref()
            .map(|t| (t, parameters.as_str()));
        if let Begun::Replayed(arn) = transfers::begin(inner, &description, token)? {
            let export_description = transfers::read(&inner.engine, &arn)?
                .ok_or_else(|| Kind::Export.not_found(&arn))?;
            return Ok(ExportTableToPointInTimeOutput { export_description });
        }
        let written = self.write(&root, &bucket, &definition, at, &mut description);
        description.end_time = Some(SystemTime::UNIX_EPOCH + inner.clock.since_epoch());
        description.export_status = ExportStatus::Completed;
        if let Err(error) = written {
            description.export_status = ExportStatus::Failed;
            let (code, message) = s3_failure(&*error);
            description.failure_code = Some(code);
            description.failure_message = Some(message);
        }
        transfers::finish(inner, &description)?;
        Ok(ExportTableToPointInTimeOutput {
            export_description: description,
        })
    }

    /// Writes the data files and manifests, filling in the counts.
    fn write(
        &self,
        root: &str,
        bucket: &str,
        definition: &super::TableDefinition,
        at: Option<(super::PitrDefinition, u64)>,
        description: &mut ExportDescription,
    ) -> std::result::Result<(), Box<dyn std::error::Error>> {
        let inner = &self.db.inner;
        let objects = self.db.objects();
        let snapshot = inner.engine.snapshot()?;
        let rows = inner.engine.prefix(
            &keyspace_prefix(definition.keyspace),
            Direction::Forward,
            Some(&snapshot),
        )?;
        let mut progress = Progress {
            items_total: Some(inner.kv.table(&definition.name)?.counts().0),
            ..Progress::default()
        };
        let mut manifest_files = String::new();
        let mut file = DataFile::new();
        let mut number = 0;
        let mut flush = |file: DataFile,
                         number: &mut u32|
         -> std::result::Result<(), Box<dyn std::error::Error>> {
            let body = file.encoder.finish()?;
            let key = format!("{root}/data/{:05}.json.gz", *number);
            *number += 1;
            let md5 = base64_md5(&body);
            let put = objects.put_object(bucket, &key).body(body).send()?;
            manifest_files.push_str(
                &json!({
                    "itemCount": file.items,
                    "md5Checksum": md5,
                    "etag": put.e_tag,
                    "dataFileS3Key": key,
                })
                .to_string(),
            );
            manifest_files.push('\n');
            Ok(())
        };
        let mut emit = |value: &[u8]| -> std::result::Result<(), Box<dyn std::error::Error>> {
            let item = decode_item(value)?;
            let line = format!("{{\"Item\":{}}}\n", item.to_json());
            file.encoder.write_all(line.as_bytes())?;
            file.items += 1;
            file.bytes += line.len();
            description.item_count += 1;
            description.billed_size_bytes += line.len() as u64;
            self.on_progress.item(&mut progress, line.len() as u64);
            if file.items >= ITEMS_PER_FILE || file.bytes >= BYTES_PER_FILE {
                flush(std::mem::replace(&mut file, DataFile::new()), &mut number)?;
            }
            Ok(())
        };
        match &at {
            Some((pitr, millis)) => {
                super::pitr::for_each_item_at(inner, definition, pitr, *millis, |_, value| {
                    emit(value)
                })?;
            }
            None => {
                for row in rows {
                    emit(&row?.1)?;
                }
            }
        }
        if file.items > 0 || number == 0 {
            flush(file, &mut number)?;
        }
        let files_key = format!("{root}/manifest-files.json");
        objects
            .put_object(bucket, &files_key)
            .body(manifest_files.into_bytes())
            .send()?;
        let millis = |t: SystemTime| {
            t.duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or(Duration::ZERO)
                .as_millis() as u64
        };
        let summary = json!({
            "version": "2020-06-30",
            "exportArn": description.export_arn,
            "startTime": millis(description.start_time),
            "endTime": millis(SystemTime::UNIX_EPOCH + inner.clock.since_epoch()),
            "tableArn": description.table_arn,
            "tableId": definition.table_id,
            "exportTime": millis(description.export_time),
            "s3Bucket": bucket,
            "s3Prefix": self.s3_prefix,
            "s3SseAlgorithm": "AES256",
            "s3SseKmsKeyId": null,
            "manifestFilesS3Key": files_key,
            "billedSizeBytes": description.billed_size_bytes,
            "itemCount": description.item_count,
            "outputFormat": "DYNAMODB_JSON",
        });
        objects
            .put_object(bucket, &description.export_manifest)
            .body(summary.to_string().into_bytes())
            .send()?;
        self.on_progress.finish(&mut progress);
        Ok(())
    }
}

/// DynamoDB's failure code (`S3NoSuchBucket`, ...) and message for an
/// object store error that stopped an export or import.
pub(crate) fn s3_failure(error: &dyn std::error::Error) -> (String, String) {
    let message = error.to_string();
    let code = message.split(':').next().unwrap_or("Unknown");
    (format!("S3{code}"), message)
}

/// The base64 MD5 of `bytes` (the manifest's `md5Checksum`).
fn base64_md5(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(Md5::digest(bytes))
}

impl Database {
    /// Starts an `ExportTableToPointInTime` request: the table's items, as
    /// of now, written to a bucket of this database's object store.
    pub fn export_table_to_point_in_time(
        &self,
        table: impl Into<String>,
    ) -> ExportTableToPointInTime {
        ExportTableToPointInTime {
            db: self.clone(),
            table: table.into(),
            s3_bucket: None,
            s3_prefix: None,
            export_format: ExportFormat::DynamoDbJson,
            export_time: None,
            client_token: None,
            on_progress: OnProgress::default(),
        }
    }
}
