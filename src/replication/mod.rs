//! Log shipping: synchronous standby, asynchronous read replicas and
//! multi-active replication. Built in a later issue.

pub mod multi;
