//! `loghound-agent status`: what the checkpoints say, how far behind each
//! file is, and the last errors the running agent recorded
//! (`status_file.rs`).

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::pipeline::checkpoint_file::{read_checkpoints, CheckpointError, CHECKPOINTS_FILE};
use crate::sources::file::checkpoints::FileRecord;
use crate::status_file::StatusFileError;

/// Why `status` cannot say it all.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    /// The checkpoints cannot be read.
    #[error(transparent)]
    Checkpoints(#[from] CheckpointError),
    /// `status.json` cannot be read.
    #[error(transparent)]
    StatusFile(#[from] StatusFileError),
    /// The spool cannot be read.
    #[error("cannot read the spool: {0}")]
    Spool(#[source] std::io::Error),
    /// The output cannot be written.
    #[error("cannot write status: {0}")]
    Output(#[from] std::io::Error),
}

/// One checkpointed stream as `status` shows it.
struct Row {
    path: PathBuf,
    stream_id: loghound_shared::FileId,
    offset: loghound_shared::ByteOffset,
    /// Device and inode, for a file stream.
    file: Option<(u64, u64)>,
}

/// Prints one line per checkpointed stream to `out`.
pub fn print(state_dir: &Path, out: &mut impl Write) -> Result<(), StatusError> {
    let mut records: Vec<Row> = read_checkpoints(&state_dir.join(CHECKPOINTS_FILE))?
        .iter()
        // An ended stream (a truncated file's earlier content) is kept
        // only for its copies; its file now holds another stream.
        .filter(|checkpoint| !FileRecord::of(checkpoint).is_some_and(|r| r.is_ended()))
        // A journald input's resume cursor carries no events; its errors
        // are listed under the input's name below.
        .filter(|checkpoint| !crate::sources::journald::is_resume_record(checkpoint))
        .map(|checkpoint| match FileRecord::of(checkpoint) {
            Some(record) => Row {
                path: record.state.path,
                stream_id: record.file_id,
                offset: record.offset,
                file: Some((record.state.dev, record.state.inode)),
            },
            None => Row {
                path: PathBuf::from(&checkpoint.label),
                stream_id: checkpoint.stream_id.clone(),
                offset: checkpoint.offset,
                file: None,
            },
        })
        .collect();
    records.sort_by(|a, b| a.path.cmp(&b.path));
    let mut errors = crate::status_file::load(state_dir)?;
    let error_text = |note: &crate::metrics::ErrorNote| {
        format!(
            "{} {}",
            crate::status_file::format_time(note.at_ms),
            note.message
        )
    };
    writeln!(
        out,
        "{:<48} {:<32} {:>12} {:>12} {:>12}  LAST ERROR",
        "PATH", "FILE ID", "ACKED", "SIZE", "LAG"
    )?;
    for record in &records {
        // The size only means something if the path still holds that file.
        let size = record
            .file
            .and_then(|(dev, inode)| {
                std::fs::metadata(&record.path).ok().filter(|m| {
                    use std::os::unix::fs::MetadataExt;
                    m.dev() == dev && m.ino() == inode
                })
            })
            .map(|m| m.len());
        let (size_text, lag_text) = match size {
            Some(size) => (
                size.to_string(),
                size.saturating_sub(record.offset.0).to_string(),
            ),
            None => ("-".to_string(), "-".to_string()),
        };
        let last_error = errors
            .file_errors
            .remove(&record.path)
            .map_or_else(|| "-".to_string(), |note| error_text(&note));
        writeln!(
            out,
            "{:<48} {:<32} {:>12} {:>12} {:>12}  {}",
            record.path.display(),
            record.stream_id,
            record.offset,
            size_text,
            lag_text,
            last_error
        )?;
    }
    // Files with an error and no checkpoint (never opened, for instance).
    for (path, note) in &errors.file_errors {
        writeln!(
            out,
            "{:<48} {:<32} {:>12} {:>12} {:>12}  {}",
            path.display(),
            "-",
            "-",
            "-",
            "-",
            error_text(note)
        )?;
    }
    match &errors.last_error {
        Some(note) => writeln!(out, "last error: {}", error_text(note))?,
        None => writeln!(out, "last error: none")?,
    }
    if records.is_empty() {
        writeln!(out, "no checkpoints in {}", state_dir.display())?;
    }
    let spool = crate::pipeline::spool::on_disk(state_dir).map_err(StatusError::Spool)?;
    writeln!(
        out,
        "spool: {} bytes, {} batches",
        spool.bytes, spool.num_unsent
    )?;
    Ok(())
}
