use super::pipe::{split, Function, Stage};

fn stages(text: &str) -> Vec<Stage> {
    match split(text) {
        Ok(piped) => piped.stages,
        Err(e) => panic!("{text:?}: {e}"),
    }
}

fn error(text: &str) -> (String, usize) {
    match split(text) {
        Ok(piped) => panic!("{text:?} parsed: {piped:?}"),
        Err(e) => (e.message, e.position),
    }
}

#[test]
fn the_search_is_the_text_before_the_first_unquoted_pipe() {
    let piped = split(r#"status:500 "a|b \" | c" | stats count()"#).unwrap();
    assert_eq!(piped.search, r#"status:500 "a|b \" | c" "#);
    assert_eq!(piped.pipe_position, Some(24));
    assert_eq!(piped.stages.len(), 1);
    let piped = split("just words").unwrap();
    assert_eq!(
        (piped.search, piped.stages.len(), piped.pipe_position),
        ("just words", 0, None)
    );
}

#[test]
fn stats_aggregates_groups_and_names() {
    let [Stage::Stats(grouping)] = &stages(
        "| stats count(), avg(duration_ms) p99.9(duration_ms) COUNT_DISTINCT(user.id) as users by (path, fields.host)",
    )[..] else {
        panic!("one stats stage");
    };
    let columns: Vec<&str> = grouping
        .aggregates
        .iter()
        .map(|a| a.column.as_str())
        .collect();
    assert_eq!(
        columns,
        ["count()", "avg(duration_ms)", "p99.9(duration_ms)", "users"]
    );
    assert_eq!(grouping.aggregates[2].function, Function::Percentile(99.9));
    assert_eq!(grouping.aggregates[3].function, Function::CountDistinct);
    let by: Vec<&str> = grouping.by.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(by, ["path", "fields.host"]);
    assert_eq!(grouping.by[0].position, 90);
    // `by` without parentheses.
    let [Stage::Stats(grouping)] = &stages("|stats median(x) by host")[..] else {
        panic!("one stats stage");
    };
    assert_eq!(grouping.aggregates[0].column, "p50(x)");
    assert_eq!(grouping.by[0].name, "host");
}

#[test]
fn top_timechart_sort_and_limit() {
    let parsed = stages("| top by client_ip | sort count() desc, client_ip | limit 3");
    assert!(matches!(&parsed[0], Stage::Top { limit: 10, by } if by[0].name == "client_ip"));
    let Stage::Sort(keys) = &parsed[1] else {
        panic!("sort");
    };
    assert_eq!(
        (keys[0].column.as_str(), keys[0].descending),
        ("count()", true)
    );
    assert_eq!(
        (keys[1].column.as_str(), keys[1].descending),
        ("client_ip", false)
    );
    assert_eq!(parsed[2], Stage::Limit(3));
    let parsed = stages("| timechart span=5m count() by (host)");
    assert!(
        matches!(&parsed[0], Stage::Timechart { span_ms: Some(300_000), grouping } if grouping.by.len() == 1)
    );
    assert!(matches!(
        &stages("| timechart max(x)")[0],
        Stage::Timechart { span_ms: None, .. }
    ));
    assert!(
        matches!(&stages("| top 25 by a, b")[0], Stage::Top { limit: 25, by } if by.len() == 2)
    );
}

#[test]
fn malformed_pipes_say_what_and_where() {
    for (text, message, position) in [
        (
            "a | ",
            "expected a pipe: stats, timechart, top, sort or limit at the end of the pipe",
            4,
        ),
        ("a | grep x", "unknown pipe 'grep'", 4),
        ("| stats", "expected an aggregate", 7),
        ("| stats count", "expected '(' after count at the end", 13),
        ("| stats avg()", "avg() needs a field", 8),
        (
            "| stats p101(x)",
            "percentile 'p101' must be from p0 to p100",
            8,
        ),
        ("| stats count(), count()", "column 'count()' twice", 17),
        ("| stats count() by", "expected a field name", 18),
        ("| stats count() by (a, a)", "field 'a' twice", 23),
        ("| stats count() by (a", "expected ')' after the fields", 21),
        ("| stats x(y)", "unknown aggregate 'x'", 8),
        (
            "| stats count() by (a) extra",
            "unexpected text after the 'stats' pipe",
            23,
        ),
        (
            "| stats count() | stats count()",
            "only one of stats, timechart and top",
            18,
        ),
        ("| sort x", "'sort' needs a table", 2),
        ("| top 0 by a", "top: expected a number from 1 to 10000", 6),
        ("| top 5 a", "expected 'by'", 8),
        (
            "| stats count() | limit many",
            "limit: expected a number",
            24,
        ),
        ("| timechart span=0m count()", "invalid span '0m'", 17),
        ("| timechart span 5m count()", "expected '=' after span", 17),
        ("| stats count() by (1a)", "invalid field name '1a'", 20),
        ("| stats count() by (a..b)", "invalid field name 'a..b'", 20),
        ("| stats count() ; x", "unexpected ';' in a pipe", 16),
        (
            "| stats count() as a by (a)",
            "column 'a' is both a group and an aggregate",
            25,
        ),
    ] {
        let (got, at) = error(text);
        assert!(got.starts_with(message), "{text:?}: {got:?}");
        assert_eq!(at, position, "{text:?}: {got}");
    }
}

#[test]
fn no_input_panics() {
    let pieces = [
        "|",
        "stats",
        "count(",
        ")",
        "by",
        "(",
        ",",
        "p99(x)",
        "sort",
        "desc",
        "limit",
        "9",
        "top",
        "timechart",
        "span=",
        "1m",
        "\"",
        "as",
        " ",
    ];
    let mut seed = 7u64;
    for _ in 0..5000 {
        let mut text = String::new();
        for _ in 0..(seed % 9) {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            text.push_str(pieces[(seed >> 33) as usize % pieces.len()]);
            text.push(' ');
        }
        let _ = split(&text);
        seed = seed.wrapping_add(1);
    }
}
