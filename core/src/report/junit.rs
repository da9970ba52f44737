//! The report as JUnit XML, so CI systems and schedulers can track drills over time: one test
//! suite per run, a test case per step instance, per rollback that ran and per drill
//! verification. Failed and timed-out steps are failures, steps with no recorded end are errors,
//! and steps that did not run are skipped.

use std::fmt::{Result, Write};

use super::{Report, StepReport, StepStatus, result_words};
use crate::humanize::human_ms;
use crate::journal::StepResult;

/// Renders `report` as JUnit XML.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    write_report(&mut out, report).expect("writing to a String cannot fail");
    out
}

/// How a test case ended.
enum Case {
    Passed,
    Failure { kind: &'static str, message: String },
    Error { message: String },
    Skipped { message: String },
}

struct TestCase {
    classname: String,
    name: String,
    time_ms: u64,
    case: Case,
    output: String,
}

fn cases(report: &Report) -> Vec<TestCase> {
    let runbook = &report.run.runbook;
    let mut cases: Vec<TestCase> = report
        .steps
        .iter()
        .map(|step| TestCase {
            classname: runbook.clone(),
            name: step.key.clone(),
            time_ms: step.duration_ms.unwrap_or(0),
            case: step_case(step),
            output: step.output_tail.clone(),
        })
        .collect();
    for step in &report.steps {
        if let Some(rollback) = &step.rollback {
            cases.push(TestCase {
                classname: format!("{runbook}.rollback"),
                name: step.key.clone(),
                time_ms: rollback.duration_ms,
                case: match &rollback.result {
                    Some(StepResult::Succeeded) => Case::Passed,
                    None => Case::Error {
                        message: "the rollback started and has no recorded end".into(),
                    },
                    other => Case::Failure {
                        kind: "rollback_failed",
                        message: format!("rollback {}", result_words(other.as_ref())),
                    },
                },
                output: rollback.output_tail.clone(),
            });
        }
    }
    for verification in report.drill.iter().flat_map(|d| &d.verifications) {
        cases.push(TestCase {
            classname: format!("{runbook}.verification"),
            name: verification.name.clone(),
            time_ms: 0,
            case: if verification.passed {
                Case::Passed
            } else {
                Case::Failure {
                    kind: "verification_failed",
                    message: verification.detail.clone(),
                }
            },
            output: verification.detail.clone(),
        });
    }
    cases
}

fn step_case(step: &StepReport) -> Case {
    match step.status {
        StepStatus::Succeeded | StepStatus::Shown => Case::Passed,
        StepStatus::Failed => Case::Failure {
            kind: "failed",
            message: step.error.clone().unwrap_or_else(|| "failed".into()),
        },
        StepStatus::TimedOut => Case::Failure {
            kind: "timed_out",
            message: step.error.clone().unwrap_or_else(|| "timed out".into()),
        },
        StepStatus::NoRecordedEnd => Case::Error {
            message: "started and has no recorded end".into(),
        },
        StepStatus::Skipped => Case::Skipped {
            message: step
                .skip
                .as_ref()
                .map_or("skipped".into(), ToString::to_string),
        },
        StepStatus::NotRun => Case::Skipped {
            message: "not run: the run ended first".into(),
        },
    }
}

fn write_report(out: &mut String, report: &Report) -> Result {
    let cases = cases(report);
    let count = |f: fn(&Case) -> bool| cases.iter().filter(|c| f(&c.case)).count();
    let failures = count(|c| matches!(c, Case::Failure { .. }));
    let errors = count(|c| matches!(c, Case::Error { .. }));
    let skipped = count(|c| matches!(c, Case::Skipped { .. }));
    let time = seconds(report.timing.total_ms);
    let timestamp = timestamp(report);
    let suite = format!("etcdrill: {}", report.run.runbook);
    writeln!(out, r#"<?xml version="1.0" encoding="UTF-8"?>"#)?;
    writeln!(
        out,
        r#"<testsuites name="{}" tests="{}" failures="{failures}" errors="{errors}" skipped="{skipped}" time="{time}" timestamp="{timestamp}">"#,
        attr(&suite),
        cases.len(),
    )?;
    writeln!(
        out,
        r#"  <testsuite name="{}" tests="{}" failures="{failures}" errors="{errors}" skipped="{skipped}" time="{time}" timestamp="{timestamp}" id="{}">"#,
        attr(&suite),
        cases.len(),
        attr(&report.run.id),
    )?;
    writeln!(out, "    <properties>")?;
    for (name, value) in properties(report) {
        writeln!(
            out,
            r#"      <property name="{}" value="{}"/>"#,
            attr(&name),
            attr(&value)
        )?;
    }
    writeln!(out, "    </properties>")?;
    for case in &cases {
        write!(
            out,
            r#"    <testcase classname="{}" name="{}" time="{}""#,
            attr(&case.classname),
            attr(&case.name),
            seconds(case.time_ms)
        )?;
        if matches!(case.case, Case::Passed) && case.output.is_empty() {
            writeln!(out, "/>")?;
            continue;
        }
        writeln!(out, ">")?;
        match &case.case {
            Case::Passed => {}
            Case::Failure { kind, message } => writeln!(
                out,
                r#"      <failure message="{}" type="{kind}">{}</failure>"#,
                attr(message),
                text(message)
            )?,
            Case::Error { message } => writeln!(
                out,
                r#"      <error message="{}" type="no_recorded_end"/>"#,
                attr(message)
            )?,
            Case::Skipped { message } => {
                writeln!(out, r#"      <skipped message="{}"/>"#, attr(message))?
            }
        }
        if !case.output.is_empty() {
            writeln!(out, "      <system-out>{}</system-out>", text(&case.output))?;
        }
        writeln!(out, "    </testcase>")?;
    }
    writeln!(out, "  </testsuite>")?;
    writeln!(out, "</testsuites>")
}

/// Run facts CI can chart: verdict, total, downtime, RTO and RPO.
fn properties(report: &Report) -> Vec<(String, String)> {
    let mut properties = vec![
        ("run_id".to_string(), report.run.id.clone()),
        ("runbook".into(), report.run.runbook.clone()),
        ("inventory".into(), report.run.inventory.clone()),
        ("verdict".into(), report.verdict.outcome.name().into()),
        ("check".into(), report.run.check.to_string()),
        ("total_ms".into(), report.timing.total_ms.to_string()),
        ("sessions".into(), report.timing.sessions.to_string()),
    ];
    if let Some(ms) = report.downtime.as_ref().and_then(|d| d.duration_ms) {
        properties.push(("downtime_ms".into(), ms.to_string()));
    }
    if let Some(drill) = &report.drill {
        if let Some(rto) = drill.rto {
            properties.push(("rto_ms".into(), rto.as_millis().to_string()));
        }
        if let Some(rpo) = &drill.rpo {
            properties.push((
                "rpo_snapshot_age_ms".into(),
                rpo.snapshot_age.as_millis().to_string(),
            ));
            if let Some(lost) = rpo.revisions_lost {
                properties.push(("rpo_revisions_lost".into(), lost.to_string()));
            }
        }
    }
    if let Some(reason) = &report.verdict.reason {
        properties.push(("reason".into(), reason.clone()));
    }
    properties.push(("total".into(), human_ms(report.timing.total_ms)));
    properties
}

/// Seconds with milliseconds, as JUnit's `time` wants them.
fn seconds(ms: u64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

/// The run's start as JUnit's `timestamp`: ISO 8601 without a zone (the schema's pattern), in UTC.
fn timestamp(report: &Report) -> String {
    let text = humantime::format_rfc3339_seconds(report.timing.started_at.0).to_string();
    text.trim_end_matches('Z').to_string()
}

/// Text content: markup characters escaped, and characters XML 1.0 cannot hold, control,
/// bidirectional and zero-width characters shown escaped.
fn text(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\n' | '\t' | '\r' => out.push(c),
            c if !is_xml_char(c) || crate::shown::is_control_or_invisible(c) => {
                out.push_str(&c.escape_default().to_string())
            }
            c => out.push(c),
        }
    }
    out
}

/// An attribute value: also quotes escaped, and line breaks kept as references.
fn attr(value: &str) -> String {
    text(value)
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
        .replace('\n', "&#10;")
        .replace('\t', "&#9;")
        .replace('\r', "&#13;")
}

/// Whether XML 1.0 allows `c` in a document.
fn is_xml_char(c: char) -> bool {
    matches!(c, '\u{9}' | '\u{A}' | '\u{D}' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_attributes_are_escaped() {
        assert_eq!(text("a<b>&c"), "a&lt;b&gt;&amp;c");
        assert_eq!(text("x\u{1b}[2J\u{0}"), "x\\u{1b}[2J\\u{0}");
        assert_eq!(attr("\"q\" 'a'\nb"), "&quot;q&quot; &apos;a&apos;&#10;b");
        assert_eq!(seconds(12_345), "12.345");
        assert_eq!(seconds(5), "0.005");
    }
}
