//! Replacing a small state file atomically: the new content goes to a temp
//! file that is `sync_all`ed, renamed over the old one, and the directory
//! is fsynced so the rename itself survives a crash. Used for the
//! checkpoints, the agent id and `status.json`.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// A write that did not complete; the previous file is still in place.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {source}")]
pub struct AtomicWriteError {
    path: PathBuf,
    #[source]
    source: io::Error,
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> AtomicWriteError + '_ {
    move |source| AtomicWriteError {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `body` to `temp`, syncs it, renames it over `target` and syncs
/// the directory.
pub(crate) fn write_atomically(
    temp: &Path,
    target: &Path,
    body: &[u8],
) -> Result<(), AtomicWriteError> {
    let mut file = File::create(temp).map_err(io_error(temp))?;
    file.write_all(body).map_err(io_error(temp))?;
    file.sync_all().map_err(io_error(temp))?;
    drop(file);
    fs::rename(temp, target).map_err(io_error(target))?;
    let dir = target.parent().unwrap_or(Path::new("."));
    File::open(dir)
        .and_then(|dir| dir.sync_all())
        .map_err(io_error(dir))
}
