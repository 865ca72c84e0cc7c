//! Tests of `notify.rs`.

use super::*;

fn notification(kind: RuleKind, event: NotificationEvent) -> Notification {
    Notification {
        rule_id: 3,
        rule_name: "api errors".into(),
        search_id: 2,
        search_name: "errors".into(),
        query: "status:>=500".into(),
        kind,
        event,
        count: 12,
        threshold: (kind == RuleKind::Threshold).then_some(10),
        window_secs: (kind != RuleKind::Any).then_some(300),
        from_ms: 1_700_000_000_000,
        to_ms: 1_700_000_300_000,
        samples: vec![Sample {
            id: "1048577".into(),
            timestamp: "2023-11-14T22:13:20.000Z".into(),
            received_at: "2023-11-14T22:13:21.000Z".into(),
            host: "web1".into(),
            source: "/var/log/nginx/access.log".into(),
            app: None,
            severity: Some("error".into()),
            message: "GET /x 502".into(),
            fields: Default::default(),
        }],
        link: "http://loghound/?q=status".into(),
        created_at_ms: 1_700_000_300_500,
        group: None,
        metric: None,
        value: None,
        condition: None,
    }
}

#[test]
fn signature_is_hmac_sha256_hex() {
    // RFC 4231 test case 2.
    assert_eq!(
        signature("Jefe", b"what do ya want for nothing?"),
        "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
}

#[test]
fn headlines_say_count_and_window() {
    let n = notification(RuleKind::Threshold, NotificationEvent::Fire);
    assert_eq!(
        n.headline(),
        "api errors: 12 matches in the last 5 min (threshold 10)"
    );
    let n = notification(RuleKind::Absence, NotificationEvent::Fire);
    assert_eq!(n.headline(), "api errors: no matches in the last 5 min");
    let n = notification(RuleKind::Any, NotificationEvent::Fire);
    assert!(n.email_subject().contains("12 new matches") && n.email_subject().contains("errors"));
    assert!(n
        .email_body()
        .contains("web1 /var/log/nginx/access.log: GET /x 502"));
}

#[test]
fn papertrail_body_is_a_payload_form_field() {
    let n = notification(RuleKind::Any, NotificationEvent::Fire);
    let (body, content_type) = n.webhook_body(WebhookFormat::Papertrail, "d1");
    assert_eq!(content_type, "application/x-www-form-urlencoded");
    let pairs: Vec<(String, String)> = form_urlencoded::parse(&body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    assert_eq!(pairs.len(), 1);
    assert_eq!(pairs[0].0, "payload");
    let payload: serde_json::Value = serde_json::from_str(&pairs[0].1).unwrap();
    assert_eq!(payload["events"][0]["hostname"], "web1");
    assert_eq!(payload["events"][0]["id"], 1_048_577);
    assert_eq!(payload["saved_search"]["name"], "errors");
    assert_eq!(
        payload["events"][0]["display_received_at"],
        "Nov 14 22:13:21"
    );
}

#[test]
fn bodies_are_stable_across_calls() {
    let n = notification(RuleKind::Any, NotificationEvent::Fire);
    for format in [
        WebhookFormat::Loghound,
        WebhookFormat::Slack,
        WebhookFormat::Papertrail,
    ] {
        assert_eq!(n.webhook_body(format, "d"), n.webhook_body(format, "d"));
    }
}
