//! The web UI: plain HTML, CSS and JavaScript modules from `server/ui/`,
//! compiled into the binary, so building and running the server needs no
//! Node and the UI always matches the API it was built with.
//!
//! Every asset carries an `ETag` (a digest of its bytes) and
//! `Cache-Control: no-cache`: browsers keep their copy and revalidate it,
//! getting `304 Not Modified` until the binary changes. The page itself
//! carries a strict Content-Security-Policy: scripts, styles and
//! connections only from this origin, no inline script or style, no
//! framing.

use std::collections::HashMap;
use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::AppError;

/// The Content-Security-Policy of the page.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; \
     base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Paths of the UI's pages; each answers the same HTML, whose script
/// reads the path.
pub const PAGE_PATHS: &[&str] = &["/", "/saved", "/alerts"];

macro_rules! assets {
    ($($path:literal => $content_type:literal),* $(,)?) => {
        &[$((
            $path,
            $content_type,
            include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/ui/", $path)) as &[u8],
        )),*]
    };
}

/// Every file of `server/ui/`: path under `/assets/`, content type, bytes.
const FILES: &[(&str, &str, &[u8])] = assets! {
    "index.html" => "text/html; charset=utf-8",
    "style.css" => "text/css; charset=utf-8",
    "favicon.svg" => "image/svg+xml",
    "js/alerts.js" => "text/javascript; charset=utf-8",
    "js/api.js" => "text/javascript; charset=utf-8",
    "js/app.js" => "text/javascript; charset=utf-8",
    "js/context.js" => "text/javascript; charset=utf-8",
    "js/dom.js" => "text/javascript; charset=utf-8",
    "js/fields.js" => "text/javascript; charset=utf-8",
    "js/histogram.js" => "text/javascript; charset=utf-8",
    "js/range.js" => "text/javascript; charset=utf-8",
    "js/results.js" => "text/javascript; charset=utf-8",
    "js/saved.js" => "text/javascript; charset=utf-8",
    "js/search.js" => "text/javascript; charset=utf-8",
    "js/signin.js" => "text/javascript; charset=utf-8",
    "js/tail.js" => "text/javascript; charset=utf-8",
    "js/text.js" => "text/javascript; charset=utf-8",
};

struct Asset {
    content_type: &'static str,
    bytes: &'static [u8],
    etag: String,
}

static ASSETS: LazyLock<HashMap<&'static str, Asset>> = LazyLock::new(|| {
    FILES
        .iter()
        .map(|&(path, content_type, bytes)| {
            let digest = hex::encode(Sha256::digest(bytes));
            let asset = Asset {
                content_type,
                bytes,
                etag: format!("\"{}\"", &digest[..20]),
            };
            (path, asset)
        })
        .collect()
});

fn serve(asset: &Asset, request_headers: &HeaderMap, extra: &[(HeaderName, &str)]) -> Response {
    let mut headers = HeaderMap::new();
    let mut set = |name: HeaderName, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    };
    set(header::ETAG, &asset.etag);
    set(header::CACHE_CONTROL, "no-cache");
    set(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    for (name, value) in extra {
        set(name.clone(), value);
    }
    let fresh = request_headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|tag| tag.trim() == asset.etag || tag.trim() == "*");
    if fresh {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    set(header::CONTENT_TYPE, asset.content_type);
    (headers, asset.bytes).into_response()
}

/// `GET /`, `/saved`, `/alerts`: the page.
pub(super) async fn page(headers: HeaderMap) -> Result<Response, AppError> {
    let asset = ASSETS
        .get("index.html")
        .ok_or_else(|| AppError::internal("index.html is not embedded"))?;
    Ok(serve(
        asset,
        &headers,
        &[
            (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
    ))
}

/// `GET /assets/{*path}`.
pub(super) async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Response {
    match ASSETS.get(path.as_str()) {
        Some(asset) if path != "index.html" => serve(asset, &headers, &[]),
        _ => AppError::new(StatusCode::NOT_FOUND, format!("no asset {path:?}")).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn files_on_disk(dir: &std::path::Path, prefix: &str, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
            if entry.file_type().unwrap().is_dir() {
                files_on_disk(&entry.path(), &format!("{name}/"), out);
            } else {
                out.push(name);
            }
        }
    }

    #[test]
    fn every_file_of_the_ui_folder_is_embedded() {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("ui");
        let mut on_disk = Vec::new();
        files_on_disk(&dir, "", &mut on_disk);
        on_disk.sort();
        let mut embedded: Vec<String> = FILES.iter().map(|f| f.0.to_string()).collect();
        embedded.sort();
        assert_eq!(
            on_disk, embedded,
            "server/ui/ and FILES in http/ui.rs differ"
        );
    }

    #[test]
    fn etags_differ_between_files_and_revalidation_answers_304() {
        let app = &ASSETS["js/app.js"];
        assert_ne!(app.etag, ASSETS["style.css"].etag);
        let mut headers = HeaderMap::new();
        headers.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_str(&app.etag).unwrap(),
        );
        assert_eq!(serve(app, &headers, &[]).status(), StatusCode::NOT_MODIFIED);
        assert_eq!(serve(app, &HeaderMap::new(), &[]).status(), StatusCode::OK);
    }
}
