//! DynamoDB-style tables: items, expressions, Query/Scan, batches and
//! transactions, on top of the storage engine. Built in a later issue.

pub mod expr;
