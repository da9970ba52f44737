//! The Prometheus text format that etcd serves on `/metrics`, and the figures `diagnose` reads
//! from it: disk latency quantiles, leader changes, heartbeat failures, peer round trips, the
//! quota and database sizes, and the version.
//!
//! Pure: text in, numbers out. Quantiles are estimated from cumulative histogram buckets the
//! way Prometheus's `histogram_quantile` does (linear interpolation inside the bucket); a
//! histogram's counts run from the member's start, so its quantile covers the whole uptime.

use serde::{Deserialize, Serialize};

/// Label pairs, in the order written.
pub type Labels = Vec<(String, String)>;

/// Cumulative histogram buckets: `(upper bound, count)`.
pub type Buckets = Vec<(f64, f64)>;

/// One sample line: `name{label="value",...} value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The metric name, e.g. `etcd_disk_wal_fsync_duration_seconds_bucket`.
    pub name: String,
    /// Its labels, in the order written.
    pub labels: Vec<(String, String)>,
    /// Its value.
    pub value: f64,
}

impl Sample {
    /// The value of label `name`.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Every sample of a scrape.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scrape {
    /// Samples in the order served.
    pub samples: Vec<Sample>,
}

/// Why a scrape could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line} of the metrics is not a Prometheus sample: {reason}")]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub reason: String,
}

impl Scrape {
    /// Parses the Prometheus text exposition format (comments and `# TYPE` lines are skipped).
    pub fn parse(text: &str) -> Result<Scrape, ParseError> {
        let mut samples = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let sample = parse_line(line).map_err(|reason| ParseError {
                line: index + 1,
                reason,
            })?;
            samples.push(sample);
        }
        Ok(Scrape { samples })
    }

    /// Samples named `name`.
    pub fn named<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s Sample> + 's {
        self.samples.iter().filter(move |s| s.name == name)
    }

    /// The value of the first sample named `name`.
    pub fn value(&self, name: &str) -> Option<f64> {
        self.named(name).next().map(|s| s.value)
    }

    /// The sum over every sample named `name` (a counter split by labels).
    pub fn sum(&self, name: &str) -> Option<f64> {
        let mut found = false;
        let total = self
            .named(name)
            .map(|s| {
                found = true;
                s.value
            })
            .sum();
        found.then_some(total)
    }

    /// The `q` quantile of histogram `base` (its `_bucket` samples), per series: one entry per
    /// distinct set of labels other than `le`, with that series' observation count.
    pub fn quantiles(&self, base: &str, q: f64) -> Vec<HistogramQuantile> {
        let bucket = format!("{base}_bucket");
        let mut series: Vec<(Labels, Buckets)> = Vec::new();
        for sample in self.named(&bucket) {
            let Some(le) = sample.label("le").and_then(parse_float) else {
                continue;
            };
            let labels: Vec<(String, String)> = sample
                .labels
                .iter()
                .filter(|(k, _)| k != "le")
                .cloned()
                .collect();
            match series.iter_mut().find(|(l, _)| *l == labels) {
                Some((_, buckets)) => buckets.push((le, sample.value)),
                None => series.push((labels, vec![(le, sample.value)])),
            }
        }
        series
            .into_iter()
            .map(|(labels, buckets)| HistogramQuantile {
                labels,
                count: buckets.iter().map(|(_, c)| *c).fold(0.0, f64::max),
                value: quantile(q, buckets),
            })
            .collect()
    }
}

/// A quantile of one histogram series.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramQuantile {
    /// The series' labels other than `le`, e.g. `To="8e9e05c52164694d"`.
    pub labels: Vec<(String, String)>,
    /// Observations in the series.
    pub count: f64,
    /// The estimate; `None` without observations.
    pub value: Option<f64>,
}

/// The `q` quantile (0..=1) of cumulative buckets `(upper bound, count)`, as Prometheus's
/// `histogram_quantile` computes it: find the bucket holding rank `q * total` and interpolate
/// linearly between its bounds (the first bucket starts at 0). A rank in the `+Inf` bucket
/// gives the highest finite bound. `None` without observations.
pub fn quantile(q: f64, mut buckets: Vec<(f64, f64)>) -> Option<f64> {
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (last_bound, total) = *buckets.last()?;
    // Without a +Inf bucket the total is unknown (Prometheus refuses too); without
    // observations there is nothing to estimate.
    if last_bound.is_finite() || total.is_nan() || total <= 0.0 {
        return None;
    }
    let rank = q.clamp(0.0, 1.0) * total;
    let mut lower = 0.0;
    let mut below = 0.0;
    for (le, count) in &buckets {
        if *count >= rank {
            if !le.is_finite() {
                // In the +Inf bucket: the best estimate is the highest finite bound.
                return Some(lower);
            }
            let in_bucket = count - below;
            if in_bucket <= 0.0 {
                return Some(*le);
            }
            return Some(lower + (le - lower) * (rank - below) / in_bucket);
        }
        lower = *le;
        below = *count;
    }
    Some(lower)
}

fn parse_float(text: &str) -> Option<f64> {
    match text {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        other => other.parse().ok(),
    }
}

fn parse_line(line: &str) -> Result<Sample, String> {
    let name_end = line
        .find(|c: char| c == '{' || c.is_whitespace())
        .ok_or("no value")?;
    let name = &line[..name_end];
    if name.is_empty() {
        return Err("no metric name".into());
    }
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(after) = rest.strip_prefix('{') {
        let (parsed, remaining) = parse_labels(after)?;
        labels = parsed;
        rest = remaining;
    }
    let mut fields = rest.split_whitespace();
    let value = fields.next().ok_or("no value")?;
    let value = parse_float(value).ok_or_else(|| format!("`{value}` is not a number"))?;
    Ok(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

/// Labels after `{`, up to and including `}`; returns the rest of the line.
fn parse_labels(mut text: &str) -> Result<(Labels, &str), String> {
    let mut labels = Vec::new();
    loop {
        text = text.trim_start();
        if let Some(rest) = text.strip_prefix('}') {
            return Ok((labels, rest));
        }
        let eq = text.find('=').ok_or("a label without `=`")?;
        let key = text[..eq].trim().to_string();
        text = text[eq + 1..].trim_start();
        let body = text
            .strip_prefix('"')
            .ok_or("a label value without quotes")?;
        let mut value = String::new();
        let mut chars = body.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c)) => value.push(c),
                    None => return Err("an unfinished escape".into()),
                },
                Some((i, '"')) => break i,
                Some((_, c)) => value.push(c),
                None => return Err("an unterminated label value".into()),
            }
        };
        labels.push((key, value));
        text = body[end + 1..].trim_start();
        if let Some(rest) = text.strip_prefix(',') {
            text = rest;
        }
    }
}

/// The figures `diagnose` reads from one member's `/metrics`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MemberMetrics {
    /// p99 of `etcd_disk_wal_fsync_duration_seconds`, seconds.
    pub wal_fsync_p99: Option<f64>,
    /// Observations behind it.
    pub wal_fsync_count: f64,
    /// p99 of `etcd_disk_backend_commit_duration_seconds`, seconds.
    pub backend_commit_p99: Option<f64>,
    /// Observations behind it.
    pub backend_commit_count: f64,
    /// p99 of `etcd_network_peer_round_trip_time_seconds` per peer (`To` label), seconds.
    pub peer_rtt_p99: Vec<PeerRtt>,
    /// `etcd_server_leader_changes_seen_total`.
    pub leader_changes: Option<f64>,
    /// `etcd_network_heartbeat_send_failures_total`, summed over peers.
    pub network_heartbeat_failures: Option<f64>,
    /// `etcd_server_heartbeat_send_failures_total` (the leader could not send in time).
    pub server_heartbeat_failures: Option<f64>,
    /// `etcd_server_quota_backend_bytes`.
    pub quota_backend_bytes: Option<f64>,
    /// `etcd_mvcc_db_total_size_in_bytes`.
    pub db_total_size: Option<f64>,
    /// `etcd_mvcc_db_total_size_in_use_in_bytes`.
    pub db_in_use: Option<f64>,
    /// `etcd_server_has_leader`.
    pub has_leader: Option<f64>,
    /// The `server_version` label of `etcd_server_version`.
    pub server_version: Option<String>,
    /// `process_start_time_seconds` (Unix time).
    pub process_start_time: Option<f64>,
}

/// One peer's round-trip time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerRtt {
    /// The peer's member id (hex), from the `To` label.
    pub to: String,
    /// p99, seconds.
    pub p99: f64,
    /// Observations behind it.
    pub count: f64,
}

impl MemberMetrics {
    /// Reads the figures from a scrape; what the member does not export stays `None`.
    pub fn from_scrape(scrape: &Scrape) -> MemberMetrics {
        let single = |base: &str| {
            let mut all = scrape.quantiles(base, 0.99);
            match all.len() {
                0 => (None, 0.0),
                _ => {
                    let first = all.remove(0);
                    (first.value, first.count)
                }
            }
        };
        let (wal_fsync_p99, wal_fsync_count) = single("etcd_disk_wal_fsync_duration_seconds");
        let (backend_commit_p99, backend_commit_count) =
            single("etcd_disk_backend_commit_duration_seconds");
        let peer_rtt_p99 = scrape
            .quantiles("etcd_network_peer_round_trip_time_seconds", 0.99)
            .into_iter()
            .filter_map(|h| {
                let to = h
                    .labels
                    .iter()
                    .find(|(k, _)| k == "To")
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default();
                h.value.map(|p99| PeerRtt {
                    to,
                    p99,
                    count: h.count,
                })
            })
            .collect();
        MemberMetrics {
            wal_fsync_p99,
            wal_fsync_count,
            backend_commit_p99,
            backend_commit_count,
            peer_rtt_p99,
            leader_changes: scrape.value("etcd_server_leader_changes_seen_total"),
            network_heartbeat_failures: scrape.sum("etcd_network_heartbeat_send_failures_total"),
            server_heartbeat_failures: scrape.value("etcd_server_heartbeat_send_failures_total"),
            quota_backend_bytes: scrape.value("etcd_server_quota_backend_bytes"),
            db_total_size: scrape.value("etcd_mvcc_db_total_size_in_bytes"),
            db_in_use: scrape.value("etcd_mvcc_db_total_size_in_use_in_bytes"),
            has_leader: scrape.value("etcd_server_has_leader"),
            server_version: scrape
                .named("etcd_server_version")
                .find_map(|s| s.label("server_version").map(str::to_string)),
            process_start_time: scrape.value("process_start_time_seconds"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCRAPE: &str = r#"# HELP etcd_disk_wal_fsync_duration_seconds The latency distributions of fsync called by WAL.
# TYPE etcd_disk_wal_fsync_duration_seconds histogram
etcd_disk_wal_fsync_duration_seconds_bucket{le="0.001"} 0
etcd_disk_wal_fsync_duration_seconds_bucket{le="0.002"} 50
etcd_disk_wal_fsync_duration_seconds_bucket{le="0.004"} 90
etcd_disk_wal_fsync_duration_seconds_bucket{le="0.008"} 98
etcd_disk_wal_fsync_duration_seconds_bucket{le="0.016"} 100
etcd_disk_wal_fsync_duration_seconds_bucket{le="+Inf"} 100
etcd_disk_wal_fsync_duration_seconds_sum 0.3
etcd_disk_wal_fsync_duration_seconds_count 100
etcd_disk_backend_commit_duration_seconds_bucket{le="0.016"} 10
etcd_disk_backend_commit_duration_seconds_bucket{le="0.032"} 10
etcd_disk_backend_commit_duration_seconds_bucket{le="+Inf"} 20
etcd_network_peer_round_trip_time_seconds_bucket{To="a1",le="0.0001"} 0
etcd_network_peer_round_trip_time_seconds_bucket{To="a1",le="0.0002"} 4
etcd_network_peer_round_trip_time_seconds_bucket{To="a1",le="+Inf"} 4
etcd_network_peer_round_trip_time_seconds_bucket{To="b2",le="0.0512"} 0
etcd_network_peer_round_trip_time_seconds_bucket{To="b2",le="0.1024"} 10
etcd_network_peer_round_trip_time_seconds_bucket{To="b2",le="+Inf"} 10
etcd_network_heartbeat_send_failures_total{To="a1"} 3
etcd_network_heartbeat_send_failures_total{To="b2"} 4
etcd_server_heartbeat_send_failures_total 2
etcd_server_leader_changes_seen_total 5
etcd_server_quota_backend_bytes 1.6777216e+07
etcd_mvcc_db_total_size_in_bytes 1.2e+07
etcd_mvcc_db_total_size_in_use_in_bytes 6e+06
etcd_server_has_leader 1
etcd_server_version{server_version="3.5.1"} 1
process_start_time_seconds 1.7e+09
"#;

    #[test]
    fn the_figures_are_read_from_a_scrape() {
        let metrics = MemberMetrics::from_scrape(&Scrape::parse(SCRAPE).unwrap());
        // Rank 99 of 100 lies in (0.008, 0.016] holding ranks 99..100: halfway.
        assert!((metrics.wal_fsync_p99.unwrap() - 0.012).abs() < 1e-9);
        assert_eq!(metrics.wal_fsync_count, 100.0);
        // Rank 19.8 of 20 lies in +Inf: the highest finite bound.
        assert_eq!(metrics.backend_commit_p99, Some(0.032));
        assert_eq!(metrics.peer_rtt_p99.len(), 2);
        assert_eq!(metrics.peer_rtt_p99[1].to, "b2");
        assert!((metrics.peer_rtt_p99[1].p99 - (0.0512 + 0.0512 * 0.99)).abs() < 1e-9);
        assert_eq!(metrics.network_heartbeat_failures, Some(7.0));
        assert_eq!(metrics.server_heartbeat_failures, Some(2.0));
        assert_eq!(metrics.leader_changes, Some(5.0));
        assert_eq!(metrics.quota_backend_bytes, Some(16_777_216.0));
        assert_eq!(metrics.db_total_size, Some(12e6));
        assert_eq!(metrics.db_in_use, Some(6e6));
        assert_eq!(metrics.has_leader, Some(1.0));
        assert_eq!(metrics.server_version.as_deref(), Some("3.5.1"));
        assert_eq!(metrics.process_start_time, Some(1.7e9));
    }

    #[test]
    fn quantiles_from_cumulative_buckets() {
        let inf = f64::INFINITY;
        let cases: Vec<(f64, Buckets, Option<f64>)> = vec![
            // No observations.
            (0.99, vec![(0.1, 0.0), (inf, 0.0)], None),
            // No +Inf bucket: unknown total.
            (0.99, vec![(0.1, 5.0)], None),
            // Everything in the first bucket: interpolated from 0.
            (0.5, vec![(0.1, 10.0), (inf, 10.0)], Some(0.05)),
            // Out of order input is sorted.
            (0.5, vec![(inf, 10.0), (0.2, 10.0), (0.1, 0.0)], Some(0.15)),
            // The quantile in +Inf gives the highest finite bound.
            (0.99, vec![(0.1, 1.0), (inf, 10.0)], Some(0.1)),
            // Exactly on a bucket's upper count.
            (0.5, vec![(0.1, 5.0), (0.2, 10.0), (inf, 10.0)], Some(0.1)),
        ];
        for (q, buckets, expected) in cases {
            let got = quantile(q, buckets.clone());
            match (got, expected) {
                (Some(g), Some(e)) => assert!((g - e).abs() < 1e-9, "{buckets:?}: {g} != {e}"),
                (g, e) => assert_eq!(g, e, "{buckets:?}"),
            }
        }
    }

    #[test]
    fn lines_parse_with_escapes_timestamps_and_special_values() {
        let scrape = Scrape::parse(
            "a{x=\"q\\\"u,o}te\",y=\"2\"} 1.5 1700000000\nb NaN\nc{} +Inf\nd{le=\"+Inf\",} 3\n",
        )
        .unwrap();
        assert_eq!(scrape.samples.len(), 4);
        assert_eq!(scrape.samples[0].label("x"), Some("q\"u,o}te"));
        assert_eq!(scrape.samples[0].label("y"), Some("2"));
        assert_eq!(scrape.samples[0].value, 1.5);
        assert!(scrape.samples[1].value.is_nan());
        assert_eq!(scrape.samples[2].value, f64::INFINITY);
        assert_eq!(scrape.samples[3].label("le"), Some("+Inf"));
        for bad in ["a{x=1} 2", "a{x=\"1} 2", "a", "a{x=\"1\"} one"] {
            assert!(Scrape::parse(bad).is_err(), "{bad}");
        }
    }
}
