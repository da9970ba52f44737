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
        Self { mode }
    }

    /// Plain lines to `out`.
    pub fn lines(out: Box<dyn Write + Send>) -> Self {
        Self {
            mode: Mode::Lines(out),
        }
    }

    /// The journal's records as JSON lines to `out`.
    pub fn json(out: Box<dyn Write + Send>) -> Self {
        Self {
            mode: Mode::Json(out),
        }
    }

    /// Shows one journal record.
    pub fn record(&mut self, plan: &Plan, record: &Record) {
        match &mut self.mode {
            Mode::Json(out) => {
                let line = serde_json::to_string(record).expect("a record serialises");
                // Progress output is best effort: a closed pipe must not fail the run.
                let _ = writeln!(out, "{line}").and_then(|()| out.flush());
            }
            Mode::Lines(out) => {
                if let Some(line) = describe(plan, &record.event) {
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
                if let Some(line) = describe(plan, &record.event) {
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
fn describe(plan: &Plan, event: &Event) -> Option<String> {
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
        Event::StepSkipped {
            step,
            reason: reason @ SkipReason::CheckMode { .. },
        } => format!("NOT RUN {step}: {}", skip_reason(reason)),
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
        Event::RollbackRequested { .. } => "undoing the run's completed steps, newest first".into(),
        Event::RollbackSkipped { step, reason } => format!(
            "left as it was {step}: {}",
            crate::report::rollback_skip_words(*reason)
        ),
        Event::Drill { stage } => format!("drill: {}", crate::report::drill_stage_words(stage)),
        Event::ClusterIdentified { .. } => return None,
        Event::ClusterIdChanged { from, to } => {
            format!("the cluster ID changed from {from} to {to} (a new cluster from a snapshot)")
        }
        Event::Interrupted { reason } => format!("stopping: {reason}; no new step starts"),
        Event::RunFinished { result } => format!(
            "result: {}",
            match result {
                RunResult::Succeeded => "SUCCEEDED",
                RunResult::Failed => "FAILED (nothing undone)",
                RunResult::RolledBack =>
                    "ROLLED BACK: every rollback that ran succeeded (the report says what was left as it was)",
                RunResult::RollbackFailed =>
                    "FAILED, and NOT everything could be undone: a person must check the cluster",
                RunResult::Interrupted => "INTERRUPTED",
            }
        ),
    })
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
        SkipReason::CheckMode { .. } => crate::report::skip_words(reason),
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
