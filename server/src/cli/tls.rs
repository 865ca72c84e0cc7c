//! How the client commands trust an HTTPS server: Mozilla's roots (the
//! `webpki-roots` bundle compiled in) by default, or only the
//! certificates of a private CA given with `--ca` / `LOGHOUND_CA`.

use std::path::Path;

use anyhow::{bail, Context};

/// The TLS settings for a client: `ca_file` (PEM, one or more
/// certificates) replaces the default roots when given.
pub fn client_tls(ca_file: Option<&Path>) -> anyhow::Result<ureq::tls::TlsConfig> {
    let builder = ureq::tls::TlsConfig::builder();
    let Some(path) = ca_file else {
        return Ok(builder.build());
    };
    let bytes =
        std::fs::read(path).with_context(|| format!("cannot read CA file {}", path.display()))?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&bytes) {
        match item.with_context(|| format!("CA file {}: not valid PEM", path.display()))? {
            ureq::tls::PemItem::Certificate(cert) => certs.push(cert),
            // A private key next to the certificate is not a root.
            _ => continue,
        }
    }
    if certs.is_empty() {
        bail!(
            "CA file {}: no `BEGIN CERTIFICATE` block found",
            path.display()
        );
    }
    Ok(builder
        .root_certs(ureq::tls::RootCerts::new_with_certs(&certs))
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_or_empty_ca_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let error = format!("{:#}", client_tls(Some(&missing)).unwrap_err());
        assert!(error.contains("missing.pem"), "{error}");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let error = format!("{:#}", client_tls(Some(&empty)).unwrap_err());
        assert!(
            error.contains("empty.pem") && error.contains("BEGIN CERTIFICATE"),
            "{error}"
        );
        assert!(client_tls(None).is_ok());
    }
}
