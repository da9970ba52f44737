//! The Prometheus text file that node_exporter's textfile collector reads: when each runbook last
//! finished on each inventory, whether it succeeded, and when it and its backup last succeeded.
//!
//! Alerts are on the age of the last success, so a failed run keeps the previous success values.
//! One file holds the series of every runbook and inventory written to it; a run replaces only
//! its own. [`render`] is pure and never fails on a garbled previous file; [`update`] reads the
//! file and replaces it atomically, so the collector never reads a half-written one.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// What one finished run contributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunSample {
    /// The runbook's name: label `runbook`.
    pub runbook: String,
    /// The inventory's (cluster's) name: label `inventory`.
    pub inventory: String,
    /// When the run finished.
    pub finished: SystemTime,
    /// Whether it succeeded.
    pub succeeded: bool,
    /// The snapshot it saved: `Some` when the run succeeded and saved one.
    pub backup: Option<BackupSample>,
}

/// The snapshot a successful run saved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackupSample {
    /// When the snapshot was taken.
    pub taken: SystemTime,
    /// Its size in bytes.
    pub size_bytes: u64,
    /// The etcd revision it holds.
    pub revision: i64,
}

/// Why the text file could not be updated.
#[derive(Debug, thiserror::Error)]
#[error("failed to {what} metrics file {}", path.display())]
pub struct TextfileError {
    /// What was being done.
    pub what: &'static str,
    /// The file.
    pub path: PathBuf,
    /// Why.
    #[source]
    pub source: io::Error,
}

/// The prefix of every metric etcdrill writes; other metrics in the file are dropped.
const PREFIX: &str = "etcdrill_";

/// The metrics etcdrill writes, in the order they appear in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Metric {
    RunFinished,
    RunSuccess,
    RunSuccessTime,
    BackupTime,
    BackupSize,
    BackupRevision,
}

impl Metric {
    const ALL: [Metric; 6] = [
        Metric::RunFinished,
        Metric::RunSuccess,
        Metric::RunSuccessTime,
        Metric::BackupTime,
        Metric::BackupSize,
        Metric::BackupRevision,
    ];

    fn name(self) -> &'static str {
        match self {
            Metric::RunFinished => "etcdrill_run_last_finished_timestamp_seconds",
            Metric::RunSuccess => "etcdrill_run_last_success",
            Metric::RunSuccessTime => "etcdrill_run_last_success_timestamp_seconds",
            Metric::BackupTime => "etcdrill_backup_last_success_timestamp_seconds",
            Metric::BackupSize => "etcdrill_backup_last_success_size_bytes",
            Metric::BackupRevision => "etcdrill_backup_last_success_revision",
        }
    }

    fn help(self) -> &'static str {
        match self {
            Metric::RunFinished => {
                "When the last run of the runbook on the inventory finished, in seconds since the Unix epoch."
            }
            Metric::RunSuccess => {
                "1 if the last run of the runbook on the inventory succeeded, 0 if not."
            }
            Metric::RunSuccessTime => {
                "When the last successful run of the runbook on the inventory finished, in seconds since the Unix epoch."
            }
            Metric::BackupTime => {
                "When the snapshot of the last successful backup was taken, in seconds since the Unix epoch."
            }
            Metric::BackupSize => {
                "The size of the snapshot of the last successful backup, in bytes."
            }
            Metric::BackupRevision => {
                "The etcd revision of the snapshot of the last successful backup."
            }
        }
    }

    fn from_name(name: &str) -> Option<Metric> {
        Metric::ALL.into_iter().find(|metric| metric.name() == name)
    }
}

/// A label set as (name, value) pairs: `runbook` first, `inventory` second, others by name.
type Labels = Vec<(String, String)>;

/// Renders the text file: `previous` (the file's current content) with `sample` applied.
///
/// Every etcdrill series of `previous` is kept unless `sample` replaces it: the finished time and
/// success flag always are, the success time only on success, the backup values only on success
/// with a backup. Series are sorted by metric, then labels; series of etcdrill metrics this
/// version does not know follow verbatim, with their `# HELP` and `# TYPE` lines. Comments, blank
/// lines, other metrics and lines that do not parse are dropped.
pub fn render(previous: &str, sample: &RunSample) -> String {
    let Previous {
        mut series,
        unknown,
    } = Previous::parse(previous);
    let labels: Labels = vec![
        ("runbook".to_owned(), sample.runbook.clone()),
        ("inventory".to_owned(), sample.inventory.clone()),
    ];
    let mut set = |metric: Metric, value: String| {
        series.insert((metric, labels.clone()), value);
    };
    set(Metric::RunFinished, seconds(sample.finished));
    set(Metric::RunSuccess, u8::from(sample.succeeded).to_string());
    if sample.succeeded {
        set(Metric::RunSuccessTime, seconds(sample.finished));
        if let Some(backup) = &sample.backup {
            set(Metric::BackupTime, seconds(backup.taken));
            set(Metric::BackupSize, backup.size_bytes.to_string());
            set(Metric::BackupRevision, backup.revision.to_string());
        }
    }

    let mut out = String::new();
    let mut current = None;
    for ((metric, labels), value) in &series {
        if current != Some(*metric) {
            current = Some(*metric);
            let _ = writeln!(out, "# HELP {} {}", metric.name(), metric.help());
            let _ = writeln!(out, "# TYPE {} gauge", metric.name());
        }
        out.push_str(metric.name());
        write_labels(&mut out, labels);
        let _ = writeln!(out, " {value}");
    }
    for line in unknown {
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Applies `sample` to the text file at `path` (missing: empty) and replaces it atomically.
///
/// The new content goes to a hidden `.part` file in the same directory (see
/// [`crate::atomic_file`]), which the collector ignores (it reads `*.prom`), is synced, then
/// renamed over `path`.
pub fn update(path: &Path, sample: &RunSample) -> Result<(), TextfileError> {
    let previous = match fs::read(path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(source) if source.kind() == io::ErrorKind::NotFound => String::new(),
        Err(source) => return Err(error("read", path)(source)),
    };
    let text = render(&previous, sample);
    if path.file_name().is_none() {
        let source = io::Error::new(io::ErrorKind::InvalidInput, "the path does not name a file");
        return Err(error("write", path)(source));
    }
    crate::atomic_file::write(path, text.as_bytes()).map_err(error("write", path))
}

/// Makes the error of failing to do `what` with `path`.
fn error<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> TextfileError + 'a {
    move |source| TextfileError {
        what,
        path: path.to_owned(),
        source,
    }
}

/// What `render` keeps of the previous file.
struct Previous<'a> {
    /// The series of the metrics etcdrill knows, to their values.
    series: BTreeMap<(Metric, Labels), String>,
    /// Lines of etcdrill metrics this version does not know, verbatim, in order.
    unknown: Vec<&'a str>,
}

/// A line of an unknown metric already kept, so that none is kept twice.
#[derive(PartialEq, Eq, Hash)]
enum Kept<'a> {
    Comment(&'a str, &'a str),
    Series(&'a str, Labels),
}

impl<'a> Previous<'a> {
    fn parse(text: &'a str) -> Self {
        let mut series = BTreeMap::new();
        let mut unknown = Vec::new();
        let mut kept = HashSet::new();
        let is_unknown = |name: &str| name.starts_with(PREFIX) && Metric::from_name(name).is_none();
        for line in text.lines() {
            let trimmed = line.trim();
            if let Some(comment) = trimmed.strip_prefix('#') {
                let mut words = comment.split_whitespace();
                if let (Some(kind @ ("HELP" | "TYPE")), Some(name)) = (words.next(), words.next()) {
                    if is_unknown(name) && kept.insert(Kept::Comment(kind, name)) {
                        unknown.push(line);
                    }
                }
                continue;
            }
            let Some(sample) = parse_sample(trimmed) else {
                continue;
            };
            if let Some(metric) = Metric::from_name(sample.name) {
                series.insert((metric, sample.labels), sample.value.to_owned());
            } else if is_unknown(sample.name)
                && kept.insert(Kept::Series(sample.name, sample.labels))
            {
                unknown.push(line);
            }
        }
        Previous { series, unknown }
    }
}

/// One sample line, parsed.
struct Sample<'a> {
    name: &'a str,
    labels: Labels,
    value: &'a str,
}

/// Parses `name{label="value",...} value [timestamp]`; `None` if the line is not one.
fn parse_sample(line: &str) -> Option<Sample<'_>> {
    let name_end = line
        .find(|c: char| !is_name_char(c, true))
        .unwrap_or(line.len());
    let name = &line[..name_end];
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let mut rest = line[name_end..].trim_start();
    let mut labels = Vec::new();
    if let Some(after) = rest.strip_prefix('{') {
        (labels, rest) = parse_labels(after)?;
    }
    let mut tokens = rest.split_whitespace();
    let value = tokens.next()?;
    value.parse::<f64>().ok()?;
    // A timestamp is accepted, and dropped: the collector refuses them.
    if let Some(timestamp) = tokens.next() {
        timestamp.parse::<i64>().ok()?;
    }
    if tokens.next().is_some() || !canonical(&mut labels) {
        return None;
    }
    Some(Sample {
        name,
        labels,
        value,
    })
}

/// Parses the label set after its `{`, and returns it with the text after its `}`.
fn parse_labels(text: &str) -> Option<(Labels, &str)> {
    let mut labels = Vec::new();
    let mut rest = text;
    loop {
        rest = rest.trim_start();
        if let Some(after) = rest.strip_prefix('}') {
            return Some((labels, after));
        }
        let name_end = rest
            .find(|c: char| !is_name_char(c, false))
            .unwrap_or(rest.len());
        let name = &rest[..name_end];
        if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
            return None;
        }
        rest = rest[name_end..].trim_start().strip_prefix('=')?;
        rest = rest.trim_start().strip_prefix('"')?;
        let (value, after) = parse_label_value(rest)?;
        labels.push((name.to_owned(), value));
        rest = after.trim_start();
        if let Some(after) = rest.strip_prefix(',') {
            rest = after;
        } else if !rest.starts_with('}') {
            return None;
        }
    }
}

/// Parses an escaped label value after its opening `"`, and returns it with the text after its
/// closing `"`.
fn parse_label_value(text: &str) -> Option<(String, &str)> {
    let mut value = String::new();
    let mut chars = text.char_indices();
    while let Some((at, c)) = chars.next() {
        match c {
            '"' => return Some((value, &text[at + 1..])),
            '\\' => match chars.next()?.1 {
                '\\' => value.push('\\'),
                '"' => value.push('"'),
                'n' => value.push('\n'),
                _ => return None,
            },
            c => value.push(c),
        }
    }
    None
}

/// Whether `c` may be in a metric name (`colon`) or a label name, other than first.
fn is_name_char(c: char, colon: bool) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || (colon && c == ':')
}

/// Puts `labels` in their canonical order; `false` if a label name is repeated.
fn canonical(labels: &mut Labels) -> bool {
    let rank = |name: &str| match name {
        "runbook" => 0,
        "inventory" => 1,
        _ => 2,
    };
    labels.sort_by(|(a, _), (b, _)| rank(a).cmp(&rank(b)).then_with(|| a.cmp(b)));
    labels.windows(2).all(|pair| pair[0].0 != pair[1].0)
}

/// Writes `{name="value",...}`, values escaped; nothing for an empty set.
fn write_labels(out: &mut String, labels: &Labels) {
    if labels.is_empty() {
        return;
    }
    out.push('{');
    for (index, (name, value)) in labels.iter().enumerate() {
        if index > 0 {
            out.push(',');
        }
        out.push_str(name);
        out.push_str("=\"");
        for c in value.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    out.push('}');
}

/// Seconds since the Unix epoch with millisecond precision, like `1764115200.123`.
fn seconds(time: SystemTime) -> String {
    let (sign, offset) = match time.duration_since(UNIX_EPOCH) {
        Ok(after) => ("", after),
        Err(before) => ("-", before.duration()),
    };
    format!("{sign}{}.{:03}", offset.as_secs(), offset.subsec_millis())
}

#[cfg(test)]
mod tests {
    use std::ffi::OsString;
    use std::time::Duration;

    use super::*;

    fn at(rfc3339: &str) -> SystemTime {
        humantime::parse_rfc3339(rfc3339).unwrap()
    }

    fn success(runbook: &str, finished: &str, backup: Option<BackupSample>) -> RunSample {
        RunSample {
            runbook: runbook.to_owned(),
            inventory: "prod-east".to_owned(),
            finished: at(finished),
            succeeded: true,
            backup,
        }
    }

    fn failure(runbook: &str, finished: &str) -> RunSample {
        RunSample {
            succeeded: false,
            ..success(runbook, finished, None)
        }
    }

    fn backup(taken: &str, size_bytes: u64, revision: i64) -> Option<BackupSample> {
        Some(BackupSample {
            taken: at(taken),
            size_bytes,
            revision,
        })
    }

    /// The value of the series `metric{runbook=..,inventory=..}` in `text`, as written.
    fn value(text: &str, metric: &str, runbook: &str, inventory: &str) -> Option<String> {
        let Previous { series, .. } = Previous::parse(text);
        let metric = Metric::from_name(metric).unwrap();
        let labels = vec![
            ("runbook".to_owned(), runbook.to_owned()),
            ("inventory".to_owned(), inventory.to_owned()),
        ];
        series.get(&(metric, labels)).cloned()
    }

    fn prod(text: &str, metric: &str, runbook: &str) -> Option<String> {
        value(text, metric, runbook, "prod-east")
    }

    #[test]
    fn first_success_writes_all_series() {
        let sample = success(
            "backup",
            "2025-11-26T00:00:05.123Z",
            backup("2025-11-26T00:00:01.5Z", 104_857_600, 4_242),
        );
        let text = render("", &sample);
        insta::assert_snapshot!(text);
        // Rendering is idempotent.
        assert_eq!(render(&text, &sample), text);
    }

    #[test]
    fn failure_after_success_keeps_success_values() {
        let first = render(
            "",
            &success(
                "backup",
                "2025-11-26T00:00:05.123Z",
                backup("2025-11-26T00:00:01Z", 100, 7),
            ),
        );
        let text = render(&first, &failure("backup", "2025-11-27T00:00:09Z"));
        let get = |metric| prod(&text, metric, "backup");
        assert_eq!(
            get("etcdrill_run_last_finished_timestamp_seconds").as_deref(),
            Some("1764201609.000")
        );
        assert_eq!(get("etcdrill_run_last_success").as_deref(), Some("0"));
        assert_eq!(
            get("etcdrill_run_last_success_timestamp_seconds").as_deref(),
            Some("1764115205.123")
        );
        assert_eq!(
            get("etcdrill_backup_last_success_timestamp_seconds").as_deref(),
            Some("1764115201.000")
        );
        assert_eq!(
            get("etcdrill_backup_last_success_size_bytes").as_deref(),
            Some("100")
        );
        assert_eq!(
            get("etcdrill_backup_last_success_revision").as_deref(),
            Some("7")
        );
    }

    #[test]
    fn failure_first_writes_no_success_series() {
        let text = render("", &failure("backup", "2025-11-27T00:00:09Z"));
        assert_eq!(
            text,
            "# HELP etcdrill_run_last_finished_timestamp_seconds When the last run of the runbook on \
             the inventory finished, in seconds since the Unix epoch.\n\
             # TYPE etcdrill_run_last_finished_timestamp_seconds gauge\n\
             etcdrill_run_last_finished_timestamp_seconds{runbook=\"backup\",inventory=\"prod-east\"} \
             1764201609.000\n\
             # HELP etcdrill_run_last_success 1 if the last run of the runbook on the inventory \
             succeeded, 0 if not.\n\
             # TYPE etcdrill_run_last_success gauge\n\
             etcdrill_run_last_success{runbook=\"backup\",inventory=\"prod-east\"} 0\n"
        );
    }

    #[test]
    fn failed_run_with_a_backup_does_not_count_as_a_backup() {
        let sample = RunSample {
            succeeded: false,
            ..success(
                "backup",
                "2025-11-27T00:00:09Z",
                backup("2025-11-27T00:00:01Z", 1, 2),
            )
        };
        let text = render("", &sample);
        assert_eq!(
            prod(&text, "etcdrill_backup_last_success_size_bytes", "backup"),
            None
        );
        assert_eq!(
            prod(
                &text,
                "etcdrill_run_last_success_timestamp_seconds",
                "backup"
            ),
            None
        );
    }

    #[test]
    fn success_without_backup_keeps_backup_values() {
        let first = render(
            "",
            &success(
                "backup",
                "2025-11-26T00:00:05Z",
                backup("2025-11-26T00:00:01Z", 100, 7),
            ),
        );
        let text = render(&first, &success("backup", "2025-11-27T00:00:05Z", None));
        let get = |metric| prod(&text, metric, "backup");
        assert_eq!(get("etcdrill_run_last_success").as_deref(), Some("1"));
        assert_eq!(
            get("etcdrill_run_last_success_timestamp_seconds").as_deref(),
            Some("1764201605.000")
        );
        assert_eq!(
            get("etcdrill_backup_last_success_timestamp_seconds").as_deref(),
            Some("1764115201.000")
        );
        assert_eq!(
            get("etcdrill_backup_last_success_size_bytes").as_deref(),
            Some("100")
        );
        assert_eq!(
            get("etcdrill_backup_last_success_revision").as_deref(),
            Some("7")
        );

        let newer = render(
            &text,
            &success(
                "backup",
                "2025-11-28T00:00:05Z",
                backup("2025-11-28T00:00:01Z", 200, -1),
            ),
        );
        assert_eq!(
            prod(&newer, "etcdrill_backup_last_success_size_bytes", "backup").as_deref(),
            Some("200")
        );
        assert_eq!(
            prod(&newer, "etcdrill_backup_last_success_revision", "backup").as_deref(),
            Some("-1")
        );
    }

    #[test]
    fn other_runbooks_and_inventories_are_kept_and_sorted() {
        let mut text = render("", &success("upgrade", "2025-11-26T00:00:00Z", None));
        text = render(&text, &failure("backup", "2025-11-26T01:00:00Z"));
        text = render(
            &text,
            &RunSample {
                inventory: "dev".to_owned(),
                ..success(
                    "backup",
                    "2025-11-26T02:00:00Z",
                    backup("2025-11-26T02:00:00Z", 5, 6),
                )
            },
        );
        assert_eq!(
            prod(&text, "etcdrill_run_last_success", "upgrade").as_deref(),
            Some("1")
        );
        assert_eq!(
            prod(&text, "etcdrill_run_last_success", "backup").as_deref(),
            Some("0")
        );
        assert_eq!(
            value(&text, "etcdrill_run_last_success", "backup", "dev").as_deref(),
            Some("1")
        );
        let success_lines: Vec<&str> = text
            .lines()
            .filter(|line| line.starts_with("etcdrill_run_last_success{"))
            .collect();
        assert_eq!(
            success_lines,
            [
                "etcdrill_run_last_success{runbook=\"backup\",inventory=\"dev\"} 1",
                "etcdrill_run_last_success{runbook=\"backup\",inventory=\"prod-east\"} 0",
                "etcdrill_run_last_success{runbook=\"upgrade\",inventory=\"prod-east\"} 1",
            ]
        );
        // Each metric's HELP and TYPE once, in the documented order.
        let types: Vec<&str> = text
            .lines()
            .filter(|line| line.starts_with("# TYPE"))
            .collect();
        assert_eq!(
            types,
            [
                "# TYPE etcdrill_run_last_finished_timestamp_seconds gauge",
                "# TYPE etcdrill_run_last_success gauge",
                "# TYPE etcdrill_run_last_success_timestamp_seconds gauge",
                "# TYPE etcdrill_backup_last_success_timestamp_seconds gauge",
                "# TYPE etcdrill_backup_last_success_size_bytes gauge",
                "# TYPE etcdrill_backup_last_success_revision gauge",
            ]
        );
        assert_eq!(
            text.lines()
                .filter(|line| line.starts_with("# HELP"))
                .count(),
            6
        );
    }

    #[test]
    fn garbled_previous_file_is_tolerated() {
        let previous = "\
# a comment
\t
garbage
etcdrill_run_last_success{runbook=\"x\",inventory=\"y\"}
etcdrill_run_last_success{runbook=\"x\" inventory=\"y\"} 1
etcdrill_run_last_success{runbook=\"x\",inventory=\"y\\q\"} 1
etcdrill_run_last_success{runbook=\"x\",inventory=\"y} 1
etcdrill_run_last_success{runbook=\"x\",runbook=\"y\"} 1
etcdrill_run_last_success{runbook=\"x\",inventory=\"y\"} 1 2 3
etcdrill_run_last_success{runbook=\"x\",inventory=\"y\"} 1 soon
etcdrill_run_last_success{=\"x\"} 1
etcdrill_run_last_success{,} 1
etcdrill_run_last_success{9a=\"x\"} 1
etcdrill_run_last_success_timestamp_seconds{runbook=\"z\",inventory=\"y\"} not-a-number
etcdrill_run_last_success_timestamp_seconds{ inventory = \"y\" , runbook = \"old\" , } 1700000000.5 1700000000500
etcdrill_run_last_success{runbook=\"odd\",inventory=\"y\",shard=\"2\"} 1
etcdrill_run_last_success 1
node_cpu_seconds_total{cpu=\"0\"} 5
# HELP node_cpu_seconds_total Not ours.
# TYPE etcdrill_future_total counter
etcdrill_future_total{runbook=\"a\"} 3
etcdrill_future_total{runbook=\"a\"} 4
# TYPE etcdrill_future_total counter
etcdrill_future_total{runbook=\"a\"
{}{}{
\"\\
\u{0}\u{7f}é
etcdrill_run_last_finished_timestamp_seconds{runbook=\"é\u{0}\",inventory=\"y\"} 1
";
        let text = render(previous, &failure("backup", "2025-11-27T00:00:09Z"));
        let expected = "\
# HELP etcdrill_run_last_finished_timestamp_seconds When the last run of the runbook on the \
inventory finished, in seconds since the Unix epoch.
# TYPE etcdrill_run_last_finished_timestamp_seconds gauge
etcdrill_run_last_finished_timestamp_seconds{runbook=\"backup\",inventory=\"prod-east\"} 1764201609.000
etcdrill_run_last_finished_timestamp_seconds{runbook=\"é\u{0}\",inventory=\"y\"} 1
# HELP etcdrill_run_last_success 1 if the last run of the runbook on the inventory succeeded, 0 if not.
# TYPE etcdrill_run_last_success gauge
etcdrill_run_last_success 1
etcdrill_run_last_success{runbook=\"backup\",inventory=\"prod-east\"} 0
etcdrill_run_last_success{runbook=\"odd\",inventory=\"y\",shard=\"2\"} 1
# HELP etcdrill_run_last_success_timestamp_seconds When the last successful run of the runbook on \
the inventory finished, in seconds since the Unix epoch.
# TYPE etcdrill_run_last_success_timestamp_seconds gauge
etcdrill_run_last_success_timestamp_seconds{runbook=\"old\",inventory=\"y\"} 1700000000.5
# TYPE etcdrill_future_total counter
etcdrill_future_total{runbook=\"a\"} 3
";
        assert_eq!(text, expected);
        assert_eq!(
            render(&text, &failure("backup", "2025-11-27T00:00:09Z")),
            text
        );
    }

    #[test]
    fn unknown_etcdrill_metrics_are_kept_verbatim_at_the_end() {
        let previous = "\
# HELP etcdrill_restore_drill_last_success_timestamp_seconds From a newer etcdrill.
# TYPE etcdrill_restore_drill_last_success_timestamp_seconds gauge
etcdrill_restore_drill_last_success_timestamp_seconds{runbook=\"drill\",inventory=\"a\"}   1.5
etcdrill_run_last_success{runbook=\"drill\",inventory=\"a\"} 1
";
        let text = render(previous, &success("backup", "2025-11-26T00:00:00Z", None));
        let tail: Vec<&str> = text.lines().rev().take(3).collect();
        assert_eq!(
            tail,
            [
                "etcdrill_restore_drill_last_success_timestamp_seconds{runbook=\"drill\",inventory=\"a\"}   1.5",
                "# TYPE etcdrill_restore_drill_last_success_timestamp_seconds gauge",
                "# HELP etcdrill_restore_drill_last_success_timestamp_seconds From a newer etcdrill.",
            ]
        );
        assert_eq!(
            prod(&text, "etcdrill_run_last_success", "backup").as_deref(),
            Some("1")
        );
        assert_eq!(
            value(&text, "etcdrill_run_last_success", "drill", "a").as_deref(),
            Some("1")
        );
    }

    #[test]
    fn label_values_are_escaped_and_parsed_back() {
        let hostile = "a\"b\\c\nd";
        let sample = RunSample {
            inventory: "}{\",=\\n".to_owned(),
            ..success(
                hostile,
                "2025-11-26T00:00:00Z",
                backup("2025-11-26T00:00:00Z", 1, 2),
            )
        };
        let text = render("", &sample);
        assert!(
            text.contains(
                r#"etcdrill_run_last_success{runbook="a\"b\\c\nd",inventory="}{\",=\\n"} 1"#
            ),
            "{text}"
        );
        // Every line is one line: the newline was escaped.
        assert_eq!(text.lines().count(), 6 * 3);
        assert_eq!(
            value(
                &text,
                "etcdrill_run_last_success",
                hostile,
                &sample.inventory
            )
            .as_deref(),
            Some("1")
        );
        // A failure for the same labels finds and keeps the success values.
        let failed = render(
            &text,
            &RunSample {
                succeeded: false,
                backup: None,
                finished: at("2025-11-27T00:00:00Z"),
                ..sample.clone()
            },
        );
        assert_eq!(failed.lines().count(), 6 * 3);
        assert_eq!(
            value(
                &failed,
                "etcdrill_run_last_success",
                hostile,
                &sample.inventory
            )
            .as_deref(),
            Some("0")
        );
        assert_eq!(
            value(
                &failed,
                "etcdrill_backup_last_success_revision",
                hostile,
                &sample.inventory
            )
            .as_deref(),
            Some("2")
        );
    }

    #[test]
    fn parse_label_values() {
        let cases: &[(&str, Option<(&str, &str)>)] = &[
            (r#"plain" rest"#, Some(("plain", " rest"))),
            (r#"" rest"#, Some(("", " rest"))),
            (r#"a\"b" rest"#, Some(("a\"b", " rest"))),
            (r#"a\\" rest"#, Some(("a\\", " rest"))),
            (r#"a\nb""#, Some(("a\nb", ""))),
            (r#"é☃"x"#, Some(("é☃", "x"))),
            (r#"a\tb""#, None),
            (r#"unterminated"#, None),
            (r#"ends in \"#, None),
            (r#"ends in \""#, None),
        ];
        for &(text, expected) in cases {
            let parsed = parse_label_value(text);
            let parsed = parsed.as_ref().map(|(value, rest)| (value.as_str(), *rest));
            assert_eq!(parsed, expected, "{text:?}");
        }
    }

    #[test]
    fn timestamps_have_millisecond_precision() {
        let cases = [
            (at("2025-11-26T00:00:00.123456Z"), "1764115200.123"),
            (at("2025-11-26T00:00:00Z"), "1764115200.000"),
            (UNIX_EPOCH, "0.000"),
            (UNIX_EPOCH + Duration::from_millis(5), "0.005"),
            (UNIX_EPOCH - Duration::from_millis(1_500), "-1.500"),
        ];
        for (time, expected) in cases {
            assert_eq!(seconds(time), expected);
        }
        let far = UNIX_EPOCH.checked_add(Duration::from_secs(u64::MAX / 2));
        if let Some(far) = far {
            assert_eq!(seconds(far), format!("{}.000", u64::MAX / 2));
        }
    }

    #[test]
    fn update_replaces_the_file_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("etcdrill.prom");
        update(
            &path,
            &success(
                "backup",
                "2025-11-26T00:00:05Z",
                backup("2025-11-26T00:00:01Z", 100, 7),
            ),
        )
        .unwrap();
        update(&path, &failure("backup", "2025-11-27T00:00:05Z")).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(
            prod(&text, "etcdrill_run_last_success", "backup").as_deref(),
            Some("0")
        );
        assert_eq!(
            prod(&text, "etcdrill_backup_last_success_revision", "backup").as_deref(),
            Some("7")
        );
        // Every line is a comment or a series that parses.
        for line in text.lines() {
            assert!(
                line.starts_with("# ") || parse_sample(line).is_some(),
                "{line}"
            );
        }
        let names: Vec<OsString> = fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(names, [OsString::from("etcdrill.prom")]);
    }

    #[test]
    fn update_tolerates_a_file_that_is_not_utf8() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("etcdrill.prom");
        fs::write(&path, b"\xff\xfe garbage\netcdrill_run_last_success{runbook=\"old\",inventory=\"prod-east\"} 1\n")
            .unwrap();
        update(&path, &failure("backup", "2025-11-27T00:00:05Z")).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(
            prod(&text, "etcdrill_run_last_success", "old").as_deref(),
            Some("1")
        );
        assert_eq!(
            prod(&text, "etcdrill_run_last_success", "backup").as_deref(),
            Some("0")
        );
    }

    #[test]
    fn update_errors_name_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let sample = failure("backup", "2025-11-27T00:00:05Z");

        let missing_dir = dir.path().join("missing").join("etcdrill.prom");
        let error = update(&missing_dir, &sample).unwrap_err();
        assert_eq!(error.what, "write");
        assert!(
            error.path.starts_with(dir.path().join("missing")),
            "{error}"
        );
        assert_eq!(error.source.kind(), io::ErrorKind::NotFound);

        // A directory where the file should be: it cannot be read.
        let error = update(dir.path(), &sample).unwrap_err();
        assert_eq!(error.what, "read");
        assert_eq!(error.path, dir.path());
        assert!(
            error
                .to_string()
                .starts_with("failed to read metrics file "),
            "{error}"
        );

        let error = update(Path::new("/"), &sample).unwrap_err();
        assert_eq!(error.path, Path::new("/"));

        let names: Vec<OsString> = fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert!(names.is_empty(), "{names:?}");
    }
}
