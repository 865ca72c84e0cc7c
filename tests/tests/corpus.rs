//! Real logs end to end: loghub samples appended to watched files while the
//! agent runs end up in the server exactly once, intact, and word searches
//! count what an independent count of the raw files says.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::Duration;

use loghound_tests::data::{append, complete_lines, count_lines_with_word, words};
use loghound_tests::http::{hit_message, hit_str};
use loghound_tests::paths::loghub_file;
use loghound_tests::{
    assert_count_stays, search, search_all, temp_dir, token, wait_for_count, Agent, Server,
};

const DATASETS: [&str; 5] = ["HDFS", "Linux", "OpenSSH", "Zookeeper", "Apache"];

/// Whole words of these samples (checked to occur as tokens, not only
/// inside longer words), spread over all five files.
const WORDS: [&str; 13] = [
    "block",
    "packetresponder",
    "session",
    "failure",
    "authentication",
    "password",
    "invalid",
    "warn",
    "connection",
    "error",
    "notice",
    "workerenv",
    "received",
];

/// Append sizes deliberately not aligned with line ends, so the agent sees
/// half-written lines and must wait for their `\n`.
const CHUNK_BYTES: usize = 37_113;

struct WatchedFile {
    path: PathBuf,
    contents: Vec<u8>,
    written: usize,
}

#[test]
fn corpus_lines_arrive_exactly_once_and_intact() {
    let tmp = temp_dir();
    let logs = tmp.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let server = Server::start(&tmp.path().join("server"));
    let ingest_token = token(server.data_dir(), &["ingest"]);
    let read_token = token(server.data_dir(), &["read"]);

    let mut files: Vec<WatchedFile> = DATASETS
        .iter()
        .map(|name| {
            let mut contents = std::fs::read(loghub_file(name)).unwrap();
            // Nine samples have no final newline; the agent only ships
            // complete lines, so complete the last one.
            if !contents.ends_with(b"\n") {
                contents.push(b'\n');
            }
            WatchedFile {
                path: logs.join(format!("{}.log", name.to_lowercase())),
                contents,
                written: 0,
            }
        })
        .collect();
    let all_lines: Vec<String> = files
        .iter()
        .flat_map(|file| complete_lines(&file.contents))
        .collect();
    assert_eq!(
        all_lines.len(),
        5 * 2000,
        "each loghub sample has 2000 lines"
    );

    // Part of one file exists before the agent starts: it must be read from
    // the beginning.
    let head = files[0].contents.len() / 4;
    append(&files[0].path, &files[0].contents[..head]);
    files[0].written = head;

    let glob = format!("{}/*.log", logs.display());
    let mut agent = Agent::start(
        &server.url(),
        &ingest_token,
        &tmp.path().join("agent"),
        &[glob],
    );
    while files.iter().any(|file| file.written < file.contents.len()) {
        for file in files.iter_mut() {
            let end = (file.written + CHUNK_BYTES).min(file.contents.len());
            append(&file.path, &file.contents[file.written..end]);
            file.written = end;
        }
        std::thread::sleep(Duration::from_millis(100));
    }

    let url = server.url();
    wait_for_count(
        &url,
        &read_token,
        "",
        all_lines.len() as u64,
        Duration::from_secs(60),
    );
    assert_count_stays(
        &url,
        &read_token,
        "",
        all_lines.len() as u64,
        Duration::from_secs(3),
    );
    agent.assert_running();

    check_word_counts(&url, &read_token, &all_lines);
    check_every_line_once(&url, &read_token, &files);
    check_unique_lines(&url, &read_token, &all_lines);
}

/// A search for a word counts the lines that contain it as a word, in any
/// case; query terms are case-insensitive and ANDed.
fn check_word_counts(url: &str, read_token: &str, all_lines: &[String]) {
    let mut mismatches = Vec::new();
    for word in WORDS {
        let expected = count_lines_with_word(all_lines, word);
        assert!(expected > 0, "{word:?} should occur in the corpus");
        let (count, hits) = search(url, read_token, word);
        if count != expected {
            mismatches.push(format!("{word:?}: search count {count}, lines {expected}"));
        }
        for hit in &hits {
            let message = hit_message(hit);
            assert!(
                words(message).any(|w| w == word),
                "hit for {word:?} does not contain the word: {message:?}"
            );
        }
    }
    let upper = search(url, read_token, "ERROR").0;
    let expected = count_lines_with_word(all_lines, "error");
    if upper != expected {
        mismatches.push(format!("\"ERROR\": search count {upper}, lines {expected}"));
    }
    let both = all_lines
        .iter()
        .filter(|line| {
            let found: Vec<String> = words(line).collect();
            found.iter().any(|w| w == "authentication") && found.iter().any(|w| w == "failure")
        })
        .count() as u64;
    let and_count = search(url, read_token, "authentication failure").0;
    if and_count != both {
        mismatches.push(format!(
            "\"authentication failure\" (AND): search count {and_count}, lines {both}"
        ));
    }
    assert!(
        mismatches.is_empty(),
        "word counts differ:\n{}",
        mismatches.join("\n")
    );
}

/// Paging through everything yields each written line exactly once, with
/// its `\r` removed and nothing else changed, and with the path of a file
/// that holds it as its source.
fn check_every_line_once(url: &str, read_token: &str, files: &[WatchedFile]) {
    let mut expected: BTreeMap<String, i64> = BTreeMap::new();
    let mut file_names_by_line: HashMap<String, Vec<&str>> = HashMap::new();
    for file in files {
        let file_name = file.path.file_name().unwrap().to_str().unwrap();
        for line in complete_lines(&file.contents) {
            *expected.entry(line.clone()).or_default() += 1;
            file_names_by_line.entry(line).or_default().push(file_name);
        }
    }
    let hits = search_all(url, read_token, "");
    for hit in &hits {
        let message = hit_message(hit);
        *expected.entry(message.to_string()).or_default() -= 1;
        if let Some(file_names) = file_names_by_line.get(message) {
            let source = hit_str(hit, "source").unwrap_or_default();
            assert!(
                file_names.iter().any(|name| source.ends_with(name)),
                "hit {message:?} has source {source:?}, expected the path of one of {file_names:?}"
            );
        }
    }
    let wrong: Vec<String> = expected
        .iter()
        .filter(|(_, difference)| **difference != 0)
        .take(10)
        .map(|(line, difference)| match difference {
            d if *d > 0 => format!("missing {d}x: {line:?}"),
            d => format!("extra {}x: {line:?}", -d),
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "paged hits ({}) differ from the written lines, first differences:\n{}",
        hits.len(),
        wrong.join("\n")
    );
}

/// A line found by a word that occurs in no other line comes back as the
/// only hit, verbatim (minus `\r`).
fn check_unique_lines(url: &str, read_token: &str, all_lines: &[String]) {
    let mut line_count_by_word: HashMap<String, usize> = HashMap::new();
    for line in all_lines {
        let mut seen: Vec<String> = words(line).collect();
        seen.sort();
        seen.dedup();
        for word in seen {
            *line_count_by_word.entry(word).or_default() += 1;
        }
    }
    // A few lines, spread over the files, each with a word of its own.
    let unique: Vec<(&String, String)> = all_lines
        .iter()
        .step_by(997)
        .filter_map(|line| {
            words(line)
                .find(|w| w.len() >= 4 && line_count_by_word[w] == 1)
                .map(|w| (line, w))
        })
        .collect();
    assert!(
        unique.len() >= 3,
        "the corpus has lines with words of their own"
    );
    for (line, word) in unique {
        let (count, hits) = search(url, read_token, &word);
        assert_eq!(count, 1, "{word:?} occurs in one line only: {line:?}");
        assert_eq!(
            hit_message(&hits[0]),
            line.as_str(),
            "message of the hit for {word:?}"
        );
    }
}
