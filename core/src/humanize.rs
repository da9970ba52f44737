//! Text for people, one convention each, used everywhere etcdrill shows these to a person:
//!
//! - byte counts in binary units: `512 B`, `1.5 KiB`, `12.0 MiB` ([`bytes`]);
//! - measured durations (how long something took): `450 ms`, `6.0 s`, `2 min 03 s`, `1 h 05 min`
//!   ([`human_ms`], [`duration`]);
//! - limits (timeouts, periods), as the runbook language writes them: `90s`, `10m`, `1h 30m`
//!   ([`limit`]);
//! - digests as lowercase hex ([`hex`]);
//! - errors with their causes on one line ([`error_chain`]).

use std::time::Duration;

/// Bytes for people, binary units: `512 B`, `12.0 MiB`.
pub fn bytes(value: f64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = value;
    let mut unit = 0;
    while value.abs() >= 1024.0 && unit + 1 < units.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{value:.0} B")
    } else {
        format!("{value:.1} {}", units[unit])
    }
}

/// A duration as people read it: `450 ms`, `4.7 s`, `2 min 03 s`, `1 h 05 min`.
pub fn human_ms(ms: u64) -> String {
    if ms < 1_000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else if ms < 3_600_000 {
        format!("{} min {:02} s", ms / 60_000, (ms % 60_000) / 1000)
    } else {
        format!("{} h {:02} min", ms / 3_600_000, (ms % 3_600_000) / 60_000)
    }
}

/// A measured duration as people read it, as [`human_ms`] writes it: `6.0 s`.
pub fn duration(duration: Duration) -> String {
    human_ms(u64::try_from(duration.as_millis()).unwrap_or(u64::MAX))
}

/// A limit (a timeout, a period) as the runbook language writes one, so the text can be looked
/// up in the runbook: `90s`, `10m`, `1h 30m`.
pub fn limit(limit: Duration) -> String {
    humantime::format_duration(limit).to_string()
}

/// Bytes as lowercase hex, two digits each: digests as `sha256sum` prints them.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(text, "{byte:02x}");
    }
    text
}

/// An error and its causes on one line. A cause whose text is already shown (some libraries'
/// messages repeat their source's) is not shown again.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_use_binary_units() {
        assert_eq!(bytes(512.0), "512 B");
        assert_eq!(bytes(1536.0), "1.5 KiB");
        assert_eq!(bytes(12.0 * 1024.0 * 1024.0), "12.0 MiB");
    }

    #[test]
    fn measured_durations_read_as_their_size_calls_for() {
        let cases = [
            (450, "450 ms"),
            (6_000, "6.0 s"),
            (4_740, "4.7 s"),
            (123_000, "2 min 03 s"),
            (3_900_000, "1 h 05 min"),
        ];
        for (ms, text) in cases {
            assert_eq!(human_ms(ms), text);
            assert_eq!(duration(Duration::from_millis(ms)), text);
        }
    }

    #[test]
    fn limits_read_as_the_runbook_writes_them() {
        assert_eq!(limit(Duration::from_secs(90)), "1m 30s");
        assert_eq!(limit(Duration::from_secs(600)), "10m");
        assert_eq!(limit(Duration::from_secs(5400)), "1h 30m");
    }

    #[test]
    fn hex_is_lowercase_two_digits_a_byte() {
        assert_eq!(hex(&[0x00, 0x0f, 0xab, 0xff]), "000fabff");
        assert_eq!(hex(&[]), "");
    }
}
