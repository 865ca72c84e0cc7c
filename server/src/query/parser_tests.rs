//! Tests of `parser.rs`.

use super::*;

fn tree(text: &str) -> String {
    match parse(text) {
        Ok(Some(expr)) => expr.to_string(),
        Ok(None) => "<all>".to_string(),
        Err(error) => panic!("{text:?}: {error}"),
    }
}

fn error(text: &str) -> (String, usize) {
    match parse(text) {
        Ok(expr) => panic!("{text:?} parsed as {expr:?}"),
        Err(error) => (error.message, error.position),
    }
}

#[test]
fn words_are_anded_by_default() {
    assert_eq!(tree("get 200"), "(AND get 200)");
    assert_eq!(tree("a AND b c"), "(AND a b c)");
    assert_eq!(tree(""), "<all>");
    assert_eq!(tree("   "), "<all>");
}

#[test]
fn precedence_not_and_or() {
    assert_eq!(tree("a b OR c"), "(OR (AND a b) c)");
    assert_eq!(tree("a OR b c"), "(OR a (AND b c))");
    assert_eq!(tree("NOT a b"), "(AND (NOT a) b)");
    assert_eq!(tree("a OR NOT b AND c"), "(OR a (AND (NOT b) c))");
    assert_eq!(tree("(a OR b) c"), "(AND (OR a b) c)");
    assert_eq!(tree("-(a OR b)"), "(NOT (OR a b))");
    assert_eq!(tree("NOT NOT a"), "(NOT (NOT a))");
}

#[test]
fn lowercase_operators_are_words() {
    assert_eq!(tree("a or b"), "(AND a or b)");
    assert_eq!(tree("not and"), "(AND not and)");
}

#[test]
fn negation_forms() {
    assert_eq!(tree("-healthcheck"), "(NOT healthcheck)");
    assert_eq!(tree("-\"GET /\""), "(NOT \"GET /\")");
    assert_eq!(tree("a -host:web3"), "(AND a (NOT host:web3))");
    // A hyphen inside a word or alone is not an operator.
    assert_eq!(tree("foo-bar"), "foo-bar");
    assert_eq!(tree("a - b"), "(AND a - b)");
}

#[test]
fn phrases_and_escapes() {
    assert_eq!(tree(r#""connection reset""#), "\"connection reset\"");
    let Some(Expr {
        kind: ExprKind::Term(term),
        ..
    }) = parse(r#""say \"hi\" \\ ok""#).unwrap()
    else {
        panic!("not a term");
    };
    assert_eq!(term.value, Value::Phrase(r#"say "hi" \ ok"#.to_string()));
}

#[test]
fn field_terms() {
    assert_eq!(tree("host:web3"), "host:web3");
    assert_eq!(tree("user.id:42"), "user.id:42");
    assert_eq!(tree("path:/api/v1/items"), "path:/api/v1/items");
    assert_eq!(tree("msg:\"a b\""), "msg:\"a b\"");
    assert_eq!(tree("status:>=500"), "status:>=500");
    assert_eq!(tree("severity:<=warn"), "severity:<=warn");
    assert_eq!(tree("bytes:[1000 TO 5000]"), "bytes:[1000 TO 5000]");
    assert_eq!(tree("bytes:{1000 TO *]"), "bytes:{1000 TO *]");
    assert_eq!(tree("host:web*"), "host:web*");
    assert_eq!(tree("user.id:*"), "user.id:*");
    // Not a field name: starts with a digit.
    assert_eq!(tree("12:30:00"), "12:30:00");
}

#[test]
fn positions_are_characters() {
    let Some(Expr {
        kind: ExprKind::And(children),
        ..
    }) = parse("été status:>5").unwrap()
    else {
        panic!("not an AND");
    };
    assert_eq!(children[1].position, 4);
    let ExprKind::Term(term) = &children[1].kind else {
        panic!("not a term");
    };
    assert_eq!(term.value_position, 11);
    let Value::Compare(Comparison::Greater, bound) = &term.value else {
        panic!("not a comparison");
    };
    assert_eq!(bound.position, 12);
    assert_eq!(error("é \"x").1, 2);
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    for text in [
        "(".repeat(100_000),
        format!("{}a{}", "(".repeat(100_000), ")".repeat(100_000)),
        "-".repeat(100_000) + "a",
        "NOT ".repeat(100_000) + "a",
    ] {
        let (message, position) = error(&text);
        assert!(message.starts_with("query nested too deeply"), "{message}");
        assert!(position <= 4 * (MAX_DEPTH + 1), "{position}");
    }
    let nested = format!(
        "{}a{}",
        "(".repeat(MAX_DEPTH - 1),
        ")".repeat(MAX_DEPTH - 1)
    );
    assert_eq!(tree(&nested), "a");
}

#[test]
fn prefixes() {
    assert_eq!(tree("timeout*"), "timeout*");
    assert_eq!(tree("*"), "*");
}

#[test]
fn error_positions() {
    let cases: &[(&str, &str, usize)] = &[
        ("\"unclosed", "unclosed quote", 0),
        ("a \"b\\\"", "unclosed quote", 2),
        ("(a b", "unclosed '('", 0),
        ("a (b OR (c)", "unclosed '('", 2),
        ("a b)", "unmatched ')'", 3),
        (")", "unmatched ')'", 0),
        ("()", "empty parentheses", 0),
        ("a OR", "'OR' needs a term after it", 2),
        ("a AND", "'AND' needs a term after it", 2),
        ("a OR OR b", "'OR' needs a term after it", 2),
        ("OR a", "'OR' needs a term before it", 0),
        ("a NOT", "'NOT' needs a term after it", 2),
        ("(a OR) b", "'OR' needs a term after it", 3),
        ("host:", "missing value after 'host:'", 5),
        ("host: web3", "missing value after 'host:'", 5),
        ("status:>=", "missing value after '>='", 9),
        (
            "x status:(a b)",
            "parentheses after 'status:' are not supported",
            9,
        ),
        ("bytes:[1 TO 5", "unclosed range", 6),
        ("bytes:[1 5]", "expected a range like [low TO high]", 6),
        ("bytes:[1 to 5]", "expected a range like [low TO high]", 6),
        ("bytes:[1 TO 5]x", "unexpected text after the range", 14),
        ("*timeout", "a leading '*' is not supported", 0),
        ("a ti*me", "'*' is only supported at the end", 4),
        ("a**", "'*' is only supported at the end", 1),
        ("host:*web", "a leading '*' is not supported", 5),
    ];
    for (text, message, position) in cases {
        let (got_message, got_position) = error(text);
        assert!(
            got_message.starts_with(message),
            "{text:?}: {got_message:?} does not start with {message:?}"
        );
        assert_eq!(got_position, *position, "{text:?}: {got_message}");
    }
}
