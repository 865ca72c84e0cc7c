//! `loghound search`: prints matching lines, newest first, as text or as
//! the API's JSON hits, or only their count.

use std::io::Write;
use std::path::{Path, PathBuf};

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
    /// Print each hit as the API's JSON object, one per line.
    pub json: bool,
    /// Print only the number of matches.
    pub count_only: bool,
    /// A private CA to trust instead of the default roots.
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
struct Page {
    hits: Vec<serde_json::Value>,
    count: u64,
    cursor: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ErrorBody {
    error: String,
}

/// An HTTP client for the API with the CLI's timeouts; error statuses are
/// answers, not transport errors, so [`get_json`] can show their message.
/// `ca_file` is a private CA to trust (see [`super::tls`]).
pub(crate) fn agent(ca_file: Option<&Path>) -> anyhow::Result<ureq::Agent> {
    Ok(ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(std::time::Duration::from_secs(60)))
        .tls_config(super::tls::client_tls(ca_file)?)
        .build()
        .new_agent())
}

/// `GET server + path` with the token and `params` (`None` values left
/// out); a non-2xx answer becomes an error carrying the server's message.
pub(super) fn get_json<T: serde::de::DeserializeOwned>(
    agent: &ureq::Agent,
    server: &str,
    path: &str,
    token: &str,
    params: &[(&str, Option<&str>)],
) -> anyhow::Result<T> {
    let url = format!("{}{path}", server.trim_end_matches('/'));
    let mut request = agent
        .get(&url)
        .header("Authorization", &format!("Bearer {token}"));
    for (name, value) in params {
        if let Some(value) = value {
            request = request.query(*name, *value);
        }
    }
    let mut response = request
        .call()
        .with_context(|| format!("cannot reach {server}"))?;
    let status = response.status();
    if !status.is_success() {
        let text = response.body_mut().read_to_string().unwrap_or_default();
        let message = serde_json::from_str::<ErrorBody>(&text)
            .map(|b| b.error)
            .unwrap_or(text);
        bail!("server answered {status}: {message}");
    }
    response
        .body_mut()
        .read_json()
        .context("server sent an unreadable answer")
}

fn print_hit(out: &mut impl Write, hit: &serde_json::Value, json: bool) -> std::io::Result<()> {
    if json {
        return writeln!(out, "{hit}");
    }
    let text = |name: &str| hit[name].as_str().unwrap_or_default();
    writeln!(
        out,
        "{} {} {} {}",
        text("timestamp"),
        text("host"),
        text("source"),
        text("message")
    )
}

/// Runs the search and prints `TIMESTAMP HOST SOURCE MESSAGE` lines (or
/// JSON hits) to stdout and the total count to stderr; with `count_only`,
/// prints just the count to stdout.
pub fn run(args: &SearchArgs) -> anyhow::Result<()> {
    let agent = agent(args.ca_file.as_deref())?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let range = [("from", args.from.as_deref()), ("to", args.to.as_deref())];
    if args.count_only {
        let page: Page = get_json(
            &agent,
            &args.server,
            "/api/v1/search",
            &args.token,
            &[
                &range[..],
                &[("q", Some(args.query.as_str())), ("limit", Some("0"))],
            ]
            .concat(),
        )?;
        writeln!(out, "{}", page.count)?;
        return Ok(());
    }
    let mut printed = 0usize;
    let mut cursor: Option<String> = None;
    let mut total = 0;
    while printed < args.limit {
        let page_size = (args.limit - printed)
            .min(crate::index::search::MAX_LIMIT)
            .to_string();
        let params = [
            ("q", Some(args.query.as_str())),
            ("limit", Some(page_size.as_str())),
            ("cursor", cursor.as_deref()),
        ];
        let page: Page = get_json(
            &agent,
            &args.server,
            "/api/v1/search",
            &args.token,
            &[&range[..], &params[..]].concat(),
        )?;
        total = page.count;
        for hit in &page.hits {
            print_hit(&mut out, hit, args.json)?;
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
