//! Merging `agent.toml` with the flags and checking every value, so the
//! rest of the agent gets [`Settings`] it can trust.

use std::path::Path;
use std::sync::Arc;

use super::{
    ConfigError, ConfigFile, Input, InputConfig, InputKind, JournaldInput, MultilineConfig,
    Overrides, Settings, DEFAULT_STATE_DIR, FORMATS, MIN_SPOOL_MAX_BYTES,
};
use crate::sources::file::discovery;
use crate::sources::file::multiline::MultilineSettings;

/// Merges the file (if any) with the flags and validates the result.
pub fn resolve(
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
            kind: InputKind::File,
            globs: top_globs,
            tags: file.tags.clone(),
            format: file.format.clone(),
            multiline: multiline_settings(file.multiline.as_ref(), "multiline", &invalid)?,
            journald: None,
        });
    }
    for (index, input) in file.inputs.into_iter().enumerate() {
        let key = format!("inputs[{index}].multiline");
        let journald = match input.kind {
            InputKind::File => {
                file_input_only(&input, index, &invalid)?;
                None
            }
            InputKind::Journald => Some(journald_input(&input, index, &invalid)?),
        };
        inputs.push(Input {
            kind: input.kind,
            globs: input.paths,
            tags: input.tags,
            format: input.format,
            multiline: multiline_settings(input.multiline.as_ref(), &key, &invalid)?,
            journald,
        });
    }
    if overrides.journald {
        inputs.push(Input {
            kind: InputKind::Journald,
            globs: Vec::new(),
            tags: Default::default(),
            format: None,
            multiline: None,
            journald: Some(JournaldInput {
                units: Vec::new(),
                matches: Vec::new(),
                directory: None,
                since_now: false,
                journalctl: DEFAULT_JOURNALCTL.into(),
            }),
        });
    }
    if inputs
        .iter()
        .all(|input| input.kind == InputKind::File && input.globs.is_empty())
    {
        return Err(invalid(
            "paths",
            "nothing to read (--path GLOB, --journald, or [[inputs]])".into(),
        ));
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
        let container = matches!(input.format.as_deref(), Some("docker" | "cri"));
        if container && input.multiline.is_some() {
            return Err(invalid(
                &format!("multiline (input {index})"),
                "a container log (format docker or cri) is joined by its runtime's partial-line marks; multiline does not apply".into(),
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

/// journalctl, when an input does not name it.
const DEFAULT_JOURNALCTL: &str = "journalctl";

/// A `file` input must not carry a `journald` input's keys.
fn file_input_only(
    input: &InputConfig,
    index: usize,
    invalid: &dyn Fn(&str, String) -> ConfigError,
) -> Result<(), ConfigError> {
    let journald_keys = [
        ("units", !input.units.is_empty()),
        ("match", !input.matches.is_empty()),
        ("directory", input.directory.is_some()),
        ("since_now", input.since_now.is_some()),
        ("journalctl", input.journalctl.is_some()),
    ];
    if let Some((key, _)) = journald_keys.iter().find(|(_, set)| *set) {
        return Err(invalid(
            &format!("inputs[{index}].{key}"),
            "only a journald input (type = \"journald\") takes this key".into(),
        ));
    }
    if input.paths.is_empty() {
        return Err(invalid(
            &format!("inputs[{index}].paths"),
            "a file input needs at least one glob".into(),
        ));
    }
    Ok(())
}

/// Validates a `journald` input.
fn journald_input(
    input: &InputConfig,
    index: usize,
    invalid: &dyn Fn(&str, String) -> ConfigError,
) -> Result<JournaldInput, ConfigError> {
    let key = |name: &str| format!("inputs[{index}].{name}");
    let file_keys = [
        ("paths", !input.paths.is_empty()),
        ("multiline", input.multiline.is_some()),
        ("format", input.format.is_some()),
    ];
    if let Some((name, _)) = file_keys.iter().find(|(_, set)| *set) {
        return Err(invalid(
            &key(name),
            "a journald input does not take this key (it reads the journal, not files)".into(),
        ));
    }
    for unit in &input.units {
        if unit.trim().is_empty() || unit.starts_with('-') || unit.contains(char::is_whitespace) {
            return Err(invalid(
                &key("units"),
                format!("{unit:?} is not a unit name"),
            ));
        }
    }
    for journal_match in &input.matches {
        check_journal_match(journal_match).map_err(|reason| invalid(&key("match"), reason))?;
    }
    if let Some(directory) = &input.directory {
        if !directory.is_dir() {
            return Err(invalid(
                &key("directory"),
                format!("{} is not a directory", directory.display()),
            ));
        }
    }
    Ok(JournaldInput {
        units: input.units.clone(),
        matches: input.matches.clone(),
        directory: input.directory.clone(),
        since_now: input.since_now.unwrap_or(false),
        journalctl: input
            .journalctl
            .clone()
            .unwrap_or_else(|| DEFAULT_JOURNALCTL.into()),
    })
}

/// A journalctl match: `FIELD=value` (a field name of capitals, digits and
/// `_`), or `+` between alternatives.
fn check_journal_match(text: &str) -> Result<(), String> {
    if text == "+" {
        return Ok(());
    }
    let Some((field, _)) = text.split_once('=') else {
        return Err(format!("{text:?} is not FIELD=value or +"));
    };
    let valid = !field.is_empty()
        && !field.starts_with(|c: char| c.is_ascii_digit())
        && field
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
    if !valid {
        return Err(format!(
            "{field:?} in {text:?} is not a journal field name (capitals, digits and _)"
        ));
    }
    Ok(())
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
