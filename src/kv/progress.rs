//! Progress reports of long-running table work (restores, exports,
//! imports): a callback the caller registers, told how far the work has
//! come every [`PROGRESS_EVERY_ITEMS`] items and once at the end.

use std::fmt;
use std::sync::Arc;

/// Items between two progress reports.
pub const PROGRESS_EVERY_ITEMS: u64 = 1024;

/// How far a long-running operation has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Progress {
    /// Items (rows) done so far.
    pub items_done: u64,
    /// Bytes done so far (item sizes; for imports, source bytes read).
    pub bytes_done: u64,
    /// Items to do in all, when known beforehand.
    pub items_total: Option<u64>,
    /// Whether this is the last report (the work has finished).
    pub finished: bool,
}

/// A progress callback.
type Callback = Arc<dyn Fn(&Progress) + Send + Sync>;

/// A registered progress callback.
#[derive(Clone, Default)]
pub(crate) struct OnProgress(Option<Callback>);

impl fmt::Debug for OnProgress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "OnProgress(set)"
        } else {
            "OnProgress(none)"
        })
    }
}

impl OnProgress {
    pub(crate) fn new(callback: impl Fn(&Progress) + Send + Sync + 'static) -> Self {
        Self(Some(Arc::new(callback)))
    }

    /// Counts one more item of `bytes`, reporting every
    /// [`PROGRESS_EVERY_ITEMS`] items.
    pub(crate) fn item(&self, progress: &mut Progress, bytes: u64) {
        progress.items_done += 1;
        progress.bytes_done += bytes;
        if progress.items_done.is_multiple_of(PROGRESS_EVERY_ITEMS) {
            self.report(progress);
        }
    }

    /// Reports the end of the work.
    pub(crate) fn finish(&self, progress: &mut Progress) {
        progress.finished = true;
        self.report(progress);
    }

    fn report(&self, progress: &Progress) {
        if let Some(callback) = &self.0 {
            callback(progress);
        }
    }
}
