//! The open file descriptors of a process, as `/proc/PID/fd` shows them:
//! to check that the agent lets go of deleted files once they are drained.

use std::path::{Path, PathBuf};

/// The targets of the process's open descriptors (`/proc/PID/fd/*`); a
/// deleted file shows as `PATH (deleted)`. Empty if the process is gone.
pub fn open_files(pid: u32) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
        .collect()
}

/// The descriptors of `pid` that point at deleted files under `dir`.
pub fn deleted_files_under(pid: u32, dir: &Path) -> Vec<PathBuf> {
    open_files(pid)
        .into_iter()
        .filter(|target| {
            target.starts_with(dir) && target.to_string_lossy().ends_with(" (deleted)")
        })
        .collect()
}
