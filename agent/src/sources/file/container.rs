//! Container log files: Docker's json-file lines
//! (`{"log":"…\n","stream":"stdout","time":"…"}`) and the CRI format of
//! containerd and CRI-O (`2026-01-02T03:04:05.123456789Z stdout F text`)
//! decoded into the container's own lines, with partial lines (CRI's `P`
//! tag, a Docker `log` without its `\n`: the runtime cuts long lines into
//! 16 KiB parts) joined back into one event.
//!
//! A file is a container log when its input says `format = "docker"` or
//! `"cri"`, or, with no format (or `auto`), when its path lies under a
//! `log/pods/`, `log/containers/` or `docker/containers/` directory (the
//! kubelet's and Docker's layouts); there each line is recognised by its
//! first byte (`{`: Docker, else CRI), since both runtimes' files end up
//! under `/var/log/pods`. The path also names the container: kubelet's
//! `pods/<namespace>_<pod>_<uid>/<container>/<n>.log`, its
//! `containers/<pod>_<namespace>_<container>-<id>.log` links, and Docker's
//! `containers/<id>/<id>-json.log`; these become the fields `namespace`,
//! `pod`, `pod_uid`, `container` and `container_id`, with `stream`
//! (`stdout`/`stderr`) from the line, and the container's name is the
//! `app` unless the input tags one.
//!
//! Joining keeps the file source's rules: an event spans the byte range of
//! its parts, nothing is emitted past a held part (so the checkpoint never
//! passes it), and a group is shipped incomplete (tagged
//! `partial = "incomplete"`) when a part of the other stream comes between
//! its parts, when it reaches `max_line_bytes` (the rest of it is skipped
//! and the event marked truncated), when no part came for
//! [`PARTIAL_FLUSH`], or when its file is released. A line that is not in
//! the expected format is shipped as it is, tagged
//! `container_format = "invalid"`.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::Value;

use super::lines::RawLine;
use super::multiline::Joined;

/// A group with no new part for this long is shipped incomplete.
pub(crate) const PARTIAL_FLUSH: Duration = Duration::from_secs(2);
/// Tag on an event whose parts were not all joined.
pub(crate) const PARTIAL_TAG: &str = "partial";
/// Tag on a line that is not in the container format.
pub(crate) const INVALID_TAG: &str = "container_format";

/// How a file's lines are decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ContainerFormat {
    Docker,
    Cri,
    /// Per line: Docker when it starts with `{`, else CRI.
    Sniff,
}

impl ContainerFormat {
    /// The format an input's `format` names, if it is a container format.
    pub(crate) fn from_config(format: &str) -> Option<Self> {
        match format {
            "docker" => Some(ContainerFormat::Docker),
            "cri" => Some(ContainerFormat::Cri),
            _ => None,
        }
    }
}

/// The container format of the file at `path`: the input's, or, when the
/// input names none (or `auto`), the one its location implies.
pub(crate) fn format_for(
    configured: Option<ContainerFormat>,
    server_hint: Option<&str>,
    path: &Path,
) -> Option<ContainerFormat> {
    if configured.is_some() {
        return configured;
    }
    if server_hint.is_some_and(|hint| hint != "auto") {
        return None;
    }
    let text = path.to_string_lossy();
    ["/log/pods/", "/log/containers/", "/docker/containers/"]
        .iter()
        .any(|dir| text.contains(dir))
        .then_some(ContainerFormat::Sniff)
}

/// What a container log's path says about its container.
pub(crate) fn path_fields(path: &Path) -> BTreeMap<String, Value> {
    let mut fields = BTreeMap::new();
    let parts: Vec<String> = path
        .iter()
        .map(|part| part.to_string_lossy().into_owned())
        .collect();
    let mut put = |name: &str, value: &str| {
        if !value.is_empty() {
            fields.insert(name.to_string(), Value::from(value));
        }
    };
    let position = |name: &str| parts.iter().rposition(|part| part == name);
    if let Some(pods) = position("pods").filter(|&i| i + 2 < parts.len()) {
        let pod_dir: Vec<&str> = parts[pods + 1].split('_').collect();
        if let [namespace, pod, uid] = pod_dir[..] {
            put("namespace", namespace);
            put("pod", pod);
            put("pod_uid", uid);
            put("container", &parts[pods + 2]);
        }
    } else if let Some(containers) = position("containers").filter(|&i| i + 1 < parts.len()) {
        let rest = &parts[containers + 1..];
        let name = rest[0].strip_suffix(".log").unwrap_or(&rest[0]);
        let kubelet: Vec<&str> = name.split('_').collect();
        match (&kubelet[..], rest.len()) {
            ([pod, namespace, container_and_id], 1) => {
                put("pod", pod);
                put("namespace", namespace);
                match container_and_id.rsplit_once('-') {
                    Some((container, id)) if is_container_id(id) => {
                        put("container", container);
                        put("container_id", id);
                    }
                    _ => put("container", container_and_id),
                }
            }
            // Docker: containers/<id>/<id>-json.log
            (_, 2) if is_container_id(&rest[0]) => put("container_id", &rest[0]),
            _ => {}
        }
    }
    fields
}

fn is_container_id(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// One decoded line of a container log.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Part {
    time_ms: Option<i64>,
    stream: String,
    message: Vec<u8>,
    /// More parts of the same line follow.
    partial: bool,
}

#[derive(Deserialize)]
struct DockerLine {
    log: String,
    #[serde(default)]
    stream: Option<String>,
    #[serde(default)]
    time: Option<String>,
}

fn decode(format: ContainerFormat, bytes: &[u8]) -> Option<Part> {
    let format = match format {
        ContainerFormat::Sniff if bytes.first() == Some(&b'{') => ContainerFormat::Docker,
        ContainerFormat::Sniff => ContainerFormat::Cri,
        other => other,
    };
    match format {
        ContainerFormat::Docker => {
            let line: DockerLine = serde_json::from_slice(bytes).ok()?;
            let mut message = line.log.into_bytes();
            let partial = message.last() != Some(&b'\n');
            if !partial {
                message.pop();
                if message.last() == Some(&b'\r') {
                    message.pop();
                }
            }
            Some(Part {
                time_ms: line.time.as_deref().and_then(rfc3339_ms),
                stream: line.stream.unwrap_or_default(),
                message,
                partial,
            })
        }
        ContainerFormat::Cri | ContainerFormat::Sniff => {
            let mut fields = bytes.splitn(4, |&b| b == b' ');
            let time = std::str::from_utf8(fields.next()?).ok()?;
            let time_ms = rfc3339_ms(time)?;
            let stream = std::str::from_utf8(fields.next()?).ok()?.to_string();
            let tag = fields.next()?;
            let partial = match tag.split(|&b| b == b':').next()? {
                b"P" => true,
                b"F" => false,
                _ => return None,
            };
            Some(Part {
                time_ms: Some(time_ms),
                stream,
                message: fields.next().unwrap_or_default().to_vec(),
                partial,
            })
        }
    }
}

/// Milliseconds since the epoch of an RFC 3339 time
/// (`2026-01-02T03:04:05.123456789Z`, or with `+01:00`).
pub(crate) fn rfc3339_ms(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    let number = |range: std::ops::Range<usize>| -> Option<i64> {
        let digits = bytes.get(range)?;
        if !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(digits).ok()?.parse().ok()
    };
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    if bytes.get(4) != Some(&b'-')
        || bytes.get(7) != Some(&b'-')
        || !matches!(bytes.get(10), Some(b'T' | b't' | b' '))
        || bytes.get(13) != Some(&b':')
        || bytes.get(16) != Some(&b':')
        || !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut position = 19;
    let mut millis = 0;
    if bytes.get(position) == Some(&b'.') {
        position += 1;
        let start = position;
        while bytes.get(position).is_some_and(u8::is_ascii_digit) {
            position += 1;
        }
        if position == start {
            return None;
        }
        // The first three digits, padded with zeros: `.5` is 500 ms.
        for index in 0..3 {
            let digit = bytes
                .get(start + index)
                .filter(|_| start + index < position);
            millis = millis * 10 + digit.map_or(0, |d| i64::from(d - b'0'));
        }
    }
    let offset_minutes = match bytes.get(position)? {
        b'Z' | b'z' if position + 1 == bytes.len() => 0,
        sign @ (b'+' | b'-') if position + 6 == bytes.len() => {
            let hours = number(position + 1..position + 3)?;
            let minutes = number(position + 4..position + 6)?;
            let total = hours * 60 + minutes;
            if *sign == b'+' {
                total
            } else {
                -total
            }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_minutes * 60;
    Some(seconds * 1000 + millis)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// What an event of a container log carries besides its line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ContainerMeta {
    pub(crate) time_ms: Option<i64>,
    /// The path's fields plus `stream`.
    pub(crate) fields: BTreeMap<String, Value>,
    /// Tags to add: `partial` or `container_format`.
    pub(crate) tags: Vec<(&'static str, &'static str)>,
}

#[derive(Debug)]
struct Group {
    line: RawLine,
    part: Part,
    last_part_at: Instant,
}

/// Decodes one container log's lines and joins partial ones; the same
/// calls as the multi-line [`super::multiline::Joiner`].
#[derive(Debug)]
pub(crate) struct ContainerJoiner {
    format: ContainerFormat,
    path_fields: Arc<BTreeMap<String, Value>>,
    max_bytes: usize,
    group: Option<Group>,
}

impl ContainerJoiner {
    pub(crate) fn new(format: ContainerFormat, path: &Path, max_bytes: usize) -> Self {
        Self {
            format,
            path_fields: Arc::new(path_fields(path)),
            max_bytes,
            group: None,
        }
    }

    fn meta(&self, part: Option<&Part>, tags: Vec<(&'static str, &'static str)>) -> ContainerMeta {
        let mut fields = (*self.path_fields).clone();
        if let Some(part) = part.filter(|part| !part.stream.is_empty()) {
            fields.insert("stream".into(), Value::from(part.stream.as_str()));
        }
        ContainerMeta {
            time_ms: part.and_then(|part| part.time_ms),
            fields,
            tags,
        }
    }

    fn ship(&self, mut line: RawLine, part: Part, complete: bool, out: &mut Vec<Joined>) {
        let tags = if complete {
            Vec::new()
        } else {
            vec![(PARTIAL_TAG, "incomplete")]
        };
        let meta = self.meta(Some(&part), tags);
        line.bytes = part.message;
        out.push(Joined {
            line,
            split: None,
            container: Some(Box::new(meta)),
        });
    }

    /// Takes the file's next line, read at `now`; events that are complete
    /// go to `out`.
    pub(crate) fn push(&mut self, line: RawLine, now: Instant, out: &mut Vec<Joined>) {
        let Some(part) = (!line.truncated)
            .then(|| decode(self.format, &line.bytes))
            .flatten()
        else {
            self.flush(out);
            let meta = self.meta(None, vec![(INVALID_TAG, "invalid")]);
            out.push(Joined {
                line,
                split: None,
                container: Some(Box::new(meta)),
            });
            return;
        };
        if self
            .group
            .as_ref()
            .is_some_and(|group| group.part.stream != part.stream)
        {
            self.flush(out);
        }
        let Some(mut group) = self.group.take() else {
            if part.partial {
                self.group = Some(Group {
                    line,
                    part,
                    last_part_at: now,
                });
            } else {
                self.ship(line, part, true, out);
            }
            return;
        };
        let room = self.max_bytes.saturating_sub(group.part.message.len());
        if part.message.len() > room {
            group.line.truncated = true;
        }
        let taken = &part.message[..part.message.len().min(room)];
        group.part.message.extend_from_slice(taken);
        group.line.end_offset = line.end_offset;
        group.last_part_at = now;
        if part.partial {
            self.group = Some(group);
        } else {
            let truncated = group.line.truncated;
            let mut joined = group.line;
            joined.truncated = truncated;
            self.ship(joined, group.part, true, out);
        }
    }

    /// When the held partial line is due to be shipped incomplete.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.group
            .as_ref()
            .map(|group| group.last_part_at + PARTIAL_FLUSH)
    }

    pub(crate) fn flush_if_due(&mut self, now: Instant, out: &mut Vec<Joined>) {
        if self.deadline().is_some_and(|deadline| deadline <= now) {
            self.flush(out);
        }
    }

    /// Ships the held partial line, incomplete.
    pub(crate) fn flush(&mut self, out: &mut Vec<Joined>) {
        if let Some(group) = self.group.take() {
            self.ship(group.line, group.part, false, out);
        }
    }

    pub(crate) fn is_idle(&self) -> bool {
        self.group.is_none()
    }
}

#[cfg(test)]
mod tests {
    use loghound_shared::ByteOffset;

    use super::*;

    fn lines(text: &str) -> Vec<RawLine> {
        let mut offset = 0;
        text.split_inclusive('\n')
            .map(|line| {
                let start = offset;
                offset += line.len() as u64;
                RawLine {
                    offset: ByteOffset(start),
                    end_offset: ByteOffset(offset),
                    bytes: line.trim_end_matches('\n').as_bytes().to_vec(),
                    truncated: false,
                }
            })
            .collect()
    }

    fn run(format: ContainerFormat, path: &str, text: &str, max: usize) -> Vec<Joined> {
        let mut joiner = ContainerJoiner::new(format, Path::new(path), max);
        let mut out = Vec::new();
        let now = Instant::now();
        for line in lines(text) {
            joiner.push(line, now, &mut out);
        }
        joiner.flush(&mut out);
        out
    }

    fn text(joined: &Joined) -> String {
        String::from_utf8_lossy(&joined.line.bytes).into_owned()
    }

    fn meta(joined: &Joined) -> &ContainerMeta {
        joined.container.as_deref().expect("container meta")
    }

    #[test]
    fn rfc3339_times_with_fractions_and_offsets() {
        assert_eq!(rfc3339_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            rfc3339_ms("2026-01-02T03:04:05.123456789Z"),
            Some(1_767_323_045_123)
        );
        assert_eq!(
            rfc3339_ms("2026-01-02T04:04:05.1+01:00"),
            Some(1_767_323_045_100)
        );
        assert_eq!(
            rfc3339_ms("2000-02-29T23:59:59-00:30"),
            Some(951_870_599_000)
        );
        for bad in [
            "",
            "2026-01-02",
            "2026-13-02T03:04:05Z",
            "2026-01-02T03:04:05",
            "2026-01-02T03:04:05.Z",
            "2026-01-02T03:04:05Zjunk",
            "2026-01-02T03:04:05+0100",
        ] {
            assert_eq!(rfc3339_ms(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn cri_partial_lines_are_joined_over_their_byte_range() {
        let text = "2026-01-02T03:04:05.000000001Z stdout P first \n\
                    2026-01-02T03:04:05.000000002Z stdout P second \n\
                    2026-01-02T03:04:05.000000003Z stdout F third\n\
                    2026-01-02T03:04:06.5Z stderr F oops\n\
                    2026-01-02T03:04:07Z stdout F \n";
        let out = run(
            ContainerFormat::Cri,
            "/var/log/pods/shop_web-7d9f_0e1f-22/nginx/0.log",
            text,
            1 << 20,
        );
        assert_eq!(out.len(), 3);
        assert_eq!(text_of(&out[0]), "first second third");
        assert_eq!(out[0].line.offset, ByteOffset(0));
        let third_end = text.find("oops").unwrap() - "2026-01-02T03:04:06.5Z stderr F ".len();
        assert_eq!(out[0].line.end_offset, ByteOffset(third_end as u64));
        assert_eq!(meta(&out[0]).time_ms, Some(1_767_323_045_000));
        assert_eq!(meta(&out[0]).fields["stream"], "stdout");
        assert_eq!(meta(&out[0]).fields["namespace"], "shop");
        assert_eq!(meta(&out[0]).fields["pod"], "web-7d9f");
        assert_eq!(meta(&out[0]).fields["pod_uid"], "0e1f-22");
        assert_eq!(meta(&out[0]).fields["container"], "nginx");
        assert_eq!(text_of(&out[1]), "oops");
        assert_eq!(meta(&out[1]).fields["stream"], "stderr");
        assert_eq!(meta(&out[1]).time_ms, Some(1_767_323_046_500));
        assert_eq!(text_of(&out[2]), "", "an empty line stays an event");
        assert!(out.iter().all(|joined| meta(joined).tags.is_empty()));
    }

    fn text_of(joined: &Joined) -> String {
        text(joined)
    }

    #[test]
    fn docker_lines_without_newline_are_parts() {
        let text = concat!(
            r#"{"log":"GET /a 200\n","stream":"stdout","time":"2026-01-02T03:04:05.5Z"}"#,
            "\n",
            r#"{"log":"long ","stream":"stderr","time":"2026-01-02T03:04:06Z"}"#,
            "\n",
            r#"{"log":"line\r\n","stream":"stderr","time":"2026-01-02T03:04:06Z"}"#,
            "\n",
        );
        let id = "a".repeat(64);
        let out = run(
            ContainerFormat::Docker,
            &format!("/var/lib/docker/containers/{id}/{id}-json.log"),
            text,
            1 << 20,
        );
        assert_eq!(out.len(), 2);
        assert_eq!(text_of(&out[0]), "GET /a 200");
        assert_eq!(text_of(&out[1]), "long line");
        assert_eq!(meta(&out[1]).fields["container_id"], id.as_str());
        assert_eq!(meta(&out[1]).fields["stream"], "stderr");
        assert_eq!(out[1].line.end_offset, ByteOffset(text.len() as u64));
    }

    #[test]
    fn interleaved_streams_and_the_size_cap_ship_parts_tagged() {
        let text = "2026-01-02T03:04:05Z stdout P aaaa\n\
                    2026-01-02T03:04:05Z stderr F err\n\
                    2026-01-02T03:04:05Z stdout F bbbb\n\
                    2026-01-02T03:04:05Z stdout P 123456\n\
                    2026-01-02T03:04:05Z stdout P 789\n\
                    2026-01-02T03:04:05Z stdout F end\n";
        let out = run(ContainerFormat::Sniff, "/tmp/x.log", text, 8);
        let texts: Vec<String> = out.iter().map(text_of).collect();
        assert_eq!(texts, ["aaaa", "err", "bbbb", "12345678"]);
        assert_eq!(meta(&out[0]).tags, [(PARTIAL_TAG, "incomplete")]);
        assert!(out[3].line.truncated);
        // Ranges tile the file: nothing lost, nothing twice.
        for pair in out.windows(2) {
            assert_eq!(pair[0].line.end_offset, pair[1].line.offset);
        }
        assert_eq!(out[3].line.end_offset, ByteOffset(text.len() as u64));
    }

    #[test]
    fn lines_not_in_the_format_are_shipped_as_they_are() {
        let text = "not a cri line\n{\"log\":\"ok\\n\"}\n2026-01-02T03:04:05Z stdout X what\n";
        let out = run(ContainerFormat::Sniff, "/tmp/x.log", text, 1 << 20);
        assert_eq!(out.len(), 3);
        assert_eq!(text_of(&out[0]), "not a cri line");
        assert_eq!(meta(&out[0]).tags, [(INVALID_TAG, "invalid")]);
        assert_eq!(text_of(&out[1]), "ok");
        assert!(meta(&out[1]).tags.is_empty());
        assert_eq!(meta(&out[2]).tags, [(INVALID_TAG, "invalid")]);
    }

    #[test]
    fn paths_name_the_container() {
        let id = "0123456789abcdef".repeat(4);
        let link = path_fields(Path::new(&format!(
            "/var/log/containers/web-7d9f_shop_nginx-{id}.log"
        )));
        assert_eq!(link["pod"], "web-7d9f");
        assert_eq!(link["namespace"], "shop");
        assert_eq!(link["container"], "nginx");
        assert_eq!(link["container_id"], id.as_str());
        let rotated = path_fields(Path::new(
            "/var/log/pods/kube-system_coredns-1_uid/coredns/3.log.20260102-030405",
        ));
        assert_eq!(rotated["container"], "coredns");
        assert_eq!(rotated["namespace"], "kube-system");
        assert!(path_fields(Path::new("/var/log/syslog")).is_empty());
        assert_eq!(
            format_for(None, None, Path::new("/var/log/pods/a_b_c/d/0.log")),
            Some(ContainerFormat::Sniff)
        );
        assert_eq!(
            format_for(None, Some("json"), Path::new("/var/log/pods/a_b_c/d/0.log")),
            None
        );
        assert_eq!(format_for(None, None, Path::new("/var/log/app.log")), None);
        assert_eq!(
            format_for(Some(ContainerFormat::Cri), None, Path::new("/x.log")),
            Some(ContainerFormat::Cri)
        );
    }
}
