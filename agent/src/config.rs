//! The agent's configuration: `agent.toml`, overridden by command-line flags,
//! validated into [`Settings`] the rest of the agent can trust.
//!
//! Errors name the file and the key (`agent.toml: batch_max_bytes: …`);
//! parse errors carry toml's line and column.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use std::sync::Arc;

use serde::Deserialize;

use crate::discovery;
use crate::multiline::MultilineSettings;

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
    /// Joining of multi-line messages for the top-level `paths`.
    #[serde(default)]
    pub(crate) multiline: Option<MultilineConfig>,
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
    /// Most bytes of the disk spool (`<state_dir>/spool/`) that holds
    /// batches while no server takes them; 0 turns the spool off.
    #[serde(default = "default_spool_max_bytes")]
    pub(crate) spool_max_bytes: u64,
    /// Most descriptors of followed files held at once; idle files read to
    /// their end are closed and opened again when they grow.
    #[serde(default = "default_max_open_files")]
    pub(crate) max_open_files: usize,
    /// Serve Prometheus `/metrics` on this address (`127.0.0.1:9464`);
    /// off when unset.
    #[serde(default)]
    pub(crate) metrics_listen: Option<String>,
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
    /// Joining of multi-line messages for these files.
    #[serde(default)]
    pub(crate) multiline: Option<MultilineConfig>,
}

/// A `[multiline]` table: lines that do not match `start` continue the
/// event begun by the last line that did.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MultilineConfig {
    /// Regular expression: a line that matches begins a new event.
    pub(crate) start: String,
    /// Lines per event at most; a longer group is split into parts.
    #[serde(default = "default_multiline_max_lines")]
    pub(crate) max_lines: usize,
    /// Bytes of message per event at most; a larger group is split.
    #[serde(default = "default_multiline_max_bytes")]
    pub(crate) max_bytes: usize,
    /// A group that got no new line for this long is shipped.
    #[serde(default = "default_multiline_flush_ms")]
    pub(crate) flush_ms: u64,
}

const fn default_multiline_max_lines() -> usize {
    500
}
const fn default_multiline_max_bytes() -> usize {
    256 << 10
}
const fn default_multiline_flush_ms() -> u64 {
    500
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
const fn default_spool_max_bytes() -> u64 {
    1 << 30
}
/// The smallest spool bound other than 0 (off).
const MIN_SPOOL_MAX_BYTES: u64 = 64 << 10;
const fn default_max_open_files() -> usize {
    512
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
    pub(crate) spool_max_bytes: Option<u64>,
    pub(crate) max_open_files: Option<usize>,
    pub(crate) metrics_listen: Option<String>,
    pub(crate) tls_ca: Option<PathBuf>,
}

/// A group of globs sharing tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Input {
    pub(crate) globs: Vec<String>,
    pub(crate) tags: BTreeMap<String, String>,
    pub(crate) format: Option<String>,
    pub(crate) multiline: Option<Arc<MultilineSettings>>,
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
    pub(crate) spool_max_bytes: u64,
    pub(crate) max_open_files: usize,
    pub(crate) metrics_listen: Option<std::net::SocketAddr>,
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
    let top_globs = if overrides.paths.is_empty() {
        file.paths
    } else {
        overrides.paths
    };
    if !top_globs.is_empty() {
        inputs.push(Input {
            globs: top_globs,
            tags: file.tags.clone(),
            format: file.format.clone(),
            multiline: multiline_settings(file.multiline.as_ref(), "multiline", &invalid)?,
        });
    }
    for (index, input) in file.inputs.into_iter().enumerate() {
        let key = format!("inputs[{index}].multiline");
        inputs.push(Input {
            globs: input.paths,
            tags: input.tags,
            format: input.format,
            multiline: multiline_settings(input.multiline.as_ref(), &key, &invalid)?,
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
        spool_max_bytes: overrides.spool_max_bytes.unwrap_or(file.spool_max_bytes),
        max_open_files: overrides.max_open_files.unwrap_or(file.max_open_files),
        metrics_listen: match overrides.metrics_listen.or(file.metrics_listen) {
            Some(text) => Some(text.parse().map_err(|error| {
                invalid(
                    "metrics_listen",
                    format!(
                        "{text:?} is not an IP address and port such as 127.0.0.1:9464: {error}"
                    ),
                )
            })?),
            None => None,
        },
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
    if settings.spool_max_bytes != 0 {
        in_range(
            "spool_max_bytes",
            settings.spool_max_bytes,
            MIN_SPOOL_MAX_BYTES,
            u64::MAX,
        )
        .map_err(|_| {
            invalid(
                "spool_max_bytes",
                format!(
                    "{} is below the smallest spool, {MIN_SPOOL_MAX_BYTES} (0 turns the spool off)",
                    settings.spool_max_bytes
                ),
            )
        })?;
    }
    // Below 8 the descriptors needed to identify new files and check for
    // copies would leave almost none for reading.
    in_range("max_open_files", settings.max_open_files as u64, 8, 1 << 20)?;
    if !(1..=19).contains(&settings.zstd_level) {
        return Err(invalid(
            "zstd_level",
            format!("{} is outside 1..=19", settings.zstd_level),
        ));
    }
    Ok(settings)
}

/// Validates one `[multiline]` table; errors name `key` and the field.
fn multiline_settings(
    config: Option<&MultilineConfig>,
    key: &str,
    invalid: &dyn Fn(&str, String) -> ConfigError,
) -> Result<Option<Arc<MultilineSettings>>, ConfigError> {
    let Some(config) = config else {
        return Ok(None);
    };
    let start = regex_lite::Regex::new(&config.start).map_err(|error| {
        invalid(
            &format!("{key}.start"),
            format!("invalid regular expression {:?}: {error}", config.start),
        )
    })?;
    let check = |field: &str, value: u64, min: u64, max: u64| {
        if (min..=max).contains(&value) {
            Ok(())
        } else {
            Err(invalid(
                &format!("{key}.{field}"),
                format!("{value} is outside {min}..={max}"),
            ))
        }
    };
    check("max_lines", config.max_lines as u64, 1, 100_000)?;
    // Like max_line_bytes: the server refuses NDJSON lines over 2 MiB.
    check("max_bytes", config.max_bytes as u64, 16, 1 << 20)?;
    check("flush_ms", config.flush_ms, 10, 60_000)?;
    Ok(Some(Arc::new(MultilineSettings {
        start,
        max_lines: config.max_lines,
        max_bytes: config.max_bytes,
        flush_ms: config.flush_ms,
    })))
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
        assert_eq!(settings.spool_max_bytes, 1 << 30);
        assert_eq!(settings.max_open_files, 512);
        assert_eq!(settings.metrics_listen, None);
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
    fn spool_bound_is_off_or_at_least_64_kib() {
        let with = |bytes| {
            resolve(
                None,
                Overrides {
                    spool_max_bytes: Some(bytes),
                    ..minimal()
                },
            )
        };
        assert_eq!(with(0).unwrap().spool_max_bytes, 0);
        assert_eq!(with(65_536).unwrap().spool_max_bytes, 65_536);
        let error = with(1000).unwrap_err().to_string();
        assert!(
            error.starts_with("command line: spool_max_bytes: 1000 is below"),
            "{error}"
        );
        let file = parse("spool_max_bytes = 5000000").unwrap();
        let settings = resolve(Some((Path::new("agent.toml"), file)), minimal()).unwrap();
        assert_eq!(settings.spool_max_bytes, 5_000_000);
    }

    #[test]
    fn max_open_files_and_metrics_listen_are_checked() {
        let file = parse("max_open_files = 50\nmetrics_listen = \"127.0.0.1:9464\"").unwrap();
        let settings = resolve(Some((Path::new("agent.toml"), file)), minimal()).unwrap();
        assert_eq!(settings.max_open_files, 50);
        assert_eq!(
            settings.metrics_listen,
            Some("127.0.0.1:9464".parse().unwrap())
        );
        let file = parse("metrics_listen = \"localhost\"").unwrap();
        let error = resolve(Some((Path::new("agent.toml"), file)), minimal())
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("agent.toml: metrics_listen:"), "{error}");
        let file = parse("max_open_files = 3").unwrap();
        let error = resolve(Some((Path::new("agent.toml"), file)), minimal())
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("agent.toml: max_open_files:"), "{error}");
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

    #[test]
    fn multiline_defaults_and_per_input_rules() {
        let file = parse(
            r#"
            paths = ["/var/log/app.log"]
            [multiline]
            start = '^\d{4}-\d{2}-\d{2}'
            [[inputs]]
            paths = ["/var/log/java/*.log"]
            multiline = { start = '^\S', max_lines = 50, max_bytes = 4096, flush_ms = 2000 }
            [[inputs]]
            paths = ["/var/log/plain/*.log"]
            "#,
        )
        .unwrap();
        let settings = resolve(
            Some((Path::new("agent.toml"), file)),
            Overrides {
                paths: vec![],
                ..minimal()
            },
        )
        .unwrap();
        let top = settings.inputs[0].multiline.as_deref().unwrap();
        assert_eq!(top.start.as_str(), r"^\d{4}-\d{2}-\d{2}");
        assert_eq!(
            (top.max_lines, top.max_bytes, top.flush_ms),
            (500, 262_144, 500)
        );
        let java = settings.inputs[1].multiline.as_deref().unwrap();
        assert_eq!(
            (java.max_lines, java.max_bytes, java.flush_ms),
            (50, 4096, 2000)
        );
        assert!(settings.inputs[2].multiline.is_none());
    }

    #[test]
    fn invalid_multiline_values_name_their_key() {
        let error = |text: &str| {
            let file = parse(text).unwrap();
            resolve(Some((Path::new("agent.toml"), file)), minimal())
                .unwrap_err()
                .to_string()
        };
        let text = error("[multiline]\nstart = '^(unclosed'\n");
        assert!(
            text.starts_with(
                "agent.toml: multiline.start: invalid regular expression \"^(unclosed\""
            ),
            "{text}"
        );
        let text =
            error("[[inputs]]\npaths = ['/x/*.log']\nmultiline = { start = 'a', max_lines = 0 }\n");
        assert!(
            text.starts_with("agent.toml: inputs[0].multiline.max_lines: 0 is outside"),
            "{text}"
        );
        let text = error("[multiline]\nstart = 'a'\nflush_ms = 5\n");
        assert!(text.contains("multiline.flush_ms: 5 is outside"), "{text}");
        let text = error("[multiline]\nstart = 'a'\nmax_bytes = 2000000\n");
        assert!(text.contains("multiline.max_bytes"), "{text}");
        let parse_error = parse("[multiline]\nstart = 'a'\nmax_line = 3\n")
            .unwrap_err()
            .to_string();
        assert!(parse_error.contains("max_line"), "{parse_error}");
        let missing = parse("[multiline]\nmax_lines = 3\n")
            .unwrap_err()
            .to_string();
        assert!(missing.contains("start"), "{missing}");
    }
}
