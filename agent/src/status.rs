//! `loghound-agent status`: what the checkpoints say, and how far behind
//! each file is.

use std::io::Write;
use std::path::Path;

use anyhow::Context;

use crate::checkpoint_file::{read_records, CHECKPOINTS_FILE};

/// Prints one line per checkpointed file to `out`.
pub(crate) fn print(state_dir: &Path, out: &mut impl Write) -> anyhow::Result<()> {
    let mut records = read_records(&state_dir.join(CHECKPOINTS_FILE))?;
    records.sort_by(|a, b| a.path.cmp(&b.path));
    writeln!(
        out,
        "{:<48} {:<32} {:>12} {:>12} {:>12}",
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
        writeln!(
            out,
            "{:<48} {:<32} {:>12} {:>12} {:>12}",
            record.path.display(),
            record.file_id,
            record.offset,
            size_text,
            lag_text
        )
        .context("cannot write status")?;
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
