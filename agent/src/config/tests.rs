//! The config's unit tests: parsing, merging with flags, validation.

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
        include_str!("../../agent.example.toml"),
        Path::new("agent.example.toml"),
    )
    .unwrap();
    let overrides = Overrides {
        token: Some("t".into()),
        ..Overrides::default()
    };
    let settings = resolve(Some((Path::new("agent.example.toml"), file)), overrides).unwrap();
    assert_eq!(settings.inputs.len(), 4);
    assert!(settings.inputs[3].journald.is_some());
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
        text.starts_with("agent.toml: multiline.start: invalid regular expression \"^(unclosed\""),
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

#[test]
fn an_input_type_is_file_by_default_and_an_unknown_type_is_named() {
    let overrides = || Overrides {
        servers: vec!["http://127.0.0.1:7000".into()],
        token: Some("secret".into()),
        ..Overrides::default()
    };
    let text =
        "[[inputs]]\npaths = ['/a/*.log']\n\n[[inputs]]\ntype = 'file'\npaths = ['/b/*.log']\n";
    let settings = resolve(
        Some((Path::new("agent.toml"), parse(text).unwrap())),
        overrides(),
    )
    .unwrap();
    assert!(settings
        .inputs
        .iter()
        .all(|input| input.kind == InputKind::File));
    let error = parse("[[inputs]]\ntype = 'tape'\npaths = ['/a/*.log']\n")
        .unwrap_err()
        .to_string();
    assert!(error.contains("tape") && error.contains("file"), "{error}");
}

fn resolve_text(text: &str, overrides: Overrides) -> Result<Settings, String> {
    let file = parse(text).map_err(|error| error.to_string())?;
    resolve(Some((Path::new("agent.toml"), file)), overrides).map_err(|error| error.to_string())
}

#[test]
fn a_journald_input_takes_its_keys_and_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[[inputs]]\ntype = \"journald\"\nunits = [\"ssh.service\"]\nmatch = [\"_TRANSPORT=syslog\", \"+\", \"PRIORITY=3\"]\ndirectory = \"{}\"\nsince_now = true\n",
        dir.path().display()
    );
    let overrides = Overrides {
        paths: Vec::new(),
        ..minimal()
    };
    let settings = resolve_text(&text, overrides).unwrap();
    let journald = settings.inputs[0].journald.as_ref().unwrap();
    assert_eq!(journald.units, ["ssh.service"]);
    assert_eq!(journald.matches.len(), 3);
    assert!(journald.since_now);
    assert_eq!(journald.journalctl, PathBuf::from("journalctl"));

    let flag = Overrides {
        paths: Vec::new(),
        journald: true,
        ..minimal()
    };
    let settings = resolve(None, flag).unwrap();
    let journald = settings.inputs[0].journald.as_ref().unwrap();
    assert!(!journald.since_now && journald.directory.is_none());
}

#[test]
fn journald_and_file_keys_do_not_mix() {
    let cases = [
        (
            "[[inputs]]\ntype = \"journald\"\npaths = [\"/x/*.log\"]\n",
            "inputs[0].paths",
        ),
        (
            "[[inputs]]\ntype = \"journald\"\nformat = \"json\"\n",
            "inputs[0].format",
        ),
        (
            "[[inputs]]\npaths = [\"/x/*.log\"]\nunits = [\"a\"]\n",
            "inputs[0].units",
        ),
        (
            "[[inputs]]\nsince_now = true\npaths = [\"/x\"]\n",
            "inputs[0].since_now",
        ),
        (
            "[[inputs]]\ntype = \"journald\"\nmatch = [\"unit\"]\n",
            "inputs[0].match",
        ),
        (
            "[[inputs]]\ntype = \"journald\"\nmatch = [\"_unit=x\"]\n",
            "inputs[0].match",
        ),
        (
            "[[inputs]]\ntype = \"journald\"\ndirectory = \"/nonexistent/journal\"\n",
            "inputs[0].directory",
        ),
        (
            "[[inputs]]\ntype = \"journald\"\nunits = [\"--all\"]\n",
            "inputs[0].units",
        ),
        ("[[inputs]]\ntags = {}\n", "inputs[0].paths"),
    ];
    for (text, key) in cases {
        let error = resolve_text(text, minimal()).unwrap_err();
        assert!(error.contains(key), "{text:?}: {error}");
    }
    let error = resolve_text("[[inputs]]\ntype = \"syslog\"\n", minimal()).unwrap_err();
    assert!(error.contains("syslog"), "{error}");
}
