//! `server.toml` and the flags that override it: parsed, validated, then
//! trusted by the rest of the server.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use loghound_shared::Limits;
use serde::Deserialize;

/// Why a config file cannot be used. Each message names the file and,
/// through its cause, the line or key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {}: {cause}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What reading it answered.
        cause: std::io::Error,
    },
    /// The file is not valid TOML or has an unknown or mistyped key.
    #[error("invalid config file {}: {cause}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, with line and column.
        cause: toml::de::Error,
    },
    /// A value is out of its range.
    #[error("invalid config file {}: {cause}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Which key, and why.
        cause: InvalidConfig,
    },
}

/// A value the types accept but the server cannot use; the message names
/// the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidConfig(String);

/// Returns an [`InvalidConfig`] with a formatted message.
macro_rules! invalid {
    ($($message:tt)*) => {
        return Err(InvalidConfig(std::fmt::format(format_args!($($message)*))))
    };
}

/// The server's whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Format version of this file; only `1` exists.
    #[serde(default = "default_version")]
    pub version: u32,
    /// Address and port the HTTP API listens on.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Directory holding `wal/`, `indexes/` and `meta.sqlite`.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// How often the indexer commits, making new lines searchable.
    #[serde(default = "default_commit_interval_ms")]
    pub commit_interval_ms: u64,
    /// Memory budget of the tantivy writer of each day being written.
    #[serde(default = "default_index_writer_heap_bytes")]
    pub index_writer_heap_bytes: usize,
    /// Indexing threads per day being written.
    #[serde(default = "default_index_writer_threads")]
    pub index_writer_threads: usize,
    /// A write-ahead log segment is closed and a new one started past this size.
    #[serde(default = "default_wal_segment_bytes")]
    pub wal_segment_bytes: u64,
    /// Most bytes (estimated memory of the events) logged but not yet
    /// committed to the index; past it ingest answers 429 with
    /// `Retry-After` and logs nothing.
    #[serde(default = "default_index_queue_max_bytes")]
    pub index_queue_max_bytes: u64,
    /// Longest wait for the next piece of a request body before the request
    /// is answered 408: a client that stalls cannot hold a connection.
    #[serde(default = "default_body_idle_timeout_ms")]
    pub body_idle_timeout_ms: u64,
    /// Longest time a connection may take to send a request's headers
    /// (from when it connects, or from the end of its previous answer):
    /// a client that trickles them, or sends nothing, is disconnected.
    #[serde(default = "default_header_read_timeout_ms")]
    pub header_read_timeout_ms: u64,
    /// Days of receipt to keep: a day index is deleted once all of it is
    /// more than this many days old. Unset: keep everything.
    #[serde(default)]
    pub retention_days: Option<u32>,
    /// Limits on each ingested batch.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// Alert evaluation and delivery.
    #[serde(default)]
    pub alerts: AlertsConfig,
    /// Serve HTTPS with this certificate; plain HTTP without it.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// `[[syslog]]`: syslog listeners (none by default).
    #[serde(default)]
    pub syslog: Vec<SyslogConfig>,
    /// `[elasticsearch]`: the Elasticsearch bulk API under `/es` (off
    /// without the section).
    #[serde(default)]
    pub elasticsearch: Option<crate::elastic::ElasticConfig>,
    /// `[otlp]`: OpenTelemetry logs on `POST /v1/logs` (off without the
    /// section).
    #[serde(default)]
    pub otlp: Option<crate::otlp::OtlpConfig>,
}

/// How a syslog listener takes messages.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SyslogProtocol {
    /// One message per datagram (RFC 5426).
    Udp,
    /// A stream of messages, octet-counted or one per line (RFC 6587),
    /// told apart per connection.
    Tcp,
    /// [`SyslogProtocol::Tcp`] inside TLS (RFC 5425).
    Tls,
}

impl SyslogProtocol {
    /// `udp`, `tcp` or `tls`.
    pub fn as_str(self) -> &'static str {
        match self {
            SyslogProtocol::Udp => "udp",
            SyslogProtocol::Tcp => "tcp",
            SyslogProtocol::Tls => "tls",
        }
    }
}

/// `[[syslog]]`: one listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyslogConfig {
    /// The input's name: events' origin is `input:<name>` and their
    /// source `syslog/<name>/<peer address>`.
    pub name: String,
    /// Address and port to listen on.
    pub listen: SocketAddr,
    /// `udp`, `tcp` or `tls`.
    pub protocol: SyslogProtocol,
    /// Host of messages that name none (default: the peer's address).
    #[serde(default)]
    pub default_host: Option<String>,
    /// `app` of messages that name none.
    #[serde(default)]
    pub default_app: Option<String>,
    /// Peer networks allowed to send (CIDR, such as `10.0.0.0/8`); empty:
    /// every peer.
    #[serde(default)]
    pub allow: Vec<ipnet::IpNet>,
    /// Longest message kept; a longer one is cut there and marked
    /// truncated (the rest of it is skipped, the next message is read).
    #[serde(default = "default_syslog_max_message_bytes")]
    pub max_message_bytes: usize,
    /// TCP and TLS: connections at once; more are closed as they come.
    #[serde(default = "default_syslog_max_connections")]
    pub max_connections: usize,
    /// TCP and TLS: a connection that sends nothing this long is closed.
    #[serde(default = "default_syslog_idle_timeout_ms")]
    pub idle_timeout_ms: u64,
    /// UDP: the socket's receive buffer (`SO_RCVBUF`), which absorbs
    /// bursts; the kernel may grant less.
    #[serde(default = "default_syslog_recv_buffer_bytes")]
    pub recv_buffer_bytes: usize,
    /// TLS: the certificate chain and key, as for `[tls]`.
    #[serde(default)]
    pub tls: Option<SyslogTlsConfig>,
}

/// `[syslog.tls]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyslogTlsConfig {
    /// PEM file with the certificate chain, the server's own first.
    pub cert: PathBuf,
    /// PEM file with the private key.
    pub key: PathBuf,
    /// PEM file of the CAs that sign client certificates; when set, a
    /// client without a certificate signed by one of them is refused.
    #[serde(default)]
    pub client_ca: Option<PathBuf>,
    /// Longest time a new connection may take to finish the handshake.
    #[serde(default = "default_handshake_timeout_ms")]
    pub handshake_timeout_ms: u64,
}

const fn default_syslog_max_message_bytes() -> usize {
    64 << 10
}
const fn default_syslog_max_connections() -> usize {
    1024
}
const fn default_syslog_idle_timeout_ms() -> u64 {
    3_600_000
}
const fn default_syslog_recv_buffer_bytes() -> usize {
    4 << 20
}

/// `[tls]`: the server's certificate, for HTTPS.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM file with the certificate chain, the server's own first.
    pub cert: PathBuf,
    /// PEM file with the private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// Longest time a new connection may take to finish the TLS
    /// handshake; a client that connects and stalls is disconnected.
    #[serde(default = "default_handshake_timeout_ms")]
    pub handshake_timeout_ms: u64,
}

/// The default of `tls.handshake_timeout_ms`.
pub const fn default_handshake_timeout_ms() -> u64 {
    10_000
}

/// `[alerts]`: how rules are evaluated and notifications delivered.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsConfig {
    /// The server's URL as people reach it; notifications link to the
    /// search under it. Default: see [`ServerConfig::public_url`].
    #[serde(default)]
    pub public_url: Option<String>,
    /// Attempts per delivery before it is marked failed.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Wait before the first retry; doubles with each further one.
    #[serde(default = "default_retry_base_ms")]
    pub retry_base_ms: u64,
    /// Longest wait between two attempts.
    #[serde(default = "default_retry_max_ms")]
    pub retry_max_ms: u64,
    /// Timeout of one webhook request or SMTP session.
    #[serde(default = "default_delivery_timeout_ms")]
    pub delivery_timeout_ms: u64,
    /// Deliveries in flight at once; a slow receiver holds only its own.
    #[serde(default = "default_max_concurrent_deliveries")]
    pub max_concurrent_deliveries: usize,
    /// The SMTP relay for email channels; without it email channels are
    /// refused.
    #[serde(default)]
    pub smtp: Option<SmtpConfig>,
}

/// `[alerts.smtp]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    /// Relay host name.
    pub host: String,
    /// Port; default 587 (STARTTLS), 465 (TLS) or 25 (none).
    #[serde(default)]
    pub port: Option<u16>,
    /// `starttls`, `tls` (implicit) or `none` (a local relay).
    #[serde(default)]
    pub security: SmtpSecurity,
    /// User name, if the relay wants one.
    #[serde(default)]
    pub username: Option<String>,
    /// Password for `username`.
    #[serde(default)]
    pub password: Option<String>,
    /// Sender, such as `Loghound <loghound@example.com>`.
    pub from: String,
}

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// Plain connection upgraded with STARTTLS (required).
    #[default]
    Starttls,
    /// TLS from the first byte.
    Tls,
    /// No encryption: only for a relay on the same host.
    None,
}

impl SmtpConfig {
    /// The port, or the usual one for the security mode.
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(match self.security {
            SmtpSecurity::Starttls => 587,
            SmtpSecurity::Tls => 465,
            SmtpSecurity::None => 25,
        })
    }
}

const fn default_max_attempts() -> u32 {
    8
}
const fn default_retry_base_ms() -> u64 {
    1000
}
const fn default_retry_max_ms() -> u64 {
    300_000
}
const fn default_delivery_timeout_ms() -> u64 {
    10_000
}
const fn default_max_concurrent_deliveries() -> usize {
    16
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            public_url: None,
            max_attempts: default_max_attempts(),
            retry_base_ms: default_retry_base_ms(),
            retry_max_ms: default_retry_max_ms(),
            delivery_timeout_ms: default_delivery_timeout_ms(),
            max_concurrent_deliveries: default_max_concurrent_deliveries(),
            smtp: None,
        }
    }
}

/// Bounds on one ingest request; see `loghound_shared::Limits`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Bytes of a compressed request body.
    #[serde(default = "default_max_compressed_bytes")]
    pub max_compressed_bytes: usize,
    /// Bytes of a body once decompressed.
    #[serde(default = "default_max_decompressed_bytes")]
    pub max_decompressed_bytes: usize,
    /// Bytes of one encoded event (one NDJSON line).
    #[serde(default = "default_max_line_bytes")]
    pub max_line_bytes: usize,
    /// Events in one batch.
    #[serde(default = "default_max_events")]
    pub max_events: usize,
}

const fn default_version() -> u32 {
    1
}
fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 7700))
}
fn default_data_dir() -> PathBuf {
    PathBuf::from("loghound-data")
}
const fn default_commit_interval_ms() -> u64 {
    1000
}
const fn default_index_writer_heap_bytes() -> usize {
    128 << 20
}
const fn default_index_writer_threads() -> usize {
    2
}
const fn default_wal_segment_bytes() -> u64 {
    64 << 20
}
const fn default_index_queue_max_bytes() -> u64 {
    64 << 20
}
const fn default_body_idle_timeout_ms() -> u64 {
    30_000
}
const fn default_header_read_timeout_ms() -> u64 {
    10_000
}
const fn default_max_compressed_bytes() -> usize {
    16 << 20
}
const fn default_max_decompressed_bytes() -> usize {
    64 << 20
}
const fn default_max_line_bytes() -> usize {
    2 << 20
}
const fn default_max_events() -> usize {
    100_000
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_compressed_bytes: default_max_compressed_bytes(),
            max_decompressed_bytes: default_max_decompressed_bytes(),
            max_line_bytes: default_max_line_bytes(),
            max_events: default_max_events(),
        }
    }
}

impl From<LimitsConfig> for Limits {
    fn from(config: LimitsConfig) -> Self {
        Limits {
            max_compressed_bytes: config.max_compressed_bytes,
            max_decompressed_bytes: config.max_decompressed_bytes,
            max_line_bytes: config.max_line_bytes,
            max_events: config.max_events,
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        // An empty document takes every default.
        toml::from_str("").expect("every field has a default")
    }
}

impl ServerConfig {
    /// Reads and validates a `server.toml`; errors name the file, line and key.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let path_buf = || path.to_path_buf();
        let text = std::fs::read_to_string(path).map_err(|cause| ConfigError::Read {
            path: path_buf(),
            cause,
        })?;
        let config: ServerConfig = toml::from_str(&text).map_err(|cause| ConfigError::Parse {
            path: path_buf(),
            cause,
        })?;
        config.validate().map_err(|cause| ConfigError::Invalid {
            path: path_buf(),
            cause,
        })?;
        Ok(config)
    }

    /// The URL notifications link to: `alerts.public_url`, or else one
    /// made from the address the server listens on (`bound`, once known):
    /// its host name stands in for an unspecified address (0.0.0.0).
    pub fn public_url(&self, bound: Option<SocketAddr>) -> String {
        if let Some(url) = &self.alerts.public_url {
            return url.clone();
        }
        let scheme = self.scheme();
        let address = bound.unwrap_or(self.listen);
        if address.ip().is_unspecified() {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_string())
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "localhost".into());
            format!("{scheme}://{host}:{}", address.port())
        } else {
            format!("{scheme}://{address}")
        }
    }

    /// `https` when `[tls]` is set, else `http`.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() {
            "https"
        } else {
            "http"
        }
    }

    /// Checks what the types cannot.
    pub fn validate(&self) -> Result<(), InvalidConfig> {
        if self.version != 1 {
            invalid!(
                "key `version`: unsupported version {}, expected 1",
                self.version
            );
        }
        if self.commit_interval_ms == 0 || self.commit_interval_ms > 60_000 {
            invalid!("key `commit_interval_ms`: must be between 1 and 60000");
        }
        if self.index_writer_heap_bytes < 16 << 20 {
            invalid!("key `index_writer_heap_bytes`: must be at least 16 MiB (16777216)");
        }
        if self.index_writer_threads == 0 || self.index_writer_threads > 8 {
            invalid!("key `index_writer_threads`: must be between 1 and 8");
        }
        if self.body_idle_timeout_ms == 0 {
            invalid!("key `body_idle_timeout_ms`: must be positive");
        }
        if self.header_read_timeout_ms == 0 || self.header_read_timeout_ms > 3_600_000 {
            invalid!("key `header_read_timeout_ms`: must be between 1 and 3600000");
        }
        if let Some(days) = self.retention_days {
            if days == 0 || days > 36_500 {
                invalid!("key `retention_days`: must be between 1 and 36500 (or left out to keep everything)");
            }
        }
        if self.index_queue_max_bytes < 1 << 20 {
            invalid!("key `index_queue_max_bytes`: must be at least 1 MiB (1048576)");
        }
        if self.wal_segment_bytes < 1 << 20 {
            invalid!("key `wal_segment_bytes`: must be at least 1 MiB (1048576)");
        }
        let limits = &self.limits;
        if limits.max_events == 0 || limits.max_events >= 1 << crate::EVENT_INDEX_BITS {
            invalid!(
                "key `limits.max_events`: must be between 1 and {}",
                (1u64 << crate::EVENT_INDEX_BITS) - 1
            );
        }
        if limits.max_line_bytes == 0
            || limits.max_compressed_bytes == 0
            || limits.max_decompressed_bytes < limits.max_line_bytes
        {
            invalid!("key `limits`: byte limits must be positive and max_decompressed_bytes >= max_line_bytes");
        }
        if let Some(tls) = &self.tls {
            if tls.handshake_timeout_ms == 0 || tls.handshake_timeout_ms > 600_000 {
                invalid!("key `tls.handshake_timeout_ms`: must be between 1 and 600000");
            }
        }
        self.validate_syslog()?;
        if let Some(elastic) = &self.elasticsearch {
            elastic.validate().map_err(InvalidConfig)?;
        }
        if let Some(otlp) = &self.otlp {
            otlp.validate().map_err(InvalidConfig)?;
        }
        let alerts = &self.alerts;
        if alerts.max_attempts == 0 || alerts.max_attempts > 100 {
            invalid!("key `alerts.max_attempts`: must be between 1 and 100");
        }
        if alerts.retry_base_ms == 0 || alerts.retry_max_ms < alerts.retry_base_ms {
            invalid!(
                "key `alerts.retry_base_ms`: must be positive and at most `alerts.retry_max_ms`"
            );
        }
        if alerts.delivery_timeout_ms == 0 {
            invalid!("key `alerts.delivery_timeout_ms`: must be positive");
        }
        if alerts.max_concurrent_deliveries == 0 || alerts.max_concurrent_deliveries > 1024 {
            invalid!("key `alerts.max_concurrent_deliveries`: must be between 1 and 1024");
        }
        if let Some(url) = &alerts.public_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                invalid!("key `alerts.public_url`: must start with http:// or https://");
            }
        }
        if let Some(smtp) = &alerts.smtp {
            if smtp.host.trim().is_empty() {
                invalid!("key `alerts.smtp.host`: must not be empty");
            }
            if smtp.from.parse::<lettre::message::Mailbox>().is_err() {
                invalid!(
                    "key `alerts.smtp.from`: {:?} is not an email address (e.g. `Loghound <loghound@example.com>`)",
                    smtp.from
                );
            }
            if smtp.password.is_some() && smtp.username.is_none() {
                invalid!("key `alerts.smtp.password`: set `alerts.smtp.username` too");
            }
        }
        Ok(())
    }
}

impl ServerConfig {
    fn validate_syslog(&self) -> Result<(), InvalidConfig> {
        let mut names = std::collections::HashSet::new();
        let mut addresses = std::collections::HashSet::new();
        for (i, syslog) in self.syslog.iter().enumerate() {
            let key = format!("syslog[{i}]");
            let name = &syslog.name;
            if name.is_empty()
                || name.len() > 64
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                invalid!("key `{key}.name`: {name:?} must be 1 to 64 letters, digits, `-` or `_`");
            }
            if !names.insert(name.as_str()) {
                invalid!("key `{key}.name`: another listener is already named {name:?}");
            }
            let udp = syslog.protocol == SyslogProtocol::Udp;
            if syslog.listen.port() != 0 && !addresses.insert((udp, syslog.listen)) {
                invalid!(
                    "key `{key}.listen`: another {} listener already uses {}",
                    syslog.protocol.as_str(),
                    syslog.listen
                );
            }
            if !udp && syslog.listen == self.listen {
                invalid!(
                    "key `{key}.listen`: {} is the HTTP API's address",
                    syslog.listen
                );
            }
            if !(480..=16 << 20).contains(&syslog.max_message_bytes) {
                invalid!("key `{key}.max_message_bytes`: must be between 480 and 16777216");
            }
            if syslog.max_connections == 0 || syslog.max_connections > 100_000 {
                invalid!("key `{key}.max_connections`: must be between 1 and 100000");
            }
            if syslog.idle_timeout_ms == 0 {
                invalid!("key `{key}.idle_timeout_ms`: must be positive");
            }
            if syslog.recv_buffer_bytes > 1 << 30 {
                invalid!("key `{key}.recv_buffer_bytes`: must be at most 1 GiB");
            }
            for (field, value) in [
                ("default_host", &syslog.default_host),
                ("default_app", &syslog.default_app),
            ] {
                if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
                    invalid!("key `{key}.{field}`: must not be empty (leave it out instead)");
                }
            }
            match (&syslog.tls, syslog.protocol) {
                (None, SyslogProtocol::Tls) => {
                    invalid!("key `{key}.tls`: protocol \"tls\" needs `[syslog.tls]` with `cert` and `key`")
                }
                (Some(_), SyslogProtocol::Udp | SyslogProtocol::Tcp) => invalid!(
                    "key `{key}.tls`: only for protocol \"tls\" (this listener is {})",
                    syslog.protocol.as_str()
                ),
                (Some(tls), SyslogProtocol::Tls)
                    if tls.handshake_timeout_ms == 0 || tls.handshake_timeout_ms > 600_000 =>
                {
                    invalid!("key `{key}.tls.handshake_timeout_ms`: must be between 1 and 600000")
                }
                _ => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
