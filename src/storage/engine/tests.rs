//! Engine behaviour through its public API.
