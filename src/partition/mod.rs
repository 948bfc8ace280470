//! Consistent-hash partitions: key -> token -> partition, splits, and the
//! ring that places token ranges on nodes. Built in a later issue.
