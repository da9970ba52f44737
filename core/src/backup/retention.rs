//! Which snapshots a retention policy keeps, and why: restic's `forget` rules.
//!
//! Snapshots are judged newest first. `keep_last` keeps the N newest; `keep_daily` keeps the
//! newest snapshot of each of the N most recent UTC days that have a snapshot; `keep_weekly` does
//! the same per week, weeks starting on Monday 00:00 UTC. Days and weeks without a snapshot do not
//! count, so a pause in backups never makes the policy delete more. A snapshot is kept if any rule
//! keeps it, and the newest snapshot is always kept.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Seconds in a UTC day (UTC has no leap seconds in Unix time).
const SECONDS_PER_DAY: i64 = 86_400;

/// How many snapshots to keep, by rule; a snapshot is kept if any rule keeps it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionPolicy {
    /// Keep the N newest snapshots.
    pub keep_last: u32,
    /// Keep the newest snapshot of each of the N most recent UTC days that have a snapshot.
    pub keep_daily: u32,
    /// Keep the newest snapshot of each of the N most recent weeks (Monday to Sunday, UTC) that
    /// have a snapshot.
    pub keep_weekly: u32,
}

/// Why a retention policy cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RetentionError {
    /// Every rule is zero: the policy would delete every snapshot.
    #[error(
        "the retention policy keeps nothing: set at least one of keep_last, keep_daily or \
         keep_weekly to a number above 0"
    )]
    KeepsNothing,
}

impl RetentionPolicy {
    /// Refuses a policy that keeps nothing.
    pub fn validate(&self) -> Result<(), RetentionError> {
        if self.keep_last == 0 && self.keep_daily == 0 && self.keep_weekly == 0 {
            return Err(RetentionError::KeepsNothing);
        }
        Ok(())
    }
}

impl fmt::Display for RetentionPolicy {
    /// `keep last 7, daily 14, weekly 8`, leaving out the rules that are zero.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rules = [
            ("last", self.keep_last),
            ("daily", self.keep_daily),
            ("weekly", self.keep_weekly),
        ];
        let mut separator = "keep ";
        for (rule, count) in rules.into_iter().filter(|&(_, count)| count > 0) {
            write!(f, "{separator}{rule} {count}")?;
            separator = ", ";
        }
        if separator == "keep " {
            f.write_str("keep nothing")?;
        }
        Ok(())
    }
}

/// A snapshot to judge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate<'a> {
    /// Its name, which breaks ties between snapshots taken at the same time.
    pub name: &'a str,
    /// When it was taken.
    pub time: SystemTime,
}

/// Why a snapshot is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeepReason {
    /// One of the `keep_last` newest.
    Last,
    /// The newest of one of the `keep_daily` most recent days.
    Daily,
    /// The newest of one of the `keep_weekly` most recent weeks.
    Weekly,
    /// The newest snapshot, which is always kept.
    Newest,
}

/// What the policy decided for one snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The snapshot's name.
    pub name: String,
    /// When it was taken.
    pub time: SystemTime,
    /// Whether it is kept; the others may be deleted.
    pub keep: bool,
    /// Every reason it is kept, in rule order; empty when it is not.
    pub reasons: Vec<KeepReason>,
}

/// Judges `candidates` by `policy`: one verdict each, newest first, ties by name.
///
/// The order of `candidates` does not matter. The policy is validated first.
pub fn select(
    policy: &RetentionPolicy,
    candidates: &[Candidate<'_>],
) -> Result<Vec<Verdict>, RetentionError> {
    policy.validate()?;
    let mut sorted = candidates.to_vec();
    sorted.sort_by(|a, b| b.time.cmp(&a.time).then_with(|| a.name.cmp(b.name)));

    let mut last = policy.keep_last;
    let mut daily = Bucketed::new(policy.keep_daily);
    let mut weekly = Bucketed::new(policy.keep_weekly);
    let mut verdicts: Vec<Verdict> = sorted
        .into_iter()
        .map(|candidate| {
            let mut reasons = Vec::new();
            if last > 0 {
                last -= 1;
                reasons.push(KeepReason::Last);
            }
            let day = utc_day(candidate.time);
            if daily.admits(day) {
                reasons.push(KeepReason::Daily);
            }
            if weekly.admits(week_of(day)) {
                reasons.push(KeepReason::Weekly);
            }
            Verdict {
                name: candidate.name.to_owned(),
                time: candidate.time,
                keep: false,
                reasons,
            }
        })
        .collect();
    keep_newest(&mut verdicts);
    for verdict in &mut verdicts {
        verdict.keep = !verdict.reasons.is_empty();
    }
    Ok(verdicts)
}

/// The safety net: the newest snapshot (the first verdict) is kept even if no rule kept it.
fn keep_newest(verdicts: &mut [Verdict]) {
    if let Some(newest) = verdicts.first_mut() {
        if newest.reasons.is_empty() {
            newest.reasons.push(KeepReason::Newest);
        }
    }
}

/// A rule that keeps the newest snapshot of each of the N most recent buckets (days, weeks) that
/// have one, fed snapshots newest first.
struct Bucketed {
    /// How many more buckets it keeps a snapshot of.
    remaining: u32,
    /// The bucket of the last snapshot it kept.
    previous: Option<i64>,
}

impl Bucketed {
    fn new(count: u32) -> Self {
        Bucketed {
            remaining: count,
            previous: None,
        }
    }

    /// Whether the next snapshot, in `bucket`, is kept: the first one seen in a new bucket is.
    fn admits(&mut self, bucket: i64) -> bool {
        if self.remaining == 0 || self.previous == Some(bucket) {
            return false;
        }
        self.remaining -= 1;
        self.previous = Some(bucket);
        true
    }
}

/// Whole seconds since the Unix epoch, rounded down (negative before 1970).
fn epoch_seconds(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
        Err(before) => {
            let before = before.duration();
            let seconds = i64::try_from(before.as_secs())
                .unwrap_or(i64::MAX)
                .saturating_neg();
            // Part of a second before a whole second is in the second before it.
            if before.subsec_nanos() > 0 {
                seconds.saturating_sub(1)
            } else {
                seconds
            }
        }
    }
}

/// The UTC day of `time`, counted from 1970-01-01 (day 0).
fn utc_day(time: SystemTime) -> i64 {
    epoch_seconds(time).div_euclid(SECONDS_PER_DAY)
}

/// The week of `day`, weeks starting on Monday; 1970-01-01 was a Thursday, in week 0.
fn week_of(day: i64) -> i64 {
    (day + 3).div_euclid(7)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::KeepReason::{Daily, Last, Newest, Weekly};
    use super::*;

    fn at(rfc3339: &str) -> SystemTime {
        humantime::parse_rfc3339(rfc3339).unwrap()
    }

    fn policy(keep_last: u32, keep_daily: u32, keep_weekly: u32) -> RetentionPolicy {
        RetentionPolicy {
            keep_last,
            keep_daily,
            keep_weekly,
        }
    }

    /// The verdicts as (name, reasons), in the order returned.
    fn judge(
        policy: &RetentionPolicy,
        snapshots: &[(&str, SystemTime)],
    ) -> Vec<(String, Vec<KeepReason>)> {
        let candidates: Vec<Candidate<'_>> = snapshots
            .iter()
            .map(|&(name, time)| Candidate { name, time })
            .collect();
        let verdicts = select(policy, &candidates).unwrap();
        for verdict in &verdicts {
            assert_eq!(verdict.keep, !verdict.reasons.is_empty(), "{verdict:?}");
        }
        verdicts.into_iter().map(|v| (v.name, v.reasons)).collect()
    }

    struct Case {
        name: &'static str,
        policy: RetentionPolicy,
        /// Snapshots as (name, RFC 3339 time), in any order.
        snapshots: &'static [(&'static str, &'static str)],
        /// Every verdict, newest first, as (name, reasons).
        expected: &'static [(&'static str, &'static [KeepReason])],
    }

    const CASES: &[Case] = &[
        Case {
            name: "keep_last keeps the newest N",
            policy: RetentionPolicy {
                keep_last: 2,
                keep_daily: 0,
                keep_weekly: 0,
            },
            snapshots: &[
                ("s1", "2025-11-20T10:00:00Z"),
                ("s2", "2025-11-21T10:00:00Z"),
                ("s3", "2025-11-21T11:00:00Z"),
                ("s4", "2025-11-22T10:00:00Z"),
            ],
            expected: &[("s4", &[Last]), ("s3", &[Last]), ("s2", &[]), ("s1", &[])],
        },
        Case {
            name: "keep_last larger than the number of snapshots keeps all",
            policy: RetentionPolicy {
                keep_last: 10,
                keep_daily: 0,
                keep_weekly: 0,
            },
            snapshots: &[
                ("s1", "2025-11-20T10:00:00Z"),
                ("s2", "2025-11-21T10:00:00Z"),
            ],
            expected: &[("s2", &[Last]), ("s1", &[Last])],
        },
        Case {
            name: "daily keeps the newest snapshot of each day",
            policy: RetentionPolicy {
                keep_last: 0,
                keep_daily: 2,
                keep_weekly: 0,
            },
            snapshots: &[
                ("d1-a", "2025-11-20T01:00:00Z"),
                ("d1-b", "2025-11-20T23:59:59Z"),
                ("d2-a", "2025-11-21T00:00:00Z"),
                ("d2-b", "2025-11-21T12:00:00Z"),
                ("d2-c", "2025-11-21T18:00:00Z"),
                ("d3-a", "2025-11-22T06:00:00Z"),
                ("d3-b", "2025-11-22T07:00:00Z"),
            ],
            expected: &[
                ("d3-b", &[Daily]),
                ("d3-a", &[]),
                ("d2-c", &[Daily]),
                ("d2-b", &[]),
                ("d2-a", &[]),
                ("d1-b", &[]),
                ("d1-a", &[]),
            ],
        },
        Case {
            name: "daily counts days with snapshots, not calendar days",
            policy: RetentionPolicy {
                keep_last: 0,
                keep_daily: 3,
                keep_weekly: 0,
            },
            snapshots: &[
                ("nov01", "2025-11-01T10:00:00Z"),
                ("nov02", "2025-11-02T10:00:00Z"),
                ("nov10", "2025-11-10T10:00:00Z"),
                ("nov11", "2025-11-11T10:00:00Z"),
            ],
            expected: &[
                ("nov11", &[Daily]),
                ("nov10", &[Daily]),
                ("nov02", &[Daily]),
                ("nov01", &[]),
            ],
        },
        Case {
            name: "a day is a UTC day, not a time zone's",
            policy: RetentionPolicy {
                keep_last: 0,
                keep_daily: 2,
                keep_weekly: 0,
            },
            snapshots: &[
                ("late", "2025-11-20T23:30:00Z"),
                ("midnight", "2025-11-21T00:00:00Z"),
                ("later", "2025-11-21T00:30:00Z"),
            ],
            expected: &[("later", &[Daily]), ("midnight", &[]), ("late", &[Daily])],
        },
        Case {
            // 2025-11-23 is a Sunday, 2025-11-24 a Monday.
            name: "weekly: Sunday 23:59 and Monday 00:00 UTC are different weeks",
            policy: RetentionPolicy {
                keep_last: 0,
                keep_daily: 0,
                keep_weekly: 2,
            },
            snapshots: &[
                ("mon-17", "2025-11-17T00:00:00Z"),
                ("sat-22", "2025-11-22T12:00:00Z"),
                ("sun-23", "2025-11-23T23:59:59Z"),
                ("mon-24", "2025-11-24T00:00:00Z"),
                ("sun-16", "2025-11-16T23:59:59Z"),
            ],
            expected: &[
                ("mon-24", &[Weekly]),
                ("sun-23", &[Weekly]),
                ("sat-22", &[]),
                ("mon-17", &[]),
                ("sun-16", &[]),
            ],
        },
        Case {
            name: "weekly counts weeks with snapshots",
            policy: RetentionPolicy {
                keep_last: 0,
                keep_daily: 0,
                keep_weekly: 2,
            },
            snapshots: &[
                ("sep", "2025-09-03T10:00:00Z"),
                ("oct", "2025-10-01T10:00:00Z"),
                ("nov", "2025-11-26T10:00:00Z"),
            ],
            expected: &[("nov", &[Weekly]), ("oct", &[Weekly]), ("sep", &[])],
        },
        Case {
            name: "combined rules list every reason",
            policy: RetentionPolicy {
                keep_last: 1,
                keep_daily: 2,
                keep_weekly: 2,
            },
            snapshots: &[
                ("mon-24-noon", "2025-11-24T12:00:00Z"),
                ("mon-24-early", "2025-11-24T06:00:00Z"),
                ("sun-23", "2025-11-23T12:00:00Z"),
                ("wed-19", "2025-11-19T12:00:00Z"),
                ("mon-17", "2025-11-17T12:00:00Z"),
                ("sun-16", "2025-11-16T12:00:00Z"),
            ],
            expected: &[
                ("mon-24-noon", &[Last, Daily, Weekly]),
                ("mon-24-early", &[]),
                ("sun-23", &[Daily, Weekly]),
                ("wed-19", &[]),
                ("mon-17", &[]),
                ("sun-16", &[]),
            ],
        },
        Case {
            name: "keep_last and daily overlap, daily reaches further",
            policy: RetentionPolicy {
                keep_last: 2,
                keep_daily: 3,
                keep_weekly: 0,
            },
            snapshots: &[
                ("a", "2025-11-24T12:00:00Z"),
                ("b", "2025-11-24T06:00:00Z"),
                ("c", "2025-11-23T12:00:00Z"),
                ("d", "2025-11-22T12:00:00Z"),
                ("e", "2025-11-21T12:00:00Z"),
            ],
            expected: &[
                ("a", &[Last, Daily]),
                ("b", &[Last]),
                ("c", &[Daily]),
                ("d", &[Daily]),
                ("e", &[]),
            ],
        },
        Case {
            name: "same time: ties broken by name",
            policy: RetentionPolicy {
                keep_last: 1,
                keep_daily: 1,
                keep_weekly: 0,
            },
            snapshots: &[
                ("b", "2025-11-24T12:00:00Z"),
                ("c", "2025-11-24T12:00:00Z"),
                ("a", "2025-11-24T12:00:00Z"),
            ],
            expected: &[("a", &[Last, Daily]), ("b", &[]), ("c", &[])],
        },
    ];

    #[test]
    fn cases() {
        for case in CASES {
            let snapshots: Vec<(&str, SystemTime)> = case
                .snapshots
                .iter()
                .map(|&(name, time)| (name, at(time)))
                .collect();
            let expected: Vec<(String, Vec<KeepReason>)> = case
                .expected
                .iter()
                .map(|&(name, reasons)| (name.to_owned(), reasons.to_vec()))
                .collect();
            assert_eq!(
                judge(&case.policy, &snapshots),
                expected,
                "case: {}",
                case.name
            );
        }
    }

    #[test]
    fn input_order_does_not_matter() {
        for case in CASES {
            let mut snapshots: Vec<(&str, SystemTime)> = case
                .snapshots
                .iter()
                .map(|&(name, time)| (name, at(time)))
                .collect();
            let reference = judge(&case.policy, &snapshots);
            snapshots.reverse();
            assert_eq!(
                judge(&case.policy, &snapshots),
                reference,
                "case: {}",
                case.name
            );
            for _ in 0..snapshots.len() {
                snapshots.rotate_left(1);
                assert_eq!(
                    judge(&case.policy, &snapshots),
                    reference,
                    "case: {}",
                    case.name
                );
            }
        }
    }

    #[test]
    fn verdicts_carry_name_and_time() {
        let time = at("2025-11-24T12:00:00Z");
        let verdicts = select(&policy(1, 0, 0), &[Candidate { name: "only", time }]).unwrap();
        assert_eq!(
            verdicts,
            vec![Verdict {
                name: "only".to_owned(),
                time,
                keep: true,
                reasons: vec![Last],
            }]
        );
    }

    #[test]
    fn empty_input_gives_empty_output() {
        assert_eq!(select(&policy(1, 2, 3), &[]).unwrap(), vec![]);
    }

    #[test]
    fn all_zero_policy_is_refused() {
        let zero = RetentionPolicy::default();
        assert_eq!(zero, policy(0, 0, 0));
        assert_eq!(zero.validate(), Err(RetentionError::KeepsNothing));
        let candidate = Candidate {
            name: "s1",
            time: at("2025-11-24T12:00:00Z"),
        };
        assert_eq!(
            select(&zero, &[candidate]),
            Err(RetentionError::KeepsNothing)
        );
        assert_eq!(select(&zero, &[]), Err(RetentionError::KeepsNothing));
        let message = RetentionError::KeepsNothing.to_string();
        assert!(message.contains("keep_last"), "{message}");
        assert!(message.contains("keep_daily"), "{message}");
        assert!(message.contains("keep_weekly"), "{message}");
        for valid in [policy(1, 0, 0), policy(0, 1, 0), policy(0, 0, 1)] {
            assert_eq!(valid.validate(), Ok(()), "{valid}");
        }
    }

    #[test]
    fn newest_is_kept_even_if_no_rule_keeps_it() {
        let verdict = |name: &str, reasons: Vec<KeepReason>| Verdict {
            name: name.to_owned(),
            time: UNIX_EPOCH,
            keep: false,
            reasons,
        };
        let mut verdicts = vec![verdict("new", vec![]), verdict("old", vec![])];
        keep_newest(&mut verdicts);
        assert_eq!(verdicts[0].reasons, vec![Newest]);
        assert_eq!(verdicts[1].reasons, vec![]);

        let mut verdicts = vec![verdict("new", vec![Daily])];
        keep_newest(&mut verdicts);
        assert_eq!(verdicts[0].reasons, vec![Daily]);

        keep_newest(&mut []);
    }

    #[test]
    fn newest_is_kept_by_every_valid_policy() {
        let snapshots = [
            ("old", at("2025-11-01T12:00:00Z")),
            ("new", at("2025-11-24T12:00:00Z")),
        ];
        for policy in [policy(1, 0, 0), policy(0, 1, 0), policy(0, 0, 1)] {
            let verdicts = judge(&policy, &snapshots);
            assert_eq!(verdicts[0].0, "new");
            assert!(!verdicts[0].1.is_empty(), "{policy}");
        }
    }

    #[test]
    fn days_and_weeks_before_1970() {
        let second = Duration::from_secs(1);
        let nano = Duration::from_nanos(1);
        assert_eq!(epoch_seconds(UNIX_EPOCH), 0);
        assert_eq!(epoch_seconds(UNIX_EPOCH - nano), -1);
        assert_eq!(epoch_seconds(UNIX_EPOCH - second), -1);
        assert_eq!(epoch_seconds(UNIX_EPOCH - second - nano), -2);
        assert_eq!(utc_day(UNIX_EPOCH), 0);
        assert_eq!(utc_day(UNIX_EPOCH - nano), -1);
        assert_eq!(utc_day(UNIX_EPOCH - Duration::from_secs(86_400)), -1);
        assert_eq!(utc_day(UNIX_EPOCH - Duration::from_secs(86_401)), -2);
        // Thursday 1970-01-01 is in the week of Monday 1969-12-29 (day -3), which ends on Sunday
        // 1970-01-04 (day 3); Monday 1970-01-05 (day 4) starts week 1.
        assert_eq!(week_of(-4), -1);
        assert_eq!(week_of(-3), 0);
        assert_eq!(week_of(0), 0);
        assert_eq!(week_of(3), 0);
        assert_eq!(week_of(4), 1);
        // 2025-11-24 (Monday) and 2025-11-23 (Sunday).
        let monday = utc_day(at("2025-11-24T00:00:00Z"));
        assert_eq!(week_of(monday), week_of(monday + 6));
        assert_eq!(week_of(monday) - 1, week_of(monday - 1));

        let snapshots = [
            ("thu-1970", UNIX_EPOCH),
            ("wed-1969", UNIX_EPOCH - nano),
            ("wed-1969-early", UNIX_EPOCH - Duration::from_secs(3600)),
            ("sun-1969", UNIX_EPOCH - Duration::from_secs(4 * 86_400 - 1)),
        ];
        assert_eq!(
            judge(&policy(0, 2, 2), &snapshots),
            vec![
                ("thu-1970".to_owned(), vec![Daily, Weekly]),
                ("wed-1969".to_owned(), vec![Daily]),
                ("wed-1969-early".to_owned(), vec![]),
                ("sun-1969".to_owned(), vec![Weekly]),
            ]
        );
    }

    #[test]
    fn extreme_times_do_not_panic() {
        let far = Duration::from_secs(u64::MAX / 2);
        let times: Vec<SystemTime> = [UNIX_EPOCH.checked_add(far), UNIX_EPOCH.checked_sub(far)]
            .into_iter()
            .flatten()
            .chain([UNIX_EPOCH])
            .collect();
        let snapshots: Vec<(&str, SystemTime)> = times.iter().map(|&time| ("s", time)).collect();
        let verdicts = judge(&policy(1, 5, 5), &snapshots);
        assert_eq!(verdicts.len(), times.len());
        assert_eq!(epoch_seconds(UNIX_EPOCH + Duration::from_secs(5)), 5);
    }

    #[test]
    fn display_leaves_out_zero_rules() {
        assert_eq!(
            policy(7, 14, 8).to_string(),
            "keep last 7, daily 14, weekly 8"
        );
        assert_eq!(policy(0, 14, 8).to_string(), "keep daily 14, weekly 8");
        assert_eq!(policy(7, 0, 0).to_string(), "keep last 7");
        assert_eq!(policy(0, 0, 4).to_string(), "keep weekly 4");
        assert_eq!(policy(0, 0, 0).to_string(), "keep nothing");
    }

    #[test]
    fn policy_serde() {
        let parsed: RetentionPolicy = serde_json::from_str(r#"{"keep_daily": 7}"#).unwrap();
        assert_eq!(parsed, policy(0, 7, 0));
        let parsed: RetentionPolicy = serde_json::from_str("{}").unwrap();
        assert_eq!(parsed, RetentionPolicy::default());
        let full = policy(3, 14, 8);
        let json = serde_json::to_string(&full).unwrap();
        assert_eq!(json, r#"{"keep_last":3,"keep_daily":14,"keep_weekly":8}"#);
        assert_eq!(
            serde_json::from_str::<RetentionPolicy>(&json).unwrap(),
            full
        );

        let unknown = serde_json::from_str::<RetentionPolicy>(r#"{"keep_monthly": 3}"#);
        assert!(unknown.unwrap_err().to_string().contains("unknown field"));
        assert!(serde_json::from_str::<RetentionPolicy>(r#"{"keep_last": -1}"#).is_err());
    }

    #[test]
    fn keep_reason_serde() {
        let reasons = vec![Last, Daily, Weekly, Newest];
        let json = serde_json::to_string(&reasons).unwrap();
        assert_eq!(json, r#"["last","daily","weekly","newest"]"#);
        assert_eq!(
            serde_json::from_str::<Vec<KeepReason>>(&json).unwrap(),
            reasons
        );
    }

    #[test]
    fn policy_schema_lists_the_rules() {
        let schema = serde_json::to_value(schemars::schema_for!(RetentionPolicy)).unwrap();
        let properties = schema["properties"].as_object().unwrap();
        let mut names: Vec<&str> = properties.keys().map(String::as_str).collect();
        names.sort_unstable();
        assert_eq!(names, ["keep_daily", "keep_last", "keep_weekly"]);
        assert_eq!(schema["additionalProperties"], serde_json::json!(false));
    }
}
