//! `loghound histogram`: match counts per time bucket, one `START COUNT`
//! line per bucket, oldest first.

use std::io::Write;

use loghound_shared::api::HistogramResponse;

use super::client::{agent, get_json};

/// What to count.
#[derive(Debug, Clone)]
pub struct HistogramArgs {
    /// Server base URL.
    pub server: String,
    /// A token with the `read` scope.
    pub token: String,
    /// The query.
    pub query: String,
    /// Lower time bound, as the API takes it; open: the oldest match.
    pub from: Option<String>,
    /// Upper time bound; open: the newest match.
    pub to: Option<String>,
    /// Most buckets; the server's default when `None`.
    pub buckets: Option<usize>,
    /// A private CA to trust instead of the default roots.
    pub ca_file: Option<std::path::PathBuf>,
}

/// Prints `START COUNT` lines to stdout and the total and bucket width to
/// stderr.
pub fn run(args: &HistogramArgs) -> anyhow::Result<()> {
    let buckets = args.buckets.map(|n| n.to_string());
    let histogram: HistogramResponse = get_json(
        &agent(args.ca_file.as_deref())?,
        &args.server,
        "/api/v1/histogram",
        &args.token,
        &[
            ("q", Some(args.query.as_str())),
            ("from", args.from.as_deref()),
            ("to", args.to.as_deref()),
            ("buckets", buckets.as_deref()),
        ],
    )?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for bucket in &histogram.buckets {
        writeln!(out, "{} {}", bucket.start, bucket.count)?;
    }
    out.flush()?;
    eprintln!(
        "{} matching lines, {} ms per bucket",
        histogram.count, histogram.interval_ms
    );
    Ok(())
}
