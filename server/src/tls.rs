//! HTTPS: the server's certificate chain and key, read from PEM files into
//! a rustls acceptor (ring provider; no OpenSSL).
//!
//! Everything is checked at start-up, so a server with a bad file never
//! starts: each error names the file and what is wrong with it.

use std::path::Path;
use std::sync::Arc;

use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use crate::config::{SyslogTlsConfig, TlsConfig};

/// Why the certificate or key cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file cannot be read.
    #[error("cannot read TLS {what} file {path}")]
    Read {
        /// `certificate`, `key` or `client CA`.
        what: &'static str,
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A file is not what it should be.
    #[error("TLS {what} file {path}: {reason}")]
    Invalid {
        /// `certificate`, `key` or `client CA`.
        what: &'static str,
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// rustls refuses the pair (such as a key that is not the
    /// certificate's).
    #[error("TLS certificate {cert} with key {key}: {source}")]
    Pair {
        /// The certificate file.
        cert: String,
        /// The key file.
        key: String,
        /// Why.
        #[source]
        source: rustls::Error,
    },
}

/// Reads the PEM certificate chain in `path`; at least one certificate.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let what = "certificate";
    let bytes = read(what, path)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| invalid(what, path, format!("not valid PEM: {error}")))?;
    if certs.is_empty() {
        return Err(invalid(
            what,
            path,
            "no `BEGIN CERTIFICATE` block found".into(),
        ));
    }
    Ok(certs)
}

/// Reads the first private key in the PEM file `path`.
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let what = "key";
    let bytes = read(what, path)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|error| {
        let reason = match error {
            rustls::pki_types::pem::Error::NoItemsFound => {
                "no private key found (expected a `BEGIN PRIVATE KEY`, `BEGIN RSA PRIVATE KEY` or `BEGIN EC PRIVATE KEY` block)".to_string()
            }
            other => format!("not valid PEM: {other}"),
        };
        invalid(what, path, reason)
    })
}

/// The acceptor for `config`: TLS 1.2 and 1.3, ALPN `http/1.1`.
pub fn acceptor(config: &TlsConfig) -> Result<TlsAcceptor, TlsError> {
    let mut server = server_config(&config.cert, &config.key, None)?;
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(server)))
}

/// The acceptor of a syslog listener (RFC 5425): TLS 1.2 and 1.3, and
/// with `client_ca` only clients whose certificate one of its CAs signed.
pub fn syslog_acceptor(config: &SyslogTlsConfig) -> Result<TlsAcceptor, TlsError> {
    let server = server_config(&config.cert, &config.key, config.client_ca.as_deref())?;
    Ok(TlsAcceptor::from(Arc::new(server)))
}

fn server_config(
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
) -> Result<rustls::ServerConfig, TlsError> {
    let certs = load_certs(cert)?;
    let key_der = load_key(key)?;
    let pair = |source| TlsError::Pair {
        cert: cert.display().to_string(),
        key: key.display().to_string(),
        source,
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(pair)?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let what = "client CA";
            let mut roots = rustls::RootCertStore::empty();
            for ca in load_certs(path).map_err(|e| rename(e, what))? {
                roots
                    .add(ca)
                    .map_err(|error| invalid(what, path, format!("not a usable CA: {error}")))?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .map_err(|error| invalid(what, path, error.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    builder.with_single_cert(certs, key_der).map_err(pair)
}

/// `error` about a certificate file, saying which one it is.
fn rename(error: TlsError, what: &'static str) -> TlsError {
    match error {
        TlsError::Read { path, source, .. } => TlsError::Read { what, path, source },
        TlsError::Invalid { path, reason, .. } => TlsError::Invalid { what, path, reason },
        other => other,
    }
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        what,
        path: path.display().to_string(),
        source,
    })
}

fn invalid(what: &'static str, path: &Path, reason: String) -> TlsError {
    TlsError::Invalid {
        what,
        path: path.display().to_string(),
        reason,
    }
}
