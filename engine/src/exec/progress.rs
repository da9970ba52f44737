//! Shows a run as it happens: live progress on a terminal, plain lines otherwise, or the journal's
//! records as a JSON event stream (`--output json`). A consumer of events; it never drives anything.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::journal::{Event, Record, RunResult, SkipReason, StepResult};
use crate::plan::Plan;

/// Where a run's progress goes.
pub struct Reporter {
    mode: Mode,
    verbosity: Verbosity,
}

/// How much progress a person is shown (`--quiet`, `--verbose`); JSON output is always whole.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Verbosity {
    /// Only failures and the result.
    Quiet,
    /// A line per step.
    #[default]
    Normal,
    /// Also each step's operation as planned when it starts, and its output when it succeeds.
    Verbose,
}

impl Verbosity {
    /// Whether a person is shown `event` at all.
    fn shows(self, event: &Event) -> bool {
        self != Verbosity::Quiet
            || match event {
                Event::StepFinished { result, .. } | Event::RollbackFinished { result, .. } => {
                    matches!(result, StepResult::Failed { .. } | StepResult::TimedOut)
                }
                Event::Interrupted { .. } | Event::RunFinished { .. } => true,
                _ => false,
            }
    }
}

enum Mode {
    /// Spinners on a terminal.
    Live {
        bars: MultiProgress,
        running: HashMap<String, ProgressBar>,
    },
    /// One line per event, for logs.
    Lines(Box<dyn Write + Send>),
    /// One JSON record per line.
    Json(Box<dyn Write + Send>),
}

impl Reporter {
    /// Human progress on stderr: live spinners on a terminal, plain lines otherwise.
    pub fn human() -> Self {
        let mode = if std::io::stderr().is_terminal() {
            Mode::Live {
                bars: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
                running: HashMap::new(),
            }
        } else {
            Mode::Lines(Box::new(std::io::stderr()))
        };
        Self {
            mode,
            verbosity: Verbosity::Normal,
        }
    }

    /// The same reporter, showing as much as `verbosity` says.
    pub fn with_verbosity(mut self, verbosity: Verbosity) -> Self {
        self.verbosity = verbosity;
        self
    }

    /// Plain lines to `out`.
    pub fn lines(out: Box<dyn Write + Send>) -> Self {
        Self {
            mode: Mode::Lines(out),
            verbosity: Verbosity::Normal,
        }
    }

    /// The journal's records as JSON lines to `out`.
    pub fn json(out: Box<dyn Write + Send>) -> Self {
        Self {
            mode: Mode::Json(out),
            verbosity: Verbosity::Normal,
        }
    }

    /// Shows one journal record.
    pub fn record(&mut self, plan: &Plan, record: &Record) {
        let verbosity = self.verbosity;
        if !matches!(self.mode, Mode::Json(_)) && !verbosity.shows(&record.event) {
            return;
        }
        match &mut self.mode {
            Mode::Json(out) => {
                let line = serde_json::to_string(record).expect("a record serialises");
                // Progress output is best effort: a closed pipe must not fail the run.
                let _ = writeln!(out, "{line}").and_then(|()| out.flush());
            }
            Mode::Lines(out) => {
                if let Some(line) = describe(plan, &record.event, verbosity) {
                    let _ = writeln!(out, "{line}");
                }
            }
            Mode::Live { bars, running } => {
                match &record.event {
                    Event::StepStarted { step, attempt } => {
                        let bar = bars.add(ProgressBar::new_spinner());
                        bar.set_style(
                            ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
                                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                        );
                        let title = title(plan, step);
                        let retry = if *attempt > 1 {
                            format!(" [attempt {attempt}]")
                        } else {
                            String::new()
                        };
                        bar.set_message(format!("{step}: {title}{retry}"));
                        bar.enable_steady_tick(Duration::from_millis(120));
                        if let Some(old) = running.insert(step.clone(), bar) {
                            old.finish_and_clear();
                        }
                        return;
                    }
                    Event::StepFinished { step, .. } => {
                        if let Some(bar) = running.remove(step) {
                            bar.finish_and_clear();
                        }
                    }
                    _ => {}
                }
                if let Some(line) = describe(plan, &record.event, verbosity) {
                    let _ = bars.println(line);
                }
            }
        }
    }

    /// Shows a note for the person running etcdrill (not in JSON mode, where stdout is data).
    pub fn note(&mut self, text: &str) {
        match &mut self.mode {
            Mode::Json(_) => eprintln!("{text}"),
            Mode::Lines(out) => {
                let _ = writeln!(out, "{text}");
            }
            Mode::Live { bars, .. } => {
                let _ = bars.println(text);
            }
        }
    }
}

fn title<'p>(plan: &'p Plan, key: &str) -> &'p str {
    plan.find(key).map_or("", |i| plan.graph[i].title.as_str())
}

/// One line for a person, or nothing for events that speak through others.
fn describe(plan: &Plan, event: &Event, verbosity: Verbosity) -> Option<String> {
    let verbose = verbosity == Verbosity::Verbose;
    Some(match event {
        Event::RunStarted {
            runbook,
            inventory,
            check,
            ..
        } => {
            let mode = if *check {
                " in CHECK MODE: probes run, actions are only shown"
            } else {
                ""
            };
            format!("run of `{runbook}` on `{inventory}`{mode}")
        }
        Event::RunResumed { previous_records } => {
            format!("resuming after {previous_records} recorded events")
        }
        Event::RolesResolved { leader, followers } => format!(
            "leader: {}; followers: {}",
            leader.as_deref().unwrap_or("none"),
            if followers.is_empty() {
                "none".to_string()
            } else {
                followers.join(", ")
            }
        ),
        Event::StepStarted { step, attempt } if *attempt > 1 => {
            format!("  retry {attempt} of {step}")
        }
        Event::StepStarted { step, .. } if verbose => {
            format!(
                "start   {step}: {}\n{}",
                title(plan, step),
                planned(plan, step)
            )
        }
        Event::StepStarted { .. } => return None,
        Event::StepFinished {
            step,
            result,
            duration_ms,
            output_tail,
            ..
        } => {
            let seconds = *duration_ms as f64 / 1000.0;
            match result {
                StepResult::Succeeded if verbose => {
                    format!("ok      {step} ({seconds:.1}s){}", tail_lines(output_tail))
                }
                StepResult::Succeeded => format!("ok      {step} ({seconds:.1}s)"),
                StepResult::Shown => format!(
                    "SHOWN   {step}: not run (check mode)\n{}",
                    indent(output_tail)
                ),
                StepResult::TimedOut => format!(
                    "TIMEOUT {step} after {seconds:.1}s{}",
                    tail_lines(output_tail)
                ),
                StepResult::Failed { error } => format!(
                    "FAILED  {step} ({seconds:.1}s): {error}{}",
                    tail_lines(output_tail)
                ),
            }
        }
        Event::StepSkipped { step, reason } => format!("skipped {step}: {}", skip_reason(reason)),
        Event::Confirmed { step, answer, by } => {
            format!(
                "{} {step} ({by})",
                if *answer { "confirmed" } else { "DECLINED" }
            )
        }
        Event::RollbackStarted { step } => format!("undoing {step}: {}", title(plan, step)),
        Event::RollbackFinished {
            step,
            result,
            output_tail,
            ..
        } => match result {
            StepResult::Succeeded => format!("undone  {step}"),
            StepResult::Failed { error } => {
                format!("NOT UNDONE {step}: {error}{}", tail_lines(output_tail))
            }
            StepResult::TimedOut => format!("NOT UNDONE {step}: timed out"),
            StepResult::Shown => format!("undo of {step} shown"),
        },
        Event::Interrupted { reason } => format!("stopping: {reason}; no new step starts"),
        Event::RunFinished { result } => format!(
            "result: {}",
            match result {
                RunResult::Succeeded => "SUCCEEDED",
                RunResult::Failed => "FAILED (nothing undone)",
                RunResult::RolledBack => "FAILED, and every completed step was undone",
                RunResult::RollbackFailed =>
                    "FAILED, and NOT everything could be undone: a person must check the cluster",
                RunResult::Interrupted => "INTERRUPTED",
            }
        ),
    })
}

/// A step's operation as planned (run-time values as placeholders), indented.
fn planned(plan: &Plan, key: &str) -> String {
    let Some(index) = plan.find(key) else {
        return String::new();
    };
    let step = &plan.graph[index];
    let style = crate::format::describe::Style {
        code: |text| format!("`{text}`"),
        plain: |text| text.to_string(),
    };
    let view = crate::format::describe::operation(&style, &step.operation, &step.host);
    let mut lines = vec![view.headline];
    lines.extend(
        view.args
            .iter()
            .map(|(name, value)| format!("  {name}: {value}")),
    );
    lines.extend(
        view.script
            .iter()
            .flat_map(|s| s.lines().map(|l| format!("  {l}"))),
    );
    indent(&lines.join("\n"))
}

fn skip_reason(reason: &SkipReason) -> String {
    match reason {
        SkipReason::Condition { expression } => format!("`{expression}` is false"),
        SkipReason::Role { wanted } => format!("this node is not the {wanted}"),
        SkipReason::Dependency { dependency } => {
            format!("`{dependency}` did not end the way this step waits for")
        }
        SkipReason::Declined => "declined at its confirmation gate".into(),
        SkipReason::Interrupted => "the run was stopped".into(),
        SkipReason::FailFast => "an earlier step failed".into(),
    }
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("        {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn tail_lines(output: &str) -> String {
    let lines: Vec<&str> = output.lines().filter(|l| !l.trim().is_empty()).collect();
    let last = &lines[lines.len().saturating_sub(5)..];
    if last.is_empty() {
        String::new()
    } else {
        format!("\n{}", indent(&last.join("\n")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_shows_only_failures_and_the_end() {
        let failed = StepResult::Failed {
            error: "boom".into(),
        };
        let finished = |result: StepResult| Event::StepFinished {
            step: "s".into(),
            attempt: 1,
            result,
            duration_ms: 1,
            exit_status: None,
            outputs: Default::default(),
            output_tail: String::new(),
        };
        let cases = [
            (finished(StepResult::Succeeded), false),
            (finished(failed.clone()), true),
            (finished(StepResult::TimedOut), true),
            (
                Event::StepStarted {
                    step: "s".into(),
                    attempt: 1,
                },
                false,
            ),
            (
                Event::RunFinished {
                    result: RunResult::Succeeded,
                },
                true,
            ),
        ];
        for (event, shown) in cases {
            assert_eq!(Verbosity::Quiet.shows(&event), shown, "{event:?}");
            assert!(Verbosity::Normal.shows(&event));
            assert!(Verbosity::Verbose.shows(&event));
        }
    }
}
