//! `loghound-agent status`: what the checkpoints say, how far behind each
//! file is, and the last errors the running agent recorded
//! (`status_file.rs`).

use std::io::Write;
use std::path::Path;

use anyhow::Context;

use crate::checkpoint_file::{read_records, CHECKPOINTS_FILE};

/// Prints one line per checkpointed file to `out`.
pub(crate) fn print(state_dir: &Path, out: &mut impl Write) -> anyhow::Result<()> {
    let mut records = read_records(&state_dir.join(CHECKPOINTS_FILE))?;
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
        let size = std::fs::metadata(&record.path)
            .ok()
            .filter(|m| {
                use std::os::unix::fs::MetadataExt;
                m.dev() == record.dev && m.ino() == record.inode
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
            record.file_id,
            record.offset,
            size_text,
            lag_text,
            last_error
        )
        .context("cannot write status")?;
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
    let spool = crate::spool::on_disk(state_dir).context("cannot read the spool")?;
    writeln!(
        out,
        "spool: {} bytes, {} batches",
        spool.bytes, spool.num_unsent
    )?;
    Ok(())
}
