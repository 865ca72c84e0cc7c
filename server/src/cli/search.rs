//! `loghound search`: prints matching lines, newest first, as text or as
//! the API's JSON hits, or only their count.

use std::io::Write;
use std::path::PathBuf;

use loghound_shared::api::{Hit, SearchResponse, MAX_SEARCH_LIMIT};

use super::client::{agent, get_json};

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

fn print_hit(out: &mut impl Write, hit: &Hit, json: bool) -> anyhow::Result<()> {
    if json {
        writeln!(out, "{}", serde_json::to_string(hit)?)?;
    } else {
        writeln!(
            out,
            "{} {} {} {}",
            hit.timestamp, hit.host, hit.source, hit.message
        )?;
    }
    Ok(())
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
        let page: SearchResponse = get_json(
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
        let page_size = (args.limit - printed).min(MAX_SEARCH_LIMIT).to_string();
        let params = [
            ("q", Some(args.query.as_str())),
            ("limit", Some(page_size.as_str())),
            ("cursor", cursor.as_deref()),
        ];
        let page: SearchResponse = get_json(
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
