//! Global and local secondary indexes, maintained in the same atomic batch
//! as the base item. Built in a later issue.
