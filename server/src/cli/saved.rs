//! `loghound search save|list|rm`: saved searches on a running server.

use anyhow::{bail, Context};
use loghound_shared::api::{SavedSearch, SavedSearchInput, SavedSearchList};

use super::client::{agent, error_message};

/// How to reach the server.
#[derive(Debug, Clone)]
pub struct Server {
    /// Base URL.
    pub url: String,
    /// A token: `read` lists, `admin` saves and removes.
    pub token: String,
    /// A private CA to trust instead of the default roots.
    pub ca_file: Option<std::path::PathBuf>,
}

/// Sends a request; a non-2xx answer becomes an error with the server's
/// message. Returns the answer's body text.
fn call(
    server: &Server,
    method: &str,
    path: &str,
    body: Option<&SavedSearchInput>,
) -> anyhow::Result<String> {
    let url = format!("{}{path}", server.url.trim_end_matches('/'));
    let auth = format!("Bearer {}", server.token);
    let agent = agent(server.ca_file.as_deref())?;
    let result = match (method, body) {
        ("POST", Some(body)) => agent
            .post(&url)
            .header("Authorization", &auth)
            .send_json(body),
        ("DELETE", _) => agent.delete(&url).header("Authorization", &auth).call(),
        _ => agent.get(&url).header("Authorization", &auth).call(),
    };
    let mut response = result.with_context(|| format!("cannot reach {}", server.url))?;
    let status = response.status();
    let text = response.body_mut().read_to_string().unwrap_or_default();
    if !status.is_success() {
        bail!("server answered {status}: {}", error_message(text));
    }
    Ok(text)
}

fn list_all(server: &Server) -> anyhow::Result<Vec<SavedSearch>> {
    let text = call(server, "GET", "/api/v1/searches", None)?;
    let list: SavedSearchList =
        serde_json::from_str(&text).context("server sent an unreadable answer")?;
    Ok(list.searches)
}

/// Saves `query` as `name`; prints the new id.
pub fn save(server: &Server, name: &str, query: &str, range: Option<&str>) -> anyhow::Result<()> {
    let body = SavedSearchInput {
        name: name.to_string(),
        query: query.to_string(),
        range: range.map(str::to_string),
    };
    let text = call(server, "POST", "/api/v1/searches", Some(&body))?;
    let saved: SavedSearch =
        serde_json::from_str(&text).context("server sent an unreadable answer")?;
    println!("{}", saved.id);
    eprintln!("saved search {} as {:?}", saved.id, saved.name);
    Ok(())
}

/// Prints `ID  NAME  RANGE  QUERY` lines.
pub fn list(server: &Server) -> anyhow::Result<()> {
    let searches = list_all(server)?;
    println!("{:>4}  {:<24}  {:<6}  QUERY", "ID", "NAME", "RANGE");
    for s in searches {
        println!(
            "{:>4}  {:<24}  {:<6}  {}",
            s.id,
            s.name,
            s.range.as_deref().unwrap_or("-"),
            s.query
        );
    }
    Ok(())
}

/// Removes the search named `which` (or with that id).
pub fn remove(server: &Server, which: &str) -> anyhow::Result<()> {
    let searches = list_all(server)?;
    let found = searches.iter().find(|s| s.name == which).or_else(|| {
        which
            .parse::<i64>()
            .ok()
            .and_then(|id| searches.iter().find(|s| s.id == id))
    });
    let Some(search) = found else {
        bail!("no saved search named {which:?}");
    };
    call(
        server,
        "DELETE",
        &format!("/api/v1/searches/{}", search.id),
        None,
    )?;
    eprintln!("removed saved search {} ({:?})", search.id, search.name);
    Ok(())
}
