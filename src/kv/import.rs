//! Import of a new table from objects of the object store, as DynamoDB's
//! ImportTable reads S3: DynamoDB JSON lines (`{"Item": {...}}`, what an
//! export writes) or CSV, optionally gzip-compressed. Bad lines are
//! counted and reported with where they were, never fatal; a source that
//! cannot be read at all fails the import before any table is created.

use std::collections::BTreeMap;
use std::io::Read;

use flate2::read::MultiGzDecoder;

use super::error::{Error, Result};
use super::progress::{OnProgress, Progress};
use super::schema::TableDescription;
use super::tables::CreateTable;
use crate::Database;
use crate::value::{AttributeValue, Item, Number, ScalarType};

/// The most line errors an import reports one by one (all are counted).
pub const IMPORT_ERRORS_REPORTED: usize = 100;

/// How the source objects are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum InputFormat {
    /// One `{"Item": {...}}` per line (an export's data files).
    #[default]
    DynamoDbJson,
    /// A header line of attribute names (or [`ImportTable::csv_header`]),
    /// then one item per line. Key attributes take the table's types;
    /// every other non-empty value is a string.
    Csv,
}

/// Whether the source objects are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum InputCompressionType {
    /// Plain text.
    #[default]
    None,
    /// gzip.
    Gzip,
}

/// How an import ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImportStatus {
    /// The table exists with every line that could be imported.
    Completed,
    /// The source could not be read; no table was created.
    Failed,
}

/// One line that could not be imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportError {
    /// The object it came from.
    pub object_key: String,
    /// Its line number in the object, from 1.
    pub line: u64,
    /// Why it was rejected.
    pub message: String,
}

/// What an import did.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportTableDescription {
    /// The import's ARN-like id.
    pub import_arn: String,
    /// Completed or Failed.
    pub import_status: ImportStatus,
    /// The table created (absent when the import failed).
    pub table_description: Option<TableDescription>,
    /// The source bucket.
    pub s3_bucket: String,
    /// The source key prefix.
    pub s3_key_prefix: Option<String>,
    /// The format read.
    pub input_format: InputFormat,
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
    /// Why it failed (`S3NoSuchBucket`, ...).
    pub failure_code: Option<String>,
    /// The object store's message.
    pub failure_message: Option<String>,
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

    /// Calls `callback` as lines are imported (every 1,024 and at the end;
    /// `bytes_done` counts source bytes read).
    pub fn on_progress(mut self, callback: impl Fn(&Progress) + Send + Sync + 'static) -> Self {
        self.on_progress = OnProgress::new(callback);
        self
    }

    /// Runs the import; returns when it has completed or failed.
    pub fn send(mut self) -> Result<ImportTableOutput> {
        let (Some(bucket), Some(table)) = (self.s3_bucket.clone(), self.table.take()) else {
            return Err(Error::validation(
                "1 validation error detected: S3BucketSource and TableCreationParameters are \
                 required",
            ));
        };
        let now = self.db.inner.clock.since_epoch();
        let mut description = ImportTableDescription {
            import_arn: format!(
                "arn:aws:dynamodb:local:000000000000:import/{:013}",
                now.as_millis()
            ),
            import_status: ImportStatus::Completed,
            table_description: None,
            s3_bucket: bucket.clone(),
            s3_key_prefix: self.s3_key_prefix.clone(),
            input_format: self.input_format,
            processed_item_count: 0,
            processed_size_bytes: 0,
            imported_item_count: 0,
            error_count: 0,
            errors: Vec::new(),
            failure_code: None,
            failure_message: None,
        };
        let keys = match self.source_keys(&bucket) {
            Ok(keys) => keys,
            Err(error) => {
                let (code, message) = super::export::s3_failure(&error);
                description.import_status = ImportStatus::Failed;
                description.failure_code = Some(code);
                description.failure_message = Some(message);
                return Ok(ImportTableOutput {
                    import_table_description: description,
                });
            }
        };
        let created = table.send()?.table_description;
        let reader = Reader {
            db: &self.db,
            table: &created.table_name,
            format: self.input_format,
            compression: self.compression,
            delimiter: self.csv_delimiter,
            header: self.csv_header.clone(),
            key_types: self.key_types(&created.table_name)?,
            on_progress: &self.on_progress,
        };
        let mut progress = Progress::default();
        for key in keys {
            reader.object(&bucket, &key, &mut description, &mut progress)?;
        }
        self.on_progress.finish(&mut progress);
        description.table_description =
            Some(self.db.describe_table(&created.table_name).send()?.table);
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
