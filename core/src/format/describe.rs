//! The words every human-readable format uses for a step: where it runs, when, what it waits
//! for, what it does and what undoes it. Text and Markdown lay these out; they never re-phrase.
//!
//! Everything that comes from a user's file (keys, node names, expressions, paths) goes through a
//! [`Style`], so each format quotes and escapes it its own way.

use petgraph::graph::NodeIndex;
use serde_json::Value;

use crate::plan::{Condition, Host, Operation, Phase, Plan, PlanStep, RoleGuard, Rollback};
use crate::runbook::action::{Action, CopyDirection, Nature};
use crate::runbook::step::Outcome;

/// How a format shows values taken from users' files.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    /// A key or an expression, shown as code: `` `x` `` in text and Markdown.
    pub code: fn(&str) -> String,
    /// A name, path or free text, shown as it is, but safely.
    pub plain: fn(&str) -> String,
}

/// The legend shown when some values are only known at run time.
pub const PLACEHOLDER_LEGEND: &str = "`⟨…⟩` marks a value known only at run time (a step output or a run value); it is filled in when the step runs.";

/// What an irreversible step means for the person running the plan.
pub const IRREVERSIBLE: &str = "IRREVERSIBLE: a failure after this step needs a person";

/// Whether any step of the plan holds a run-time placeholder.
pub fn has_placeholders(plan: &Plan) -> bool {
    plan.graph
        .node_weights()
        .any(|step| step.template.is_some())
}

/// `PROBE` or `ACTION`.
pub fn nature(step: &PlanStep) -> &'static str {
    match step.nature {
        Nature::Probe => "PROBE",
        Nature::Action => "ACTION",
    }
}

/// Where a step runs: a node name, `the controller` or `the cluster`.
pub fn host(style: &Style, host: &Host) -> String {
    match host {
        Host::Controller => "the controller".into(),
        Host::Cluster => "the cluster".into(),
        Host::Node(name) => (style.plain)(name),
    }
}

/// The run-time role guard of a per-node instance, in words.
pub fn role(style: &Style, step: &PlanStep) -> Option<String> {
    let what = match step.role? {
        RoleGuard::Leader => "the leader",
        RoleGuard::Follower => "a follower",
    };
    Some(format!(
        "runs only if {} is {what} (resolved at run time)",
        host(style, &step.host)
    ))
}

/// The step's condition, in words, when it has one.
pub fn condition(style: &Style, step: &PlanStep) -> Option<String> {
    match &step.when {
        Condition::Always => None,
        Condition::AtRunTime(expression) => Some(format!(
            "runs only if {} is true (evaluated at run time)",
            (style.code)(expression)
        )),
        Condition::SkippedAtCompile(expression) => {
            Some(format!("skipped: {} is false", (style.code)(expression)))
        }
    }
}

/// Which part of the run a steady-state probe belongs to; nothing for main steps.
pub fn phase(step: &PlanStep) -> Option<&'static str> {
    match step.phase {
        Phase::SteadyBefore => Some("steady state, checked before the first step"),
        Phase::SteadyAfter => Some("steady state, checked after the last step"),
        Phase::Main => None,
    }
}

/// Timeout and retries, e.g. `timeout 2m, 3 retries (backoff 1s, at most 30s)`.
pub fn limits(step: &PlanStep) -> String {
    let retries = &step.retries;
    match retries.attempts {
        0 => format!("timeout {}", step.timeout),
        n => format!(
            "timeout {}, {n} {} (backoff {}, at most {})",
            step.timeout,
            if n == 1 { "retry" } else { "retries" },
            retries.backoff,
            retries.max_backoff
        ),
    }
}

/// What a step waits for, one phrase per outcome waited for, e.g. ``waits for `a`, `b` ``.
pub fn waits(style: &Style, plan: &Plan, index: NodeIndex) -> Vec<String> {
    let needs = plan.needs(index);
    let keys = |outcome: Outcome| -> Option<String> {
        let keys: Vec<String> = needs
            .iter()
            .filter(|(_, o)| *o == outcome)
            .map(|(dependency, _)| (style.code)(&dependency.key))
            .collect();
        (!keys.is_empty()).then(|| keys.join(", "))
    };
    [
        keys(Outcome::Success).map(|keys| format!("waits for {keys}")),
        keys(Outcome::Failure).map(|keys| format!("runs only if {keys} FAILED")),
        keys(Outcome::Always)
            .map(|keys| format!("runs once {keys} finished, whether it succeeded or failed")),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// Output names a step makes available, with their capture for `shell` steps.
pub fn outputs(style: &Style, step: &PlanStep) -> Option<String> {
    if step.outputs.is_empty() {
        return None;
    }
    let names: Vec<String> = step
        .outputs
        .iter()
        .map(|name| match step.captures.get(name) {
            Some(capture) => format!(
                "{} ({})",
                (style.code)(name),
                (style.plain)(&capture.to_string())
            ),
            None => (style.code)(name),
        })
        .collect();
    Some(names.join(", "))
}

/// An operation broken into what a format lays out: a headline, arguments and a script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperationView {
    /// One line saying what runs where.
    pub headline: String,
    /// `name: value` arguments of a typed call, values as JSON text.
    pub args: Vec<(String, String)>,
    /// The script of a shell operation, as rendered (not escaped).
    pub script: Option<String>,
}

/// Describes an operation run on `host`.
pub fn operation(style: &Style, operation: &Operation, host: &Host) -> OperationView {
    let plain = style.plain;
    let view = |headline: String, args: Vec<(String, String)>| OperationView {
        headline,
        args,
        script: None,
    };
    match operation {
        Operation::Script { script } => OperationView {
            headline: format!("shell script on {}", self::host(style, host)),
            args: Vec::new(),
            script: Some(script.clone()),
        },
        Operation::Etcd { endpoints, call } => view(
            format!(
                "etcd API {} -> {}",
                plain(call.kind().name()),
                plain(&endpoints.join(", "))
            ),
            args(call),
        ),
        Operation::Native { call } => view(
            format!("etcdrill {} on the controller", plain(call.kind().name())),
            args(call),
        ),
        Operation::Copy {
            direction,
            from,
            to,
        } => {
            let node = self::host(style, host);
            let (source, destination) = match direction {
                CopyDirection::Push => ("the controller".to_string(), node),
                CopyDirection::Pull => (node, "the controller".to_string()),
            };
            view(
                format!(
                    "copy {} from {source} to {} on {destination}",
                    plain(from),
                    plain(to)
                ),
                Vec::new(),
            )
        }
        Operation::Distribute {
            from,
            to,
            save_from,
        } => view(
            format!(
                "stream snapshot {} from the controller to {} on {} (one read for every node \
                 starting with it; sha256 and trailer checked before the rename){}",
                plain(from),
                plain(to),
                self::host(style, host),
                if save_from.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; when it is missing, taken from a member of {} as it streams",
                        plain(&save_from.join(", "))
                    )
                }
            ),
            Vec::new(),
        ),
    }
}

/// The arguments of a typed call, unset optional ones left out.
fn args(call: &Action) -> Vec<(String, String)> {
    let value = serde_json::to_value(call).unwrap_or(Value::Null);
    let Some(with) = value.get("with").and_then(Value::as_object) else {
        return Vec::new();
    };
    with.iter()
        .filter(|(_, value)| !value.is_null())
        .map(|(name, value)| (name.clone(), value.to_string()))
        .collect()
}

/// What undoes a step: a sentence, or an operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RollbackView {
    /// Nothing runs; this sentence says why.
    Sentence(&'static str),
    /// This operation runs.
    Run(OperationView),
}

/// Describes a step's rollback.
pub fn rollback(style: &Style, step: &PlanStep) -> RollbackView {
    match &step.rollback {
        Rollback::NotNeeded => RollbackView::Sentence("not needed"),
        Rollback::Irreversible => RollbackView::Sentence(IRREVERSIBLE),
        Rollback::Declined => RollbackView::Sentence("none: nothing undoes this step"),
        Rollback::Run { operation: undo } => RollbackView::Run(operation(style, undo, &step.host)),
    }
}

/// A short rollback summary for tables: `not needed`, `IRREVERSIBLE`, `none`, or what runs.
pub fn rollback_summary(step: &PlanStep) -> &'static str {
    match &step.rollback {
        Rollback::NotNeeded => "not needed",
        Rollback::Irreversible => "IRREVERSIBLE",
        Rollback::Declined => "none",
        Rollback::Run { operation } => match operation {
            Operation::Script { .. } => "script",
            Operation::Etcd { .. } => "etcd API call",
            Operation::Native { .. } => "etcdrill call",
            Operation::Copy { .. } => "copy",
            Operation::Distribute { .. } => "snapshot stream",
        },
    }
}

/// The plan's closing line, e.g. `13 steps (4 probes, 1 destructive) on 3 nodes in 7 waves`.
pub fn summary(plan: &Plan) -> String {
    let summary = plan.summary();
    let count =
        |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    format!(
        "{} ({}, {} destructive) on {} in {}",
        count(summary.steps, "step", "steps"),
        count(summary.probes, "probe", "probes"),
        summary.destructive,
        count(summary.nodes, "node", "nodes"),
        count(summary.waves, "wave", "waves"),
    )
}

/// `text` made safe for one line of a terminal or a document: control characters, line breaks
/// included, and bidirectional and zero-width characters are shown escaped (`\n`, `\u{1b}`,
/// `\u{202e}`), so a hostile name cannot move the cursor, fake a line of the plan or read
/// differently from what runs.
pub fn one_line(text: &str) -> String {
    text.chars().map(escape_control).collect()
}

/// Like [`one_line`], but keeps line breaks and tabs: for scripts.
pub fn block(text: &str) -> String {
    text.chars()
        .map(|c| {
            if matches!(c, '\n' | '\t') {
                c.to_string()
            } else {
                escape_control(c)
            }
        })
        .collect()
}

fn escape_control(c: char) -> String {
    if crate::shown::is_control_or_invisible(c) {
        c.escape_default().to_string()
    } else {
        c.to_string()
    }
}

/// The first 12 hex digits of a digest.
pub fn short_digest(sha256: &str) -> &str {
    sha256.get(..12).unwrap_or(sha256)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runbook::action::{KvPutArgs, NoArgs};

    const TEXT: Style = Style {
        code: |text| format!("`{text}`"),
        plain: |text| text.to_string(),
    };

    /// A view on lines: the headline, `name=value` arguments, then the script.
    fn lines(view: &OperationView) -> Vec<String> {
        let args = view
            .args
            .iter()
            .map(|(name, value)| format!("{name}={value}"));
        std::iter::once(view.headline.clone())
            .chain(args)
            .chain(view.script.clone())
            .collect()
    }

    #[test]
    fn operations_read_as_one_line_and_arguments() {
        let node = Host::Node("cp1".into());
        let put = Action::EtcdKvPut(KvPutArgs {
            key: "k".into(),
            value: "v \"q\"".into(),
        });
        let cases = [
            (
                Operation::Script {
                    script: "echo hi".into(),
                },
                vec!["shell script on cp1", "echo hi"],
            ),
            (
                Operation::Etcd {
                    endpoints: vec!["https://a:2379".into(), "https://b:2379".into()],
                    call: put,
                },
                vec![
                    "etcd API etcd.kv.put -> https://a:2379, https://b:2379",
                    "key=\"k\"",
                    "value=\"v \\\"q\\\"\"",
                ],
            ),
            (
                Operation::Native {
                    call: Action::EtcdDefrag(NoArgs {}),
                },
                vec!["etcdrill etcd.defrag on the controller"],
            ),
            (
                Operation::Copy {
                    direction: CopyDirection::Pull,
                    from: "/a".into(),
                    to: "/b".into(),
                },
                vec!["copy /a from cp1 to /b on the controller"],
            ),
        ];
        for (op, expected) in cases {
            assert_eq!(lines(&operation(&TEXT, &op, &node)), expected);
        }
    }

    #[test]
    fn control_characters_are_shown_escaped() {
        let cases = [
            ("plain ⟨x⟩", "plain ⟨x⟩", "plain ⟨x⟩"),
            ("a\nb", "a\\nb", "a\nb"),
            ("\u{1b}[2J", "\\u{1b}[2J", "\\u{1b}[2J"),
            ("tab\there", "tab\\there", "tab\there"),
        ];
        for (input, line, kept) in cases {
            assert_eq!(one_line(input), line, "{input:?}");
            assert_eq!(block(input), kept, "{input:?}");
        }
    }

    #[test]
    fn digests_are_shortened_safely() {
        assert_eq!(short_digest("0123456789abcdef"), "0123456789ab");
        assert_eq!(short_digest("abc"), "abc");
    }
}
