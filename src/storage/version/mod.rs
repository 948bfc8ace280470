//! The version set: which segment files are live, in which level.
//!
//! A [`Version`] is an immutable snapshot of the live files per level,
//! shared by `Arc` with every reader that uses it; a [`VersionEdit`] turns
//! one version into the next; the [`VersionSet`] owns the current version
//! and makes each edit durable through the manifest before installing it.
//! [`LiveFile`] handles count references per file so the engine deletes a
//! removed file only when no version or reader can reach it any more.
//!
//! This module decides nothing about when or what to compact (that is
//! `compaction`) and never reads segment contents.

// Nothing uses this module until the engine is assembled; the re-exports
// below are its interface.
#![cfg_attr(not(test), allow(dead_code, unused_imports))]

mod edit;
mod file;
mod levels;
mod set;
#[cfg(test)]
mod set_tests;
#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;

pub(crate) use edit::VersionEdit;
pub(crate) use file::{FileGuard, FileMeta, LiveFile, ObsoleteFiles};
pub(crate) use levels::{LEVEL_COUNT, Version, check_file_set, level_index, level_number};
pub(crate) use set::VersionSet;
