//! What the client commands share: an HTTP agent with the CLI's timeouts
//! and TLS trust, a JSON `GET`, and the server's error body turned into a
//! message. Every request and answer body is a type of
//! `loghound_shared::api`.

use std::path::Path;

use anyhow::{bail, Context};
use loghound_shared::api::ErrorBody;

/// An HTTP client for the API with the CLI's timeouts; error statuses are
/// answers, not transport errors, so [`get_json`] can show their message.
/// `ca_file` is a private CA to trust (see [`super::tls`]).
pub(super) fn agent(ca_file: Option<&Path>) -> anyhow::Result<ureq::Agent> {
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
        bail!("server answered {status}: {}", error_message(text));
    }
    response
        .body_mut()
        .read_json()
        .context("server sent an unreadable answer")
}

/// The message of an error answer's body: its `error`, or the whole text
/// when it is not an [`ErrorBody`] (a proxy's page, say).
pub(super) fn error_message(body_text: String) -> String {
    serde_json::from_str::<ErrorBody>(&body_text)
        .map(|body| body.error)
        .unwrap_or(body_text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_field_is_the_message_and_other_bodies_pass_through() {
        let body = r#"{"error":"invalid query: unclosed quote at character 6","position":6}"#;
        assert_eq!(
            error_message(body.to_string()),
            "invalid query: unclosed quote at character 6"
        );
        assert_eq!(error_message("Bad Gateway".into()), "Bad Gateway");
    }
}
