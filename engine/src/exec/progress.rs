//! Shows a run as it happens: live progress on a terminal, plain lines otherwise, or the journal's
//! records as a JSON event stream (`--output json`). A consumer of events; it never drives anything.
//! Text from input (titles, node names, errors, command output) is shown escaped (see
//! [`crate::shown`]), so it can neither drive the terminal nor read differently from what it is.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use super::terminal::Terminal;
use crate::humanize::{bytes, duration, human_ms};
use crate::journal::{Event, Record, RunResult, SkipReason, StepResult};
use crate::plan::Plan;
use crate::transfer::TransferMeter;

/// How long a step runs before plain-line progress says it is still running, and how often after.
pub const HEARTBEAT: Duration = Duration::from_secs(10);

/// How often running steps' progress is looked at: live lines show bytes moved this often.
pub const TICK: Duration = Duration::from_secs(1);

/// Where a run's progress goes.
pub struct Reporter {
    mode: Mode,
    verbosity: Verbosity,
    /// The steps running now, by key.
    running: HashMap<String, Running>,
    /// Whether a person asked for this rollback (`etcdrill rollback`), rather than a failure.
    rollback_requested: bool,
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
    /// One live line per running step on a terminal, finished steps scrolling above.
    Live(Terminal),
    /// One line per event, for logs, and a heartbeat for long steps.
    Lines(Box<dyn Write + Send>),
    /// One JSON record per line.
    Json(Box<dyn Write + Send>),
}

/// A running step, as progress follows it.
struct Running {
    started: Instant,
    /// When plain-line progress last said something about it.
    last_said: Instant,
    /// What its live line says besides the bytes moved.
    message: String,
    bar: Option<ProgressBar>,
    meter: Option<Arc<TransferMeter>>,
}

impl Running {
    /// Bytes moved so far and the rate, when the step moves any: `1.2 GiB of 2.0 GiB at 150.0
    /// MiB/s`.
    fn moved(&self, elapsed: Duration) -> Option<String> {
        let meter = self.meter.as_ref()?;
        let done = meter.done();
        if done == 0 {
            return None;
        }
        let seconds = elapsed.as_secs_f64().max(0.001);
        let rate = bytes(done as f64 / seconds);
        let done = bytes(done as f64);
        Some(match meter.total() {
            Some(total) => format!("{done} of {} at {rate}/s", bytes(total as f64)),
            None => format!("{done} at {rate}/s"),
        })
    }
}

impl Reporter {
    /// Human progress through `terminal`: live lines on a terminal, plain lines otherwise.
    pub fn human(terminal: &Terminal) -> Self {
        if terminal.bars().is_some() {
            Self::with(Mode::Live(terminal.clone()))
        } else {
            Self::lines(Box::new(std::io::stderr()))
        }
    }

    /// Plain lines to `out`.
    pub fn lines(out: Box<dyn Write + Send>) -> Self {
        Self::with(Mode::Lines(out))
    }

    /// The journal's records as JSON lines to `out`.
    pub fn json(out: Box<dyn Write + Send>) -> Self {
        Self::with(Mode::Json(out))
    }

    fn with(mode: Mode) -> Self {
        Self {
            mode,
            verbosity: Verbosity::Normal,
            running: HashMap::new(),
            rollback_requested: false,
        }
    }

    /// The same reporter, showing as much as `verbosity` says.
    pub fn with_verbosity(mut self, verbosity: Verbosity) -> Self {
        self.verbosity = verbosity;
        self
    }

    /// Shows one journal record.
    pub fn record(&mut self, plan: &Plan, record: &Record) {
        let now = Instant::now();
        let mut moved = None;
        match &record.event {
            Event::StepStarted { step, attempt } => {
                let message = live_message(plan, step, *attempt);
                let bar = match &self.mode {
                    Mode::Live(terminal) if self.verbosity != Verbosity::Quiet => {
                        terminal.bars().map(|bars| live_line(bars, &message))
                    }
                    Mode::Live(_) | Mode::Lines(_) | Mode::Json(_) => None,
                };
                let running = Running {
                    started: now,
                    last_said: now,
                    message,
                    bar,
                    meter: None,
                };
                if let Some(old) = self.running.insert(step.clone(), running) {
                    finish(old);
                }
                // A live line shows it; verbose also prints the planned operation above.
                if matches!(self.mode, Mode::Live(_)) && self.verbosity != Verbosity::Verbose {
                    return;
                }
            }
            Event::StepFinished {
                step, duration_ms, ..
            } => {
                if let Some(done) = self.running.remove(step) {
                    moved = done.moved(Duration::from_millis(*duration_ms));
                    finish(done);
                }
            }
            Event::RollbackRequested { .. } => self.rollback_requested = true,
            _ => {}
        }
        let verbosity = self.verbosity;
        if !matches!(self.mode, Mode::Json(_)) && !verbosity.shows(&record.event) {
            return;
        }
        let line = self
            .rollback_result(&record.event)
            .or_else(|| describe(plan, &record.event, verbosity))
            .map(|line| with_moved(line, moved))
            // Titles, node names, errors and command output come from input: shown escaped.
            .map(|line| crate::shown::escape(&line).into_owned());
        match &mut self.mode {
            Mode::Json(out) => {
                let line = serde_json::to_string(record).expect("a record serialises");
                let line = crate::shown::escape_json(&line);
                // Progress output is best effort: a closed pipe must not fail the run.
                let _ = writeln!(out, "{line}").and_then(|()| out.flush());
            }
            Mode::Lines(out) => {
                if let Some(line) = line {
                    let _ = writeln!(out, "{line}");
                }
            }
            Mode::Live(terminal) => {
                if let Some(line) = line {
                    terminal.println(&line);
                }
            }
        }
    }

    /// The result line of a rollback a person asked for: the run had not failed.
    fn rollback_result(&self, event: &Event) -> Option<String> {
        match event {
            Event::RunFinished {
                result: RunResult::RolledBack,
            } if self.rollback_requested => Some(
                "result: ROLLED BACK as asked: every rollback that ran succeeded (the report says \
                 what was left as it was)"
                    .into(),
            ),
            _ => None,
        }
    }

    /// Follows the bytes a running step moves.
    pub(crate) fn watch_transfer(&mut self, step: &str, meter: Arc<TransferMeter>) {
        if let Some(running) = self.running.get_mut(step) {
            running.meter = Some(meter);
        }
    }

    /// Brings running steps' progress up to date: live lines show the bytes moved; plain lines say
    /// which steps are still running once a step has run for [`HEARTBEAT`], and every
    /// [`HEARTBEAT`] after.
    pub fn heartbeat(&mut self, now: Instant) {
        if self.verbosity == Verbosity::Quiet {
            return;
        }
        match &mut self.mode {
            Mode::Json(_) => {}
            Mode::Live(_) => {
                for running in self.running.values() {
                    let elapsed = now.duration_since(running.started);
                    if let (Some(bar), Some(moved)) = (&running.bar, running.moved(elapsed)) {
                        bar.set_message(format!("{} ({moved})", running.message));
                    }
                }
            }
            Mode::Lines(out) => {
                let mut due: Vec<(&String, &mut Running)> = self
                    .running
                    .iter_mut()
                    .filter(|(_, running)| now.duration_since(running.last_said) >= HEARTBEAT)
                    .collect();
                due.sort_by(|a, b| a.0.cmp(b.0));
                for (step, running) in due {
                    running.last_said = now;
                    let elapsed = now.duration_since(running.started);
                    let moved = running
                        .moved(elapsed)
                        .map(|m| format!(": {m}"))
                        .unwrap_or_default();
                    let step = crate::shown::escape_line(step);
                    let _ = writeln!(
                        out,
                        "...     {step} still running ({}){moved}",
                        duration(elapsed)
                    );
                }
            }
        }
    }

    /// Shows a note for the person running etcdrill (not in JSON mode, where stdout is data).
    pub fn note(&mut self, text: &str) {
        let text = &*crate::shown::escape(text);
        match &mut self.mode {
            Mode::Json(_) => eprintln!("{text}"),
            Mode::Lines(out) => {
                let _ = writeln!(out, "{text}");
            }
            Mode::Live(terminal) => terminal.println(text),
        }
    }
}

fn finish(running: Running) {
    if let Some(bar) = running.bar {
        bar.finish_and_clear();
    }
}

/// A finished step's line with the bytes it moved: `ok      copy@a (6.0 s): 1.0 GiB ...`.
fn with_moved(line: String, moved: Option<String>) -> String {
    match moved {
        Some(moved) => format!("{line}: {moved}"),
        None => line,
    }
}

fn live_message(plan: &Plan, step: &str, attempt: u32) -> String {
    let retry = if attempt > 1 {
        format!(" [attempt {attempt}]")
    } else {
        String::new()
    };
    let message = format!("{step}: {}{retry}", title(plan, step));
    crate::shown::escape_line(&message).into_owned()
}

/// A spinner line for a running step, cut to the terminal's width so a narrow terminal never wraps
/// it.
fn live_line(bars: &MultiProgress, message: &str) -> ProgressBar {
    let bar = bars.add(ProgressBar::new_spinner());
    bar.set_style(
        ProgressStyle::with_template("{spinner} {elapsed:>4} {wide_msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_message(message.to_string());
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
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
        Event::StepStarted { step, .. } if verbose => format!(
            "start   {step}: {}\n{}",
            title(plan, step),
            planned(plan, step)
        ),
        Event::StepStarted { step, .. } => format!("start   {step}: {}", title(plan, step)),
        Event::StepFinished {
            step,
            result,
            duration_ms,
            output_tail,
            ..
        } => {
            let took = human_ms(*duration_ms);
            match result {
                StepResult::Succeeded if verbose => {
                    format!("ok      {step} ({took}){}", tail_lines(output_tail))
                }
                StepResult::Succeeded => format!("ok      {step} ({took})"),
                StepResult::Shown => format!(
                    "SHOWN   {step}: not run (check mode)\n{}",
                    indent(output_tail)
                ),
                StepResult::TimedOut => {
                    format!("TIMEOUT {step} after {took}{}", tail_lines(output_tail))
                }
                StepResult::Failed { error } => format!(
                    "FAILED  {step} ({took}): {error}{}",
                    tail_lines(output_tail)
                ),
            }
        }
        Event::StepSkipped {
            step,
            reason: reason @ SkipReason::CheckMode { .. },
        } => format!("NOT RUN {step}: {}", reason),
        Event::StepSkipped { step, reason } => format!("skipped {step}: {}", reason),
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
        Event::RollbackSkipped { step, reason } => format!("left as it was {step}: {reason}"),
        Event::Drill { stage } => format!("drill: {stage}"),
        // Shown as they were gathered, before the run began.
        Event::ClusterIdentified { .. } | Event::NodeFacts { .. } => return None,
        // This build wrote the journal: no event of a newer format reaches the terminal.
        Event::Unknown => return None,
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
                    "FAILED, then ROLLED BACK: every rollback that ran succeeded (the report says what was left as it was)",
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
    use std::sync::Mutex;

    use super::*;
    use crate::inventory::Cluster;
    use crate::journal::Timestamp;
    use crate::plan::compile;
    use crate::runbook::Runbook;
    use crate::source::SourceFile;

    /// What plain-line progress wrote, shared with the reporter.
    #[derive(Clone, Default)]
    struct Written(Arc<Mutex<Vec<u8>>>);

    impl Write for Written {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Written {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    fn plan() -> Plan {
        let runbook = Runbook::load(SourceFile::new(
            "rb.yaml",
            "name: t\nsummary: s\nsteps:\n  - {id: copy, title: Copy it, on: each, action: shell, with: {run: 'true'}}\n",
        ))
        .unwrap();
        let inventory = "name: lab\ndefaults: {etcd: {management: {static_pod: {}}}}\nnodes:\n  - {name: a, address: 10.0.0.1}\n";
        let cluster = Cluster::load(SourceFile::new("inv.yaml", inventory)).unwrap();
        compile(&runbook, &cluster, &[]).unwrap()
    }

    fn record(seq: u64, event: Event) -> Record {
        Record {
            seq,
            at: Timestamp::now(),
            event,
        }
    }

    #[test]
    fn plain_lines_say_when_a_step_starts_is_still_running_and_what_it_moved() {
        let plan = plan();
        let written = Written::default();
        let mut reporter = Reporter::lines(Box::new(written.clone()));
        let started = Instant::now();
        reporter.record(
            &plan,
            &record(
                1,
                Event::StepStarted {
                    step: "copy@a".into(),
                    attempt: 1,
                },
            ),
        );
        let meter = Arc::new(TransferMeter::default());
        meter.set_total(2 << 20);
        meter.add(1 << 20);
        reporter.watch_transfer("copy@a", Arc::clone(&meter));
        // Not yet a heartbeat's time: nothing is said.
        reporter.heartbeat(started + HEARTBEAT / 2);
        reporter.heartbeat(started + HEARTBEAT + Duration::from_secs(1));
        // Said once per heartbeat period, not at every tick.
        reporter.heartbeat(started + HEARTBEAT + Duration::from_secs(2));
        meter.add(1 << 20);
        reporter.record(
            &plan,
            &record(
                2,
                Event::StepFinished {
                    step: "copy@a".into(),
                    attempt: 1,
                    result: StepResult::Succeeded,
                    duration_ms: 11_000,
                    exit_status: Some(0),
                    outputs: Default::default(),
                    output_tail: String::new(),
                },
            ),
        );
        let text = written.text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert_eq!(lines[0], "start   copy@a: Copy it");
        assert!(
            lines[1].starts_with("...     copy@a still running (11.0 s): 1.0 MiB of 2.0 MiB at "),
            "{text}"
        );
        assert!(
            lines[2] == "ok      copy@a (11.0 s): 2.0 MiB of 2.0 MiB at 186.2 KiB/s",
            "{text}"
        );
    }

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
