//! `loghound search`: prints matching lines, newest first.

use std::io::Write;

use anyhow::{bail, Context};
use serde::Deserialize;

/// What to search.
#[derive(Debug, Clone)]
pub struct SearchArgs {
    /// Server base URL.
    pub server: String,
    /// A token with the `read` scope.
    pub token: String,
    /// The query.
    pub query: String,
    /// Lower time bound, as the API takes it.
    pub from: Option<String>,
    /// Upper time bound.
    pub to: Option<String>,
    /// Most lines to print.
    pub limit: usize,
}

#[derive(Debug, Deserialize)]
struct Page {
    hits: Vec<Hit>,
    count: u64,
    cursor: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Hit {
    timestamp: String,
    host: String,
    source: String,
    message: String,
}

#[derive(Debug, Deserialize)]
struct ErrorBody {
    error: String,
}

/// Runs the search and prints `TIMESTAMP HOST SOURCE MESSAGE` lines to
/// stdout; the total count goes to stderr.
pub fn run(args: &SearchArgs) -> anyhow::Result<()> {
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(std::time::Duration::from_secs(60)))
        .build()
        .new_agent();
    let url = format!("{}/api/v1/search", args.server.trim_end_matches('/'));
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut printed = 0usize;
    let mut cursor: Option<String> = None;
    let mut total = 0;
    while printed < args.limit {
        let page_size = (args.limit - printed).min(crate::index::search::MAX_LIMIT);
        let mut request = agent
            .get(&url)
            .header("Authorization", &format!("Bearer {}", args.token))
            .query("q", &args.query)
            .query("limit", page_size.to_string());
        for (name, value) in [("from", &args.from), ("to", &args.to), ("cursor", &cursor)] {
            if let Some(value) = value {
                request = request.query(name, value);
            }
        }
        let mut response = request
            .call()
            .with_context(|| format!("cannot reach {}", args.server))?;
        let status = response.status();
        if !status.is_success() {
            let text = response.body_mut().read_to_string().unwrap_or_default();
            let message = serde_json::from_str::<ErrorBody>(&text)
                .map(|b| b.error)
                .unwrap_or(text);
            bail!("server answered {status}: {message}");
        }
        let page: Page = response
            .body_mut()
            .read_json()
            .context("server sent an unreadable answer")?;
        total = page.count;
        for hit in &page.hits {
            writeln!(
                out,
                "{} {} {} {}",
                hit.timestamp, hit.host, hit.source, hit.message
            )?;
        }
        printed += page.hits.len();
        match page.cursor {
            Some(next) if !page.hits.is_empty() => cursor = Some(next),
            _ => break,
        }
    }
    out.flush()?;
    eprintln!("{printed} of {total} matching lines");
    Ok(())
}
