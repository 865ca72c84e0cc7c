//! Tests of `config.rs`.

use super::*;

#[test]
fn empty_file_takes_defaults() {
    let config: ServerConfig = toml::from_str("").unwrap();
    config.validate().unwrap();
    assert_eq!(config.commit_interval_ms, 1000);
    assert_eq!(config.limits.max_events, 100_000);
}

#[test]
fn example_file_is_valid_and_matches_the_defaults() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("server.example.toml");
    let example = ServerConfig::load(&path).unwrap();
    let defaults = ServerConfig::default();
    assert_eq!(format!("{example:?}"), format!("{defaults:?}"));
}

#[test]
fn timeouts_and_retention_are_validated() {
    for (text, key) in [
        ("header_read_timeout_ms = 0", "header_read_timeout_ms"),
        ("header_read_timeout_ms = 3600001", "header_read_timeout_ms"),
        ("retention_days = 0", "retention_days"),
        ("retention_days = 40000", "retention_days"),
    ] {
        let config: ServerConfig = toml::from_str(text).unwrap();
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains(key), "{text}: {err}");
    }
    let config: ServerConfig =
        toml::from_str("header_read_timeout_ms = 250\nretention_days = 1").unwrap();
    config.validate().unwrap();
    assert_eq!(config.retention_days, Some(1));
    assert_eq!(ServerConfig::default().header_read_timeout_ms, 10_000);
    assert_eq!(ServerConfig::default().retention_days, None);
}

#[test]
fn tls_section_sets_the_scheme_and_is_validated() {
    let config: ServerConfig = toml::from_str(
        "listen = \"127.0.0.1:8443\"\n[tls]\ncert = \"/etc/loghound/cert.pem\"\nkey = \"/etc/loghound/key.pem\"\n",
    )
    .unwrap();
    config.validate().unwrap();
    let tls = config.tls.as_ref().unwrap();
    assert_eq!(tls.handshake_timeout_ms, 10_000);
    assert_eq!(config.public_url(None), "https://127.0.0.1:8443");
    assert_eq!(
        ServerConfig::default().public_url(None),
        "http://127.0.0.1:7700"
    );
    let config: ServerConfig =
        toml::from_str("[tls]\ncert = \"c\"\nkey = \"k\"\nhandshake_timeout_ms = 0\n").unwrap();
    let err = config.validate().unwrap_err().to_string();
    assert!(err.contains("tls.handshake_timeout_ms"), "{err}");
    let err = toml::from_str::<ServerConfig>("[tls]\ncert = \"c\"\n").unwrap_err();
    assert!(err.to_string().contains("key"), "{err}");
}

#[test]
fn unknown_key_is_named() {
    let err = toml::from_str::<ServerConfig>("comit_interval_ms = 5").unwrap_err();
    assert!(err.to_string().contains("comit_interval_ms"), "{err}");
}

#[test]
fn load_names_the_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("server.toml");
    std::fs::write(&path, "commit_interval_ms = 0\n").unwrap();
    let err = format!("{:#}", ServerConfig::load(&path).unwrap_err());
    assert!(
        err.contains("server.toml") && err.contains("commit_interval_ms"),
        "{err}"
    );
}

#[test]
fn syslog_listeners_are_validated() {
    let listener = |extra: &str| {
        format!(
            "[[syslog]]\nname = \"net\"\nlisten = \"127.0.0.1:5514\"\nprotocol = \"tcp\"\n{extra}"
        )
    };
    let cases = [
        (listener("").replace("\"net\"", "\"a b\""), "syslog[0].name"),
        (
            format!("{}\n{}", listener(""), listener("")),
            "syslog[1].name",
        ),
        (
            format!(
                "{}\n{}",
                listener(""),
                listener("").replace("\"net\"", "\"other\"")
            ),
            "syslog[1].listen",
        ),
        (
            listener("max_message_bytes = 10"),
            "syslog[0].max_message_bytes",
        ),
        (listener("max_connections = 0"), "syslog[0].max_connections"),
        (listener("default_host = \" \""), "syslog[0].default_host"),
        (listener("").replace("\"tcp\"", "\"tls\""), "syslog[0].tls"),
        (
            listener("[syslog.tls]\ncert = \"c.pem\"\nkey = \"k.pem\""),
            "syslog[0].tls",
        ),
        (
            "listen = \"127.0.0.1:5514\"\n".to_string() + &listener(""),
            "syslog[0].listen",
        ),
    ];
    for (text, key) in cases {
        let config: ServerConfig = toml::from_str(&text).unwrap();
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains(key), "{text}: {err}");
    }
    // The same port for UDP and TCP is two listeners, not a clash.
    let both = format!(
        "{}\n{}",
        listener("allow = [\"10.0.0.0/8\"]"),
        listener("")
            .replace("\"net\"", "\"udp\"")
            .replace("\"tcp\"", "\"udp\"")
    );
    let config: ServerConfig = toml::from_str(&both).unwrap();
    config.validate().unwrap();
    assert_eq!(config.syslog.len(), 2);
    assert_eq!(config.syslog[0].max_message_bytes, 64 << 10);
    assert!(config.syslog[0].allow[0].contains(&"10.9.8.7".parse::<std::net::IpAddr>().unwrap()));
    // A network that is not CIDR is refused while parsing, naming it.
    let bad = listener("allow = [\"10.0.0.0/33\"]");
    let err = toml::from_str::<ServerConfig>(&bad)
        .unwrap_err()
        .to_string();
    assert!(err.contains("allow"), "{err}");
}

#[test]
fn elasticsearch_section_turns_the_api_on_and_is_validated() {
    let config: ServerConfig = toml::from_str("").unwrap();
    assert!(config.elasticsearch.is_none());
    let config: ServerConfig = toml::from_str("[elasticsearch]\n").unwrap();
    config.validate().unwrap();
    let elastic = config.elasticsearch.unwrap();
    assert_eq!(elastic.version, "8.17.0");
    assert_eq!(elastic.message_fields[0], "message");
    let cases = [
        ("version = \"8\"", "elasticsearch.version"),
        ("version = \"8.x.1\"", "elasticsearch.version"),
        ("default_host = \"\"", "elasticsearch.default_host"),
        (
            "host_fields = [\"host..name\"]",
            "elasticsearch.host_fields",
        ),
        ("message_fields = [\"\"]", "elasticsearch.message_fields"),
    ];
    for (line, key) in cases {
        let text = format!("[elasticsearch]\n{line}\n");
        let config: ServerConfig = toml::from_str(&text).unwrap();
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains(key), "{text}: {err}");
    }
    let err = toml::from_str::<ServerConfig>("[elasticsearch]\nmesage_fields = []\n")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("mesage_fields") && err.contains("message_fields"),
        "{err}"
    );
    let err = toml::from_str::<ServerConfig>("[elasticsearch]\ntime_fields = \"x\"\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("time_fields"), "{err}");
}

#[test]
fn otlp_section_turns_the_route_on_and_is_validated() {
    let config: ServerConfig = toml::from_str("").unwrap();
    assert!(config.otlp.is_none());
    let config: ServerConfig = toml::from_str("[otlp]\n").unwrap();
    config.validate().unwrap();
    assert!(config.otlp.unwrap().default_host.is_none());
    let config: ServerConfig = toml::from_str("[otlp]\ndefault_host = \" \"\n").unwrap();
    let err = config.validate().unwrap_err().to_string();
    assert!(err.contains("otlp.default_host"), "{err}");
    let err = toml::from_str::<ServerConfig>("[otlp]\nport = 4318\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("port"), "{err}");
}
