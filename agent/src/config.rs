//! The agent's configuration: `agent.toml`, overridden by command-line flags,
//! validated into [`Settings`] the rest of the agent can trust.
//!
//! Errors name the file and the key (`agent.toml: batch_max_bytes: …`);
//! parse errors carry toml's line and column.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::discovery;

/// Why the configuration is unusable.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConfigError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Parse {
        path: PathBuf,
        #[source]
        source: toml::de::Error,
    },
    #[error("{origin}: {key}: {reason}")]
    Invalid {
        /// The config file, or "command line".
        origin: String,
        key: String,
        reason: String,
    },
}

/// `agent.toml` as written by the operator.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConfigFile {
    /// Format version of this file; only `1` exists.
    #[serde(default)]
    pub(crate) version: Option<u32>,
    /// Server base URLs (`https://logs.example.com:8443`), tried in order.
    #[serde(default)]
    pub(crate) servers: Vec<String>,
    /// Ingest token. Prefer the `LOGHOUND_TOKEN` environment variable.
    #[serde(default)]
    pub(crate) token: Option<String>,
    /// Directory for the agent id and checkpoints.
    #[serde(default)]
    pub(crate) state_dir: Option<PathBuf>,
    /// Host name sent with every line; the machine's host name by default.
    #[serde(default)]
    pub(crate) host: Option<String>,
    /// Globs of files to follow (`/var/log/**/*.log`), tagged with `tags`.
    #[serde(default)]
    pub(crate) paths: Vec<String>,
    /// Tags for the files matched by the top-level `paths`.
    #[serde(default)]
    pub(crate) tags: BTreeMap<String, String>,
    /// How the server parses the lines of the top-level `paths`: `auto`
    /// (default), `json`, `apache`, `syslog` or `plain`.
    #[serde(default)]
    pub(crate) format: Option<String>,
    /// Globs of files never to follow; `*.gz` is always excluded. A glob
    /// without `/` matches the file name, one with `/` the whole path.
    #[serde(default)]
    pub(crate) exclude: Vec<String>,
    /// More groups of globs, each with its own tags.
    #[serde(default)]
    pub(crate) inputs: Vec<InputConfig>,
    /// Flush a batch once its uncompressed NDJSON reaches this size.
    #[serde(default = "default_batch_max_bytes")]
    pub(crate) batch_max_bytes: usize,
    /// Flush a batch once its oldest line is this old.
    #[serde(default = "default_batch_max_age_ms")]
    pub(crate) batch_max_age_ms: u64,
    /// Batches being sent at the same time.
    #[serde(default = "default_max_in_flight")]
    pub(crate) max_in_flight: usize,
    /// Period of the safety-net rescan of globs and files.
    #[serde(default = "default_rescan_interval_ms")]
    pub(crate) rescan_interval_ms: u64,
    /// Longer lines are cut to this many bytes and marked `truncated`.
    #[serde(default = "default_max_line_bytes")]
    pub(crate) max_line_bytes: usize,
    /// On SIGTERM/SIGINT, how long to wait for in-flight batches.
    #[serde(default = "default_shutdown_timeout_ms")]
    pub(crate) shutdown_timeout_ms: u64,
    /// zstd compression level of batches (1–19).
    #[serde(default = "default_zstd_level")]
    pub(crate) zstd_level: i32,
    /// PEM file of the CA (one or more certificates) that signed the
    /// servers' certificates; trusted instead of the built-in public roots.
    #[serde(default)]
    pub(crate) tls_ca: Option<PathBuf>,
}

/// One `[[inputs]]` table.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct InputConfig {
    /// Globs of files to follow.
    pub(crate) paths: Vec<String>,
    /// Tags added to every line of these files, such as `app = "api"`.
    #[serde(default)]
    pub(crate) tags: BTreeMap<String, String>,
    /// How the server parses these files' lines: `auto` (default), `json`,
    /// `apache`, `syslog` or `plain`.
    #[serde(default)]
    pub(crate) format: Option<String>,
}

const fn default_batch_max_bytes() -> usize {
    1 << 20
}
const fn default_batch_max_age_ms() -> u64 {
    200
}
const fn default_max_in_flight() -> usize {
    4
}
const fn default_rescan_interval_ms() -> u64 {
    2000
}
const fn default_max_line_bytes() -> usize {
    256 << 10
}
const fn default_shutdown_timeout_ms() -> u64 {
    5000
}
const fn default_zstd_level() -> i32 {
    3
}

/// Where the state lives when nothing says otherwise.
pub(crate) const DEFAULT_STATE_DIR: &str = "/var/lib/loghound-agent";

/// Values given on the command line; each one set overrides the file.
#[derive(Debug, Default)]
pub(crate) struct Overrides {
    pub(crate) servers: Vec<String>,
    pub(crate) token: Option<String>,
    pub(crate) state_dir: Option<PathBuf>,
    pub(crate) host: Option<String>,
    pub(crate) paths: Vec<String>,
    pub(crate) exclude: Vec<String>,
    pub(crate) batch_max_bytes: Option<usize>,
    pub(crate) batch_max_age_ms: Option<u64>,
    pub(crate) max_in_flight: Option<usize>,
    pub(crate) rescan_interval_ms: Option<u64>,
    pub(crate) tls_ca: Option<PathBuf>,
}

/// A group of globs sharing tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Input {
    pub(crate) globs: Vec<String>,
    pub(crate) tags: BTreeMap<String, String>,
    pub(crate) format: Option<String>,
}

/// Format hints the server knows.
const FORMATS: [&str; 5] = ["auto", "json", "apache", "syslog", "plain"];

/// The validated configuration.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) servers: Vec<String>,
    pub(crate) token: String,
    pub(crate) state_dir: PathBuf,
    pub(crate) host: Option<String>,
    pub(crate) inputs: Vec<Input>,
    pub(crate) exclude: Vec<String>,
    pub(crate) batch_max_bytes: usize,
    pub(crate) batch_max_age_ms: u64,
    pub(crate) max_in_flight: usize,
    pub(crate) rescan_interval_ms: u64,
    pub(crate) max_line_bytes: usize,
    pub(crate) shutdown_timeout_ms: u64,
    pub(crate) zstd_level: i32,
    /// The certificates of `tls_ca`, read and checked; `None`: the
    /// built-in public roots.
    pub(crate) tls_roots: Option<Vec<ureq::tls::Certificate<'static>>>,
}

impl ConfigFile {
    /// Reads and parses a config file.
    pub(crate) fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses config text; `path` is only used in errors.
    pub(crate) fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|source| ConfigError::Parse {
            path: path.to_path_buf(),
            source,
        })
    }
}

/// Merges the file (if any) with the flags and validates the result.
pub(crate) fn resolve(
    file: Option<(&Path, ConfigFile)>,
    overrides: Overrides,
) -> Result<Settings, ConfigError> {
    let (origin, file) = match file {
        Some((path, file)) => (path.display().to_string(), file),
        None => (
            "command line".to_string(),
            ConfigFile::parse("", Path::new(""))?,
        ),
    };
    let invalid = |key: &str, reason: String| ConfigError::Invalid {
        origin: origin.clone(),
        key: key.to_string(),
        reason,
    };
    if let Some(version) = file.version.filter(|&v| v != 1) {
        return Err(invalid(
            "version",
            format!("unsupported version {version}, expected 1"),
        ));
    }

    let servers = if overrides.servers.is_empty() {
        file.servers
    } else {
        overrides.servers
    };
    if servers.is_empty() {
        return Err(invalid("servers", "no server given (--server URL)".into()));
    }
    for server in &servers {
        if !(server.starts_with("http://") || server.starts_with("https://")) {
            return Err(invalid(
                "servers",
                format!("{server:?} is not an http:// or https:// URL"),
            ));
        }
    }
    let token = overrides.token.or(file.token).unwrap_or_default();
    if token.trim().is_empty() {
        return Err(invalid(
            "token",
            "no token given (--token or LOGHOUND_TOKEN)".into(),
        ));
    }

    let mut inputs = Vec::new();
    if !overrides.paths.is_empty() {
        inputs.push(Input {
            globs: overrides.paths,
            tags: file.tags.clone(),
            format: file.format.clone(),
        });
    } else if !file.paths.is_empty() {
        inputs.push(Input {
            globs: file.paths,
            tags: file.tags.clone(),
            format: file.format.clone(),
        });
    }
    for input in file.inputs {
        inputs.push(Input {
            globs: input.paths,
            tags: input.tags,
            format: input.format,
        });
    }
    if inputs.iter().all(|input| input.globs.is_empty()) {
        return Err(invalid("paths", "no file to follow (--path GLOB)".into()));
    }
    for (index, input) in inputs.iter().enumerate() {
        if let Some(format) = input.format.as_deref().filter(|f| !FORMATS.contains(f)) {
            return Err(invalid(
                &format!("format (input {index})"),
                format!(
                    "unknown format {format:?}; use one of {}",
                    FORMATS.join(", ")
                ),
            ));
        }
        for glob in &input.globs {
            discovery::check_glob(glob)
                .map_err(|reason| invalid(&format!("paths (input {index})"), reason))?;
        }
    }
    let mut exclude = file.exclude;
    exclude.extend(overrides.exclude);
    for glob in &exclude {
        discovery::check_glob(glob).map_err(|reason| invalid("exclude", reason))?;
    }

    let tls_roots = match overrides.tls_ca.or(file.tls_ca) {
        Some(path) => Some(read_ca(&path).map_err(|reason| invalid("tls_ca", reason))?),
        None => None,
    };
    let settings = Settings {
        servers,
        token,
        state_dir: overrides
            .state_dir
            .or(file.state_dir)
            .unwrap_or_else(|| DEFAULT_STATE_DIR.into()),
        host: overrides.host.or(file.host),
        inputs,
        exclude,
        batch_max_bytes: overrides.batch_max_bytes.unwrap_or(file.batch_max_bytes),
        batch_max_age_ms: overrides.batch_max_age_ms.unwrap_or(file.batch_max_age_ms),
        max_in_flight: overrides.max_in_flight.unwrap_or(file.max_in_flight),
        rescan_interval_ms: overrides
            .rescan_interval_ms
            .unwrap_or(file.rescan_interval_ms),
        max_line_bytes: file.max_line_bytes,
        shutdown_timeout_ms: file.shutdown_timeout_ms,
        zstd_level: file.zstd_level,
        tls_roots,
    };
    let in_range = |key: &str, value: u64, min: u64, max: u64| {
        if (min..=max).contains(&value) {
            Ok(())
        } else {
            Err(invalid(key, format!("{value} is outside {min}..={max}")))
        }
    };
    in_range(
        "batch_max_bytes",
        settings.batch_max_bytes as u64,
        1024,
        32 << 20,
    )?;
    in_range("batch_max_age_ms", settings.batch_max_age_ms, 1, 60_000)?;
    in_range("max_in_flight", settings.max_in_flight as u64, 1, 64)?;
    in_range(
        "rescan_interval_ms",
        settings.rescan_interval_ms,
        10,
        3_600_000,
    )?;
    // The server refuses NDJSON lines over 2 MiB; leave room for the JSON.
    in_range(
        "max_line_bytes",
        settings.max_line_bytes as u64,
        16,
        1 << 20,
    )?;
    in_range(
        "shutdown_timeout_ms",
        settings.shutdown_timeout_ms,
        0,
        600_000,
    )?;
    if !(1..=19).contains(&settings.zstd_level) {
        return Err(invalid(
            "zstd_level",
            format!("{} is outside 1..=19", settings.zstd_level),
        ));
    }
    Ok(settings)
}

/// The certificates in the PEM file `path`; at least one.
fn read_ca(path: &Path) -> Result<Vec<ureq::tls::Certificate<'static>>, String> {
    let bytes =
        std::fs::read(path).map_err(|error| format!("cannot read {}: {error}", path.display()))?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&bytes) {
        match item {
            Ok(ureq::tls::PemItem::Certificate(cert)) => certs.push(cert),
            Ok(_) => {}
            Err(error) => return Err(format!("{}: not valid PEM: {error}", path.display())),
        }
    }
    if certs.is_empty() {
        return Err(format!(
            "{}: no `BEGIN CERTIFICATE` block found",
            path.display()
        ));
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ConfigFile, ConfigError> {
        ConfigFile::parse(text, Path::new("/etc/loghound/agent.toml"))
    }

    fn minimal() -> Overrides {
        Overrides {
            servers: vec!["http://127.0.0.1:7000".into()],
            token: Some("secret".into()),
            paths: vec!["/var/log/*.log".into()],
            ..Overrides::default()
        }
    }

    #[test]
    fn unknown_key_is_rejected_with_file_and_key() {
        let error = parse("servers = []\nbatch_max_byte = 5\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("/etc/loghound/agent.toml"), "{error}");
        assert!(error.contains("batch_max_byte"), "{error}");
        assert!(error.contains("line 2"), "{error}");
        let error = parse("[[inputs]]\npaths = []\ntag = {}\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("tag"), "{error}");
    }

    #[test]
    fn example_config_is_valid() {
        let file = ConfigFile::parse(
            include_str!("../agent.example.toml"),
            Path::new("agent.example.toml"),
        )
        .unwrap();
        let overrides = Overrides {
            token: Some("t".into()),
            ..Overrides::default()
        };
        let settings = resolve(Some((Path::new("agent.example.toml"), file)), overrides).unwrap();
        assert_eq!(settings.inputs.len(), 3);
    }

    #[test]
    fn defaults_are_applied() {
        let settings = resolve(None, minimal()).unwrap();
        assert_eq!(settings.batch_max_bytes, 1 << 20);
        assert_eq!(settings.batch_max_age_ms, 200);
        assert_eq!(settings.max_in_flight, 4);
        assert_eq!(settings.rescan_interval_ms, 2000);
        assert_eq!(settings.max_line_bytes, 262_144);
        assert_eq!(settings.shutdown_timeout_ms, 5000);
        assert_eq!(settings.zstd_level, 3);
        assert_eq!(settings.state_dir, PathBuf::from(DEFAULT_STATE_DIR));
    }

    #[test]
    fn unknown_format_is_rejected_with_its_key() {
        let file: ConfigFile = toml::from_str(
            r#"
            [[inputs]]
            paths = ["/var/log/api/*.log"]
            format = "xml"
            "#,
        )
        .unwrap();
        let error = resolve(Some((Path::new("agent.toml"), file)), minimal()).unwrap_err();
        let text = format!("{error:#}");
        assert!(text.contains("format") && text.contains("xml"), "{text}");
    }

    #[test]
    fn flags_override_the_file_and_inputs_keep_their_tags() {
        let file = parse(
            r#"
            version = 1
            servers = ["https://logs.example.com"]
            token = "from-file"
            paths = ["/var/log/syslog"]
            batch_max_age_ms = 500
            max_line_bytes = 1024
            [[inputs]]
            paths = ["/var/log/api/*.log"]
            tags = { app = "api" }
            "#,
        )
        .unwrap();
        let overrides = Overrides {
            batch_max_age_ms: Some(50),
            ..minimal()
        };
        let settings = resolve(Some((Path::new("agent.toml"), file)), overrides).unwrap();
        assert_eq!(settings.servers, vec!["http://127.0.0.1:7000".to_string()]);
        assert_eq!(settings.token, "secret");
        assert_eq!(settings.batch_max_age_ms, 50);
        assert_eq!(settings.max_line_bytes, 1024);
        assert_eq!(settings.inputs[0].globs, vec!["/var/log/*.log".to_string()]);
        assert_eq!(
            settings.inputs[1].tags.get("app").map(String::as_str),
            Some("api")
        );
    }

    #[test]
    fn tls_ca_is_read_and_a_bad_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing-ca.pem");
        let error = resolve(
            None,
            Overrides {
                tls_ca: Some(missing),
                ..minimal()
            },
        )
        .unwrap_err()
        .to_string();
        assert!(
            error.contains("tls_ca") && error.contains("missing-ca.pem"),
            "{error}"
        );
        let garbage = dir.path().join("garbage.pem");
        std::fs::write(&garbage, "hello\n").unwrap();
        let file = parse(&format!("tls_ca = {:?}", garbage.display().to_string())).unwrap();
        let error = resolve(Some((Path::new("agent.toml"), file)), minimal())
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("agent.toml: tls_ca:") && error.contains("BEGIN CERTIFICATE"),
            "{error}"
        );
        assert!(resolve(None, minimal()).unwrap().tls_roots.is_none());
    }

    #[test]
    fn invalid_values_name_their_key() {
        let file = parse("max_in_flight = 0").unwrap();
        let error = resolve(Some((Path::new("agent.toml"), file)), minimal())
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("agent.toml: max_in_flight:"), "{error}");
        let error = resolve(
            None,
            Overrides {
                token: None,
                ..minimal()
            },
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("token"), "{error}");
        let error = resolve(
            None,
            Overrides {
                paths: vec!["/x/[".into()],
                ..minimal()
            },
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("paths"), "{error}");
    }
}
