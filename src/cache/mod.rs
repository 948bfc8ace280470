//! A DAX-style item and query cache over kv tables, and a byte-bounded
//! concurrent cache. Built in a later issue.
