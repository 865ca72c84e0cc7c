//! The agent's configuration: `agent.toml`, overridden by command-line flags,
//! validated into [`Settings`] the rest of the agent can trust.
//!
//! Errors name the file and the key (`agent.toml: batch_max_bytes: …`);
//! parse errors carry toml's line and column. This module holds the
//! file's shape and the validated result; `resolve.rs` merges and checks.

mod resolve;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

pub use self::resolve::resolve;
use crate::sources::file::multiline::MultilineSettings;

/// Why the configuration is unusable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file cannot be read.
    #[error("{path}: cannot read: {source}")]
    Read {
        /// The config file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The config file is not valid TOML of the expected shape.
    #[error("{path}: {source}")]
    Parse {
        /// The config file.
        path: PathBuf,
        /// What toml says, with line and column.
        #[source]
        source: toml::de::Error,
    },
    /// A value is out of range or inconsistent.
    #[error("{origin}: {key}: {reason}")]
    Invalid {
        /// The config file, or "command line".
        origin: String,
        /// The key, as written in the file.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// `agent.toml` as written by the operator.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
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
    /// What the input reads: `file` (the default), or `journald`.
    #[serde(default, rename = "type")]
    pub(crate) kind: InputKind,
    /// Globs of files to follow (`file` inputs).
    #[serde(default)]
    pub(crate) paths: Vec<String>,
    /// Only entries of these systemd units (`journald` inputs).
    #[serde(default)]
    pub(crate) units: Vec<String>,
    /// journalctl matches, `FIELD=value` or `+` between alternatives
    /// (`journald` inputs).
    #[serde(default, rename = "match")]
    pub(crate) matches: Vec<String>,
    /// Journal directory to read instead of the system journal (`journald`
    /// inputs).
    #[serde(default)]
    pub(crate) directory: Option<PathBuf>,
    /// On the input's first start, ship only entries written from then on
    /// instead of the whole journal (`journald` inputs; default false).
    #[serde(default)]
    pub(crate) since_now: Option<bool>,
    /// The journalctl program (`journald` inputs; default: `journalctl` on
    /// the `PATH`).
    #[serde(default)]
    pub(crate) journalctl: Option<PathBuf>,
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
pub const DEFAULT_STATE_DIR: &str = "/var/lib/loghound-agent";

/// Values given on the command line; each one set overrides the file.
/// The fields mean what the config keys of the same names mean.
#[derive(Debug, Default)]
pub struct Overrides {
    /// `servers`.
    pub servers: Vec<String>,
    /// `token`.
    pub token: Option<String>,
    /// `state_dir`.
    pub state_dir: Option<PathBuf>,
    /// `host`.
    pub host: Option<String>,
    /// The top-level `paths`.
    pub paths: Vec<String>,
    /// Adds a `journald` input on the system journal.
    pub journald: bool,
    /// Added to `exclude`.
    pub exclude: Vec<String>,
    /// `batch_max_bytes`.
    pub batch_max_bytes: Option<usize>,
    /// `batch_max_age_ms`.
    pub batch_max_age_ms: Option<u64>,
    /// `max_in_flight`.
    pub max_in_flight: Option<usize>,
    /// `rescan_interval_ms`.
    pub rescan_interval_ms: Option<u64>,
    /// `spool_max_bytes`.
    pub spool_max_bytes: Option<u64>,
    /// `max_open_files`.
    pub max_open_files: Option<usize>,
    /// `metrics_listen`.
    pub metrics_listen: Option<String>,
    /// `tls_ca`.
    pub tls_ca: Option<PathBuf>,
}

/// What an input reads; each kind is one source (`crate::sources`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum InputKind {
    /// Log files by glob.
    #[default]
    File,
    /// The systemd journal, through journalctl.
    Journald,
}

/// What a `journald` input reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct JournaldInput {
    pub(crate) units: Vec<String>,
    pub(crate) matches: Vec<String>,
    pub(crate) directory: Option<PathBuf>,
    pub(crate) since_now: bool,
    pub(crate) journalctl: PathBuf,
}

/// One input: a group of globs sharing tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Input {
    pub(crate) kind: InputKind,
    pub(crate) globs: Vec<String>,
    pub(crate) tags: BTreeMap<String, String>,
    pub(crate) format: Option<String>,
    pub(crate) multiline: Option<Arc<MultilineSettings>>,
    /// What a `journald` input reads; `None` for other kinds.
    pub(crate) journald: Option<JournaldInput>,
}

/// Formats an input may name: the server's parsing hints, and the
/// container log formats the agent decodes (`docker`, `cri`).
pub(crate) const FORMATS: [&str; 7] =
    ["auto", "json", "apache", "syslog", "plain", "docker", "cri"];

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Settings {
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
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
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
