//! DescribeExport, ListExports, DescribeImport and ListImports: the
//! descriptions `kv::transfers` keeps of every export and import, read
//! back. Arguments are checked as DynamoDB's request validation checks
//! them (lengths, page sizes, token shape) before anything is looked up.

use std::time::SystemTime;

use super::error::Result;
use super::export::{ExportDescription, ExportStatus, ExportType};
use super::import::{ImportStatus, ImportTableDescription, InputFormat};
use super::transfers::{
    self, Described, TRANSFER_ARN_CHARS_MIN, check_arn, check_page_size, next_token,
    parse_next_token,
};
use crate::Database;

/// The most export summaries one `list_exports` page holds (DynamoDB's
/// `MaxResults` range is 1–25).
pub const LIST_EXPORTS_MAX_RESULTS: i32 = 25;
/// The most import summaries one `list_imports` page holds (DynamoDB's
/// `PageSize` range is 1–25).
pub const LIST_IMPORTS_PAGE_SIZE_MAX: i32 = 25;

/// The shortest table ARN a list filter takes.
const TABLE_ARN_CHARS_MIN: usize = 1;

/// A `describe_export` request.
#[derive(Debug, Clone)]
#[must_use = "a request does nothing until `send` is called"]
pub struct DescribeExport {
    db: Database,
    export_arn: String,
}

/// What `describe_export` returns.
#[derive(Debug, Clone, PartialEq)]
pub struct DescribeExportOutput {
    /// The export, as recorded.
    pub export_description: ExportDescription,
}

/// A `describe_import` request.
#[derive(Debug, Clone)]
#[must_use = "a request does nothing until `send` is called"]
pub struct DescribeImport {
    db: Database,
    import_arn: String,
}

/// What `describe_import` returns.
#[derive(Debug, Clone, PartialEq)]
pub struct DescribeImportOutput {
    /// The import, as recorded (`table_description` is absent: describe
    /// the table itself for its current state).
    pub import_table_description: ImportTableDescription,
}

/// Reads the description called `arn` (field `field` of the request).
fn describe<T: Described>(db: &Database, arn: &str, field: &str) -> Result<T> {
    check_arn(arn, field, TRANSFER_ARN_CHARS_MIN)?;
    transfers::read(&db.inner.engine, arn)?.ok_or_else(|| T::KIND.not_found(arn))
}

impl DescribeExport {
    /// Runs the request; `ExportNotFound` when no export has the ARN.
    pub fn send(self) -> Result<DescribeExportOutput> {
        Ok(DescribeExportOutput {
            export_description: describe(&self.db, &self.export_arn, "exportArn")?,
        })
    }
}

impl DescribeImport {
    /// Runs the request; `ImportNotFound` when no import has the ARN.
    pub fn send(self) -> Result<DescribeImportOutput> {
        Ok(DescribeImportOutput {
            import_table_description: describe(&self.db, &self.import_arn, "importArn")?,
        })
    }
}

/// One line of `list_exports`.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportSummary {
    /// The export's ARN.
    pub export_arn: String,
    /// In progress, completed or failed.
    pub export_status: ExportStatus,
    /// Always a full export.
    pub export_type: ExportType,
}

/// One line of `list_imports`.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportSummary {
    /// The import's ARN.
    pub import_arn: String,
    /// In progress, completed or failed.
    pub import_status: ImportStatus,
    /// The ARN of the table it creates.
    pub table_arn: String,
    /// The source bucket.
    pub s3_bucket: String,
    /// The source key prefix.
    pub s3_key_prefix: Option<String>,
    /// The format read.
    pub input_format: InputFormat,
    /// When it began.
    pub start_time: SystemTime,
    /// When it ended (absent while in progress).
    pub end_time: Option<SystemTime>,
}

/// A `list_exports` request: newest first (reverse order of ARN).
#[derive(Debug, Clone)]
#[must_use = "a request does nothing until `send` is called"]
pub struct ListExports {
    db: Database,
    table_arn: Option<String>,
    max_results: Option<i32>,
    next_token: Option<String>,
}

/// What `list_exports` returns.
#[derive(Debug, Clone, PartialEq)]
pub struct ListExportsOutput {
    /// One page of exports.
    pub export_summaries: Vec<ExportSummary>,
    /// Present when more exports follow: pass it to `next_token`.
    pub next_token: Option<String>,
}

/// A `list_imports` request: newest first (reverse order of ARN).
#[derive(Debug, Clone)]
#[must_use = "a request does nothing until `send` is called"]
pub struct ListImports {
    db: Database,
    table_arn: Option<String>,
    page_size: Option<i32>,
    next_token: Option<String>,
}

/// What `list_imports` returns.
#[derive(Debug, Clone, PartialEq)]
pub struct ListImportsOutput {
    /// One page of imports.
    pub import_summary_list: Vec<ImportSummary>,
    /// Present when more imports follow: pass it to `next_token`.
    pub next_token: Option<String>,
}

/// One page of `T` after the request's arguments are checked.
fn list<T: Described>(
    db: &Database,
    table_arn: Option<&str>,
    (size, size_field, size_max): (Option<i32>, &str, i32),
    token: Option<&str>,
) -> Result<(Vec<T>, Option<String>)> {
    if let Some(table_arn) = table_arn {
        check_arn(table_arn, "tableArn", TABLE_ARN_CHARS_MIN)?;
    }
    let limit = check_page_size(size.unwrap_or(size_max), size_field, size_max)?;
    let before = token.map(parse_next_token).transpose()?;
    let (page, last) = transfers::page(&db.inner.engine, table_arn, before.as_deref(), limit)?;
    Ok((page, last.as_deref().map(next_token)))
}

impl ListExports {
    /// Lists only the exports of the table with this ARN.
    pub fn table_arn(mut self, arn: impl Into<String>) -> Self {
        self.table_arn = Some(arn.into());
        self
    }

    /// The most exports per page (1–25; default 25).
    pub fn max_results(mut self, max: i32) -> Self {
        self.max_results = Some(max);
        self
    }

    /// Continues after the page that returned `token`.
    pub fn next_token(mut self, token: impl Into<String>) -> Self {
        self.next_token = Some(token.into());
        self
    }

    /// Runs the request.
    pub fn send(self) -> Result<ListExportsOutput> {
        let (page, next_token) = list::<ExportDescription>(
            &self.db,
            self.table_arn.as_deref(),
            (self.max_results, "maxResults", LIST_EXPORTS_MAX_RESULTS),
            self.next_token.as_deref(),
        )?;
        let export_summaries = page
            .into_iter()
            .map(|d| ExportSummary {
                export_arn: d.export_arn,
                export_status: d.export_status,
                export_type: d.export_type,
            })
            .collect();
        Ok(ListExportsOutput {
            export_summaries,
            next_token,
        })
    }
}

impl ListImports {
    /// Lists only the imports into the table with this ARN.
    pub fn table_arn(mut self, arn: impl Into<String>) -> Self {
        self.table_arn = Some(arn.into());
        self
    }

    /// The most imports per page (1–25; default 25).
    pub fn page_size(mut self, size: i32) -> Self {
        self.page_size = Some(size);
        self
    }

    /// Continues after the page that returned `token`.
    pub fn next_token(mut self, token: impl Into<String>) -> Self {
        self.next_token = Some(token.into());
        self
    }

    /// Runs the request.
    pub fn send(self) -> Result<ListImportsOutput> {
        let (page, next_token) = list::<ImportTableDescription>(
            &self.db,
            self.table_arn.as_deref(),
            (self.page_size, "pageSize", LIST_IMPORTS_PAGE_SIZE_MAX),
            self.next_token.as_deref(),
        )?;
        let import_summary_list = page
            .into_iter()
            .map(|d| ImportSummary {
                import_arn: d.import_arn,
                import_status: d.import_status,
                table_arn: d.table_arn,
                s3_bucket: d.s3_bucket,
                s3_key_prefix: d.s3_key_prefix,
                input_format: d.input_format,
                start_time: d.start_time,
                end_time: d.end_time,
            })
            .collect();
        Ok(ListImportsOutput {
            import_summary_list,
            next_token,
        })
    }
}

impl Database {
    /// Starts a `DescribeExport` request: the recorded description of the
    /// export with ARN `export_arn` (what
    /// `export_table_to_point_in_time` returned).
    pub fn describe_export(&self, export_arn: impl Into<String>) -> DescribeExport {
        DescribeExport {
            db: self.clone(),
            export_arn: export_arn.into(),
        }
    }

    /// Starts a `ListExports` request.
    pub fn list_exports(&self) -> ListExports {
        ListExports {
            db: self.clone(),
            table_arn: None,
            max_results: None,
            next_token: None,
        }
    }

    /// Starts a `DescribeImport` request: the recorded description of the
    /// import with ARN `import_arn` (what `import_table` returned).
    pub fn describe_import(&self, import_arn: impl Into<String>) -> DescribeImport {
        DescribeImport {
            db: self.clone(),
            import_arn: import_arn.into(),
        }
    }

    /// Starts a `ListImports` request.
    pub fn list_imports(&self) -> ListImports {
        ListImports {
            db: self.clone(),
            table_arn: None,
            page_size: None,
            next_token: None,
        }
    }
}
