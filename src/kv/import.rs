//! Import of a new table from objects of the object store, as DynamoDB's
//! ImportTable reads S3: DynamoDB JSON lines (`{"Item": {...}}`, what an
//! export writes) or CSV, optionally gzip-compressed. Bad lines are
//! counted and reported with where they were, never fatal; a source that
//! cannot be read at all fails the import before any table is created.
//! The import's description is recorded (`kv::transfers`) as it starts and
//! again as it ends, a failed one included, so `describe_import` and
//! `list_imports` see it.

use std::collections::BTreeMap;
use std::io::Read;
use std::time::SystemTime;

use flate2::read::MultiGzDecoder;
use serde::{Deserialize, Serialize};

use super::error::{Error, Result};
use super::progress::{OnProgress, Progress};
use super::schema::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement,
    ProvisionedThroughput, TableDescription, table_arn_of,
};
use super::tables::CreateTable;
use super::transfers::{
    self, Begun, Described, INTERRUPTED_FAILURE_CODE, Kind, check_client_token, parameters_text,
};
use crate::Database;
use crate::value::{AttributeValue, Item, Number, ScalarType};

/// The most line errors an import reports one by one (all are counted).
pub const IMPORT_ERRORS_REPORTED: usize = 100;

/// How the source objects are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum InputFormat {
    /// One `{"Item": {...}}` per line (an export's data files).
    #[default]
    #[serde(rename = "DYNAMODB_JSON")]
    DynamoDbJson,
    /// A header line of attribute names (or [`ImportTable::csv_header`]),
    /// then one item per line. Key attributes take the table's types;
    /// every other non-empty value is a string.
    Csv,
}

/// Whether the source objects are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum InputCompressionType {
    /// Plain text.
    #[default]
    None,
    /// gzip.
    Gzip,
}

/// An import's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ImportStatus {
    /// Being read (seen by `describe_import` and `list_imports` while the
    /// call that runs it has not returned).
    InProgress,
    /// The table exists with every line that could be imported.
    Completed,
    /// The source could not be read (no table was created), or a crash
    /// cut the import short (see `failure_code`).
    Failed,
}

/// One line that could not be imported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportError {
    /// The object it came from.
    pub object_key: String,
    /// Its line number in the object, from 1.
    pub line: u64,
    /// Why it was rejected.
    pub message: String,
}

/// The table an import creates, as the request gave it (DynamoDB's
/// `TableCreationParameters`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableCreationParameters {
    /// The new table's name.
    pub table_name: String,
    /// The key attributes' types.
    pub attribute_definitions: Vec<AttributeDefinition>,
    /// The key schema.
    pub key_schema: Vec<KeySchemaElement>,
    /// On-demand or provisioned.
    pub billing_mode: BillingMode,
    /// The capacity of a provisioned table.
    pub provisioned_throughput: Option<ProvisionedThroughput>,
    /// Its global secondary indexes.
    pub global_secondary_indexes: Vec<GlobalSecondaryIndex>,
}

/// What an import did; kept durably, so `describe_import` and
/// `list_imports` answer with it after a reopen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportTableDescription {
    /// The import's ARN-like id (`<table arn>/import/<id>`).
    pub import_arn: String,
    /// In progress, completed or failed.
    pub import_status: ImportStatus,
    /// The ARN of the table it creates (or would have created).
    pub table_arn: String,
    /// The created table's unique id (absent when none was created).
    pub table_id: Option<String>,
    /// The created table (in `import_table`'s answer only; describe it
    /// with `describe_table`).
    #[serde(skip)]
    pub table_description: Option<TableDescription>,
    /// The client token the import was requested with.
    pub client_token: Option<String>,
    /// The source bucket.
    pub s3_bucket: String,
    /// The source key prefix.
    pub s3_key_prefix: Option<String>,
    /// The format read.
    pub input_format: InputFormat,
    /// The source's compression.
    pub input_compression_type: InputCompressionType,
    /// The table to create, as requested.
    pub table_creation_parameters: TableCreationParameters,
    /// When the import began.
    pub start_time: SystemTime,
    /// When it completed or failed (absent while in progress, and for one
    /// a crash cut short).
    pub end_time: Option<SystemTime>,
    /// Lines read (imported or not; blank lines and CSV headers aside).
    pub processed_item_count: u64,
    /// Bytes of the source read (uncompressed).
    pub processed_size_bytes: u64,
    /// Items written.
    pub imported_item_count: u64,
    /// Lines rejected.
    pub error_count: u64,
    /// The first [`IMPORT_ERRORS_REPORTED`] rejected lines (DynamoDB logs
    /// them to CloudWatch; nimbus returns them).
    pub errors: Vec<ImportError>,
    /// Why it failed (`S3NoSuchBucket`, ..., or
    /// [`INTERRUPTED_FAILURE_CODE`](super::INTERRUPTED_FAILURE_CODE)).
    pub failure_code: Option<String>,
    /// The object store's message.
    pub failure_message: Option<String>,
}

impl Described for ImportTableDescription {
    const KIND: Kind = Kind::Import;

    fn arn(&self) -> &str {
        &self.import_arn
    }

    fn in_progress(&self) -> bool {
        self.import_status == ImportStatus::InProgress
    }

    fn interrupt(&mut self) {
        self.import_status = ImportStatus::Failed;
        self.failure_code = Some(INTERRUPTED_FAILURE_CODE.to_owned());
        self.failure_message = Some("The database stopped before the import completed".to_owned());
    }
}

/// The parameters a client token is bound to (compared on reuse).
#[derive(Serialize)]
struct TokenParameters<'a> {
    s3_bucket: &'a str,
    s3_key_prefix: Option<&'a str>,
    input_format: InputFormat,
    input_compression_type: InputCompressionType,
    csv_delimiter: char,
    csv_header: Option<&'a [String]>,
    table_creation_parameters: &'a TableCreationParameters,
}

/// An `import_table` request.
#[derive(Debug)]
#[must_use = "a request does nothing until `send` is called"]
pub struct ImportTable {
    db: Database,
    s3_bucket: Option<String>,
    s3_key_prefix: Option<String>,
    input_format: InputFormat,
    compression: InputCompressionType,
    csv_delimiter: char,
    csv_header: Option<Vec<String>>,
    table: Option<CreateTable>,
    client_token: Option<String>,
    on_progress: OnProgress,
}

/// What `import_table` returns.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportTableOutput {
    /// The finished import.
    pub import_table_description: ImportTableDescription,
}

impl ImportTable {
    /// The bucket and key prefix to read every object of (required).
    pub fn s3_bucket_source(
        mut self,
        bucket: impl Into<String>,
        key_prefix: impl Into<String>,
    ) -> Self {
        self.s3_bucket = Some(bucket.into());
        self.s3_key_prefix = Some(key_prefix.into()).filter(|p: &String| !p.is_empty());
        self
    }

    /// The objects' format (DynamoDB JSON by default).
    pub fn input_format(mut self, format: InputFormat) -> Self {
        self.input_format = format;
        self
    }

    /// The objects' compression (none by default).
    pub fn input_compression_type(mut self, compression: InputCompressionType) -> Self {
        self.compression = compression;
        self
    }

    /// The CSV delimiter (`,` by default).
    pub fn csv_delimiter(mut self, delimiter: char) -> Self {
        self.csv_delimiter = delimiter;
        self
    }

    /// The CSV attribute names, when the objects have no header line.
    pub fn csv_header(mut self, names: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.csv_header = Some(names.into_iter().map(Into::into).collect());
        self
    }

    /// The table to create (required): a `create_table` request, not sent.
    pub fn table_creation_parameters(mut self, table: CreateTable) -> Self {
        self.table = Some(table);
        self
    }

    /// Makes the request idempotent: for 8 hours ([`CLIENT_TOKEN_WINDOW`](super::CLIENT_TOKEN_WINDOW)),
    /// the same token with the same parameters answers with the first
    /// import's description and imports nothing; with other parameters it
    /// is `ImportConflict`.
    pub fn client_token(mut self, token: impl Into<String>) -> Self {
        self.client_token = Some(token.into());
        self
    }

    /// Calls `callback` as lines are imported (every 1,024 and at the end;
    /// `bytes_done` counts source bytes read).
    pub fn on_progress(mut self, callback: impl Fn(&Progress) + Send + Sync + 'static) -> Self {
        self.on_progress = OnProgress::new(callback);
        self
    }

    /// Runs the import; returns when it has completed or failed (its
    /// description is recorded as it starts and again as it ends; an
    /// import refused because its table cannot be created records nothing).
    pub fn send(mut self) -> Result<ImportTableOutput> {
        let (Some(bucket), Some(table)) = (self.s3_bucket.clone(), self.table.take()) else {
            return Err(Error::validation(
                "1 validation error detected: S3BucketSource and TableCreationParameters are \
                 required",
            ));
        };
        if let Some(token) = &self.client_token {
            check_client_token(token)?;
        }
        let db = &self.db.inner;
        let parameters = table.creation_parameters();
        let table_arn = table_arn_of(&parameters.table_name);
        let now = db.clock.since_epoch();
        let id = db.kv.transfers.new_id(now, &table_arn);
        let mut description = ImportTableDescription {
            import_arn: format!("{table_arn}/{}/{id}", Kind::Import.segment()),
            import_status: ImportStatus::InProgress,
            table_arn,
            table_id: None,
            table_description: None,
            client_token: self.client_token.clone(),
            s3_bucket: bucket.clone(),
            s3_key_prefix: self.s3_key_prefix.clone(),
            input_format: self.input_format,
            input_compression_type: self.compression,
            table_creation_parameters: parameters,
            start_time: SystemTime::UNIX_EPOCH + now,
            end_time: None,
            processed_item_count: 0,
            processed_size_bytes: 0,
            imported_item_count: 0,
            error_count: 0,
            errors: Vec::new(),
            failure_code: None,
            failure_message: None,
        };
        let token_parameters = parameters_text(&TokenParameters {
            s3_bucket: &bucket,
            s3_key_prefix: self.s3_key_prefix.as_deref(),
            input_format: self.input_format,
            input_compression_type: self.compression,
            csv_delimiter: self.csv_delimiter,
            csv_header: self.csv_header.as_deref(),
            table_creation_parameters: &description.table_creation_parameters,
        })?;
        let token = self
            .client_token
            .as_deref()
            .map(|t| (t, token_parameters.as_str()));
        if let Begun::Replayed(arn) = transfers::begin(db, &description, token)? {
            let import_table_description =
                transfers::read(&db.engine, &arn)?.ok_or_else(|| Kind::Import.not_found(&arn))?;
            return Ok(ImportTableOutput {
                import_table_description,
            });
        }
        let keys = match self.source_keys(&bucket) {
            Ok(keys) => keys,
            Err(error) => {
                let (code, message) = super::export::s3_failure(&error);
                description.failure_code = Some(code);
                description.failure_message = Some(message);
                return self.end(description, ImportStatus::Failed);
            }
        };
        let created = match table.send() {
            Ok(created) => created.table_description,
            Err(error) => {
                transfers::abandon(
                    db,
                    Kind::Import,
                    &description.import_arn,
                    self.client_token.as_deref(),
                )?;
                return Err(error);
            }
        };
        description.table_id = Some(created.table_id.clone());
        match self.fill(&bucket, keys, &created.table_name, &mut description) {
            Ok(()) => {
                description.table_description =
                    Some(self.db.describe_table(&created.table_name).send()?.table);
                self.end(description, ImportStatus::Completed)
            }
            Err(error) => {
                // The engine failed mid-import: record why, best effort
                // (the engine may refuse this write too).
                description.failure_code = Some("InternalServerError".to_owned());
                description.failure_message = Some(error.message());
                description.import_status = ImportStatus::Failed;
                description.end_time = Some(SystemTime::UNIX_EPOCH + db.clock.since_epoch());
                let _ = transfers::finish(db, &description);
                Err(error)
            }
        }
    }

    /// Imports every line of `keys` into `table`.
    fn fill(
        &self,
        bucket: &str,
        keys: Vec<String>,
        table: &str,
        description: &mut ImportTableDescription,
    ) -> Result<()> {
        let reader = Reader {
            db: &self.db,
            table,
            format: self.input_format,
            compression: self.compression,
            delimiter: self.csv_delimiter,
            header: self.csv_header.clone(),
            key_types: self.key_types(table)?,
            on_progress: &self.on_progress,
        };
        let mut progress = Progress::default();
        for key in keys {
            reader.object(bucket, &key, description, &mut progress)?;
        }
        self.on_progress.finish(&mut progress);
        Ok(())
    }

    /// Records the import's end with `status` and answers with it.
    fn end(
        &self,
        mut description: ImportTableDescription,
        status: ImportStatus,
    ) -> Result<ImportTableOutput> {
        description.import_status = status;
        description.end_time = Some(SystemTime::UNIX_EPOCH + self.db.inner.clock.since_epoch());
        transfers::finish(&self.db.inner, &description)?;
        Ok(ImportTableOutput {
            import_table_description: description,
        })
    }

    /// Every key under the prefix, in order.
    fn source_keys(&self, bucket: &str) -> crate::objects::Result<Vec<String>> {
        let objects = self.db.objects();
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut request = objects.list_objects_v2(bucket);
            if let Some(prefix) = &self.s3_key_prefix {
                request = request.prefix(prefix);
            }
            if let Some(token) = token.take() {
                request = request.continuation_token(token);
            }
            let page = request.send()?;
            keys.extend(page.contents.into_iter().map(|o| o.key));
            match page.next_continuation_token {
                Some(next) if page.is_truncated => token = Some(next),
                _ => return Ok(keys),
            }
        }
    }

    /// The key attributes of `table` and their types.
    fn key_types(&self, table: &str) -> Result<BTreeMap<String, ScalarType>> {
        let handle = self.db.inner.kv.table(table)?;
        let definition = handle.definition();
        Ok(definition
            .key
            .partition_attributes()
            .chain(definition.key.sort_attributes())
            .map(|(name, scalar)| (name.to_owned(), scalar))
            .collect())
    }
}

/// Reads the objects of one import.
struct Reader<'a> {
    db: &'a Database,
    table: &'a str,
    format: InputFormat,
    compression: InputCompressionType,
    delimiter: char,
    header: Option<Vec<String>>,
    key_types: BTreeMap<String, ScalarType>,
    on_progress: &'a OnProgress,
}

impl Reader<'_> {
    /// Imports every line of one object.
    fn object(
        &self,
        bucket: &str,
        key: &str,
        description: &mut ImportTableDescription,
        progress: &mut Progress,
    ) -> Result<()> {
        let reject = |description: &mut ImportTableDescription, line: u64, message: String| {
            description.error_count += 1;
            if description.errors.len() < IMPORT_ERRORS_REPORTED {
                description.errors.push(ImportError {
                    object_key: key.to_owned(),
                    line,
                    message,
                });
            }
        };
        let text = match self.read(bucket, key) {
            Ok(text) => text,
            Err(message) => {
                reject(description, 0, message);
                return Ok(());
            }
        };
        description.processed_size_bytes += text.len() as u64;
        let mut header = self.header.clone();
        for (index, line) in text.lines().enumerate() {
            let number = index as u64 + 1;
            if line.trim().is_empty() {
                continue;
            }
            let item = match self.format {
                InputFormat::DynamoDbJson => json_line(line),
                InputFormat::Csv => match &header {
                    None => {
                        header = Some(split_csv(line, self.delimiter));
                        continue;
                    }
                    Some(names) => self.csv_line(names, line),
                },
            };
            description.processed_item_count += 1;
            self.on_progress.item(progress, line.len() as u64 + 1);
            let written = item.and_then(|item| {
                self.db
                    .put_item(self.table)
                    .item(item)
                    .send()
                    .map(drop)
                    .map_err(|e| e.message())
            });
            match written {
                Ok(()) => description.imported_item_count += 1,
                Err(message) => reject(description, number, message),
            }
        }
        Ok(())
    }

    /// The object's text, decompressed.
    fn read(&self, bucket: &str, key: &str) -> std::result::Result<String, String> {
        let body = self
            .db
            .objects()
            .get_object(bucket, key)
            .send()
            .and_then(|o| o.body.collect())
            .map_err(|e| e.to_string())?;
        let bytes = match self.compression {
            InputCompressionType::None => body.to_vec(),
            InputCompressionType::Gzip => {
                let mut out = Vec::new();
                MultiGzDecoder::new(body.as_ref())
                    .read_to_end(&mut out)
                    .map_err(|e| format!("not a gzip object: {e}"))?;
                out
            }
        };
        String::from_utf8(bytes).map_err(|_| "the object is not UTF-8 text".to_owned())
    }

    /// The item of one CSV line under `names`.
    fn csv_line(&self, names: &[String], line: &str) -> std::result::Result<Item, String> {
        let fields = split_csv(line, self.delimiter);
        if fields.len() > names.len() {
            return Err(format!(
                "the line has {} fields, the header {}",
                fields.len(),
                names.len()
            ));
        }
        let mut item = Item::new();
        for (name, field) in names.iter().zip(fields) {
            let value = match self.key_types.get(name) {
                Some(ScalarType::S) => AttributeValue::S(field),
                Some(ScalarType::N) => AttributeValue::N(
                    field
                        .parse::<Number>()
                        .map_err(|e| format!("{name}: {e}"))?,
                ),
                Some(ScalarType::B) => {
                    use base64::Engine as _;
                    AttributeValue::B(
                        base64::engine::general_purpose::STANDARD
                            .decode(field.as_bytes())
                            .map_err(|e| format!("{name}: not base64: {e}"))?,
                    )
                }
                None if field.is_empty() => continue,
                None => AttributeValue::S(field),
            };
            item.insert(name.clone(), value);
        }
        Ok(item)
    }
}

/// The item of one DynamoDB JSON line.
fn json_line(line: &str) -> std::result::Result<Item, String> {
    let value: serde_json::Value =
        serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
    let item = value
        .get("Item")
        .ok_or_else(|| "the line has no \"Item\"".to_owned())?;
    Item::from_json(&item.to_string()).map_err(|e| e.to_string())
}

/// The fields of one CSV line: `delimiter`-separated, a field in double
/// quotes may hold the delimiter and `""` for a quote.
fn split_csv(line: &str, delimiter: char) -> Vec<String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.trim_end_matches('\r').chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            '"' if quoted => quoted = false,
            '"' if field.is_empty() => quoted = true,
            c if c == delimiter && !quoted => fields.push(std::mem::take(&mut field)),
            c => field.push(c),
        }
    }
    fields.push(field);
    fields
}

impl Database {
    /// Starts an `ImportTable` request: a new table filled from objects of
    /// this database's object store.
    pub fn import_table(&self) -> ImportTable {
        ImportTable {
            db: self.clone(),
            s3_bucket: None,
            s3_key_prefix: None,
            input_format: InputFormat::DynamoDbJson,
            compression: InputCompressionType::None,
            csv_delimiter: ',',
            csv_header: None,
            table: None,
            client_token: None,
            on_progress: OnProgress::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_honour_quotes() {
        assert_eq!(split_csv("a,b,,c", ','), ["a", "b", "", "c"]);
        assert_eq!(
            split_csv("\"x,y\",\"say \"\"hi\"\"\",z\r", ','),
            ["x,y", "say \"hi\"", "z"]
        );
        assert_eq!(split_csv("a;b", ';'), ["a", "b"]);
    }

    #[test]
    fn json_lines_need_an_item() {
        assert!(json_line("{\"Item\":{\"pk\":{\"S\":\"a\"}}}").is_ok());
        assert!(json_line("{\"pk\":{\"S\":\"a\"}}").is_err());
        assert!(json_line("not json").is_err());
        assert!(json_line("{\"Item\":{\"pk\":{\"Q\":\"a\"}}}").is_err());
    }
}
