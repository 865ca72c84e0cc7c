//! `loghound stats 'QUERY | …'`: a query's pipes as an aligned table (or
//! the API's JSON).

use std::io::Write;

use loghound_shared::api::{ColumnKind, StatsResponse, STATS_PATH};

use super::client::{agent, get_json};

/// What to compute.
#[derive(Debug, Clone)]
pub struct StatsArgs {
    /// Server base URL.
    pub server: String,
    /// A token with the `read` scope.
    pub token: String,
    /// The query with its pipes.
    pub query: String,
    /// Lower time bound, as the API takes it.
    pub from: Option<String>,
    /// Upper time bound.
    pub to: Option<String>,
    /// Print the API's answer as JSON instead of a table.
    pub json: bool,
    /// A private CA to trust instead of the default roots.
    pub ca_file: Option<std::path::PathBuf>,
}

/// Prints the table to stdout, and the match and group counts to stderr.
pub fn run(args: &StatsArgs) -> anyhow::Result<()> {
    let response: StatsResponse = get_json(
        &agent(args.ca_file.as_deref())?,
        &args.server,
        STATS_PATH,
        &args.token,
        &[
            ("q", Some(args.query.as_str())),
            ("from", args.from.as_deref()),
            ("to", args.to.as_deref()),
        ],
    )?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if args.json {
        serde_json::to_writer(&mut out, &response)?;
        writeln!(out)?;
    } else {
        write_table(&mut out, &response)?;
    }
    out.flush()?;
    eprintln!(
        "{} matching lines, {} groups{}",
        response.count,
        response.groups,
        if response.estimated.is_empty() {
            String::new()
        } else {
            format!(" (estimated: {})", response.estimated.join(", "))
        }
    );
    Ok(())
}

/// A cell as text: strings bare, `null` as `-`.
fn cell(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Null => "-".into(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The table with a header, columns padded to their widest cell; numbers
/// are right-aligned.
pub fn write_table(out: &mut impl Write, response: &StatsResponse) -> std::io::Result<()> {
    let header: Vec<String> = response.columns.iter().map(|c| c.name.clone()).collect();
    let rows: Vec<Vec<String>> = response
        .rows
        .iter()
        .map(|row| row.iter().map(cell).collect())
        .collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .chain(header.get(i))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let right = |i: usize| {
        response
            .columns
            .get(i)
            .is_some_and(|c| c.kind == ColumnKind::Aggregate)
    };
    let line = |out: &mut dyn Write, cells: &[String]| -> std::io::Result<()> {
        let mut text = String::new();
        for (i, (value, width)) in cells.iter().zip(&widths).enumerate() {
            if i > 0 {
                text.push_str("  ");
            }
            let pad = width.saturating_sub(value.chars().count());
            if right(i) {
                text.extend(std::iter::repeat_n(' ', pad));
                text.push_str(value);
            } else {
                text.push_str(value);
                text.extend(std::iter::repeat_n(' ', pad));
            }
        }
        writeln!(out, "{}", text.trim_end())
    };
    line(out, &header)?;
    for row in &rows {
        line(out, row)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use loghound_shared::api::Column;
    use serde_json::json;

    #[test]
    fn tables_align_groups_left_and_numbers_right() {
        let response = StatsResponse {
            columns: vec![
                Column {
                    name: "path".into(),
                    kind: ColumnKind::Group,
                },
                Column {
                    name: "count()".into(),
                    kind: ColumnKind::Aggregate,
                },
            ],
            rows: vec![
                vec![json!("/a"), json!(1200)],
                vec![json!("/longer"), json!(7)],
                vec![json!(null), json!(3.5)],
            ],
            count: 1210,
            groups: 3,
            interval_ms: None,
            estimated: Vec::new(),
        };
        let mut out = Vec::new();
        write_table(&mut out, &response).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "path     count()\n/a          1200\n/longer        7\n-            3.5\n"
        );
    }
}
