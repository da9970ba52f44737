//! Runs one plan step's operation: attempts with timeouts and backoff, outputs captured, every
//! message redacted. It reports what happened as [`Message`]s and never writes the journal or the
//! terminal itself: the dispatcher does.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use petgraph::graph::NodeIndex;
use tokio::sync::mpsc::UnboundedSender;

use crate::etcd::{self, EtcdAccess};
use crate::inventory::Cluster;
use crate::journal::{OUTPUT_TAIL_BYTES, StepResult, tail};
use crate::plan::{Host, Operation, PlanStep};
use crate::redact::Redactor;
use crate::runbook::action::{ActionKind, CopyDirection};
use crate::runbook::step::OutputCapture;
use crate::transfer::TransferMeter;
use crate::transport::{CommandRequest, Transport};

/// How long a killed command gets between SIGTERM and SIGKILL.
const KILL_GRACE: Duration = Duration::from_secs(10);
/// The prefix typed node scripts print their outputs with: `etcdrill-output name=value`.
const OUTPUT_PREFIX: &str = "etcdrill-output ";

/// What a step execution tells the dispatcher.
#[derive(Debug)]
pub(crate) enum Message {
    /// An attempt began; `meter` counts the bytes it moves, if it moves any.
    Started {
        index: NodeIndex,
        attempt: u32,
        meter: Arc<TransferMeter>,
    },
    /// An attempt ended; `last` when no further attempt follows. `outputs` hold real values,
    /// secrets included; everything else is already redacted.
    Finished {
        index: NodeIndex,
        attempt: u32,
        result: StepResult,
        duration: Duration,
        exit_status: Option<i32>,
        outputs: BTreeMap<String, String>,
        output_tail: String,
        last: bool,
    },
}

/// What every step execution needs: connections, credentials, the inventory, the redactor.
pub(crate) struct StepEnv<'a> {
    pub transports: &'a HashMap<String, Transport>,
    pub local: &'a Transport,
    pub access: &'a EtcdAccess,
    pub cluster: &'a Cluster,
    pub redactor: &'a Redactor,
    /// The run's id: with the node, it names the temporary files a copy writes.
    pub run_id: &'a str,
    /// Where the instances of a snapshot distribution meet to share one read.
    pub rounds: &'a crate::distribute::Rounds,
}

impl StepEnv<'_> {
    fn transport(&self, host: &Host) -> Result<(&Transport, bool), String> {
        match host {
            Host::Node(name) => {
                let sudo = self
                    .cluster
                    .node(name)
                    .and_then(|n| n.ssh.sudo)
                    .unwrap_or(false);
                self.transports
                    .get(name)
                    .map(|t| (t, sudo))
                    .ok_or_else(|| format!("no connection to node `{name}`"))
            }
            Host::Controller | Host::Cluster => Ok((self.local, false)),
        }
    }

    /// Names a copy's temporary file: nodes may share the directory (one NFS backup dir), so it
    /// carries the run and the node.
    fn writer(&self, host: &Host) -> String {
        match host {
            Host::Node(name) => format!("{}.{name}", self.run_id),
            Host::Controller | Host::Cluster => self.run_id.to_owned(),
        }
    }
}

/// The result of one attempt before redaction.
struct Attempt {
    result: StepResult,
    exit_status: Option<i32>,
    outputs: BTreeMap<String, String>,
    output: String,
    /// A failure no further attempt can mend (the same bad input would be read again).
    lasting: bool,
}

impl Attempt {
    fn failed(error: String) -> Self {
        Self {
            result: StepResult::Failed { error },
            exit_status: None,
            outputs: BTreeMap::new(),
            output: String::new(),
            lasting: false,
        }
    }
}

/// Runs `step` (already rendered with run-time values) with its retries, reporting each attempt.
/// Stops retrying once `stopping` says the run is being stopped.
pub(crate) async fn run_step(
    env: &StepEnv<'_>,
    index: NodeIndex,
    step: &PlanStep,
    stopping: &tokio::sync::watch::Receiver<u32>,
    messages: &UnboundedSender<Message>,
) {
    let attempts = step.retries.attempts + 1;
    let mut backoff = step.retries.backoff.0;
    for attempt in 1..=attempts {
        // A closed channel means the dispatcher is gone; nothing is left to report to.
        let meter = Arc::new(TransferMeter::default());
        let _ = messages.send(Message::Started {
            index,
            attempt,
            meter: Arc::clone(&meter),
        });
        let started = Instant::now();
        let outcome = run_operation(env, step, &step.operation, &meter).await;
        let duration = started.elapsed();
        let succeeded = outcome.result == StepResult::Succeeded;
        let last = succeeded || outcome.lasting || attempt == attempts || *stopping.borrow() > 0;
        let _ = messages.send(Message::Finished {
            index,
            attempt,
            result: redact_result(env.redactor, outcome.result),
            duration,
            exit_status: outcome.exit_status,
            // Real values: later steps need them. The dispatcher masks what it journals.
            outputs: outcome.outputs,
            output_tail: tail(&env.redactor.redact(&outcome.output), OUTPUT_TAIL_BYTES),
            last,
        });
        if last {
            return;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(step.retries.max_backoff.0);
    }
}

/// Runs an undoing operation once, on the step's host.
pub(crate) async fn run_rollback(
    env: &StepEnv<'_>,
    step: &PlanStep,
    operation: &Operation,
) -> (StepResult, Duration, String) {
    let started = Instant::now();
    let outcome = run_operation(env, step, operation, &TransferMeter::default()).await;
    (
        redact_result(env.redactor, outcome.result),
        started.elapsed(),
        tail(&env.redactor.redact(&outcome.output), OUTPUT_TAIL_BYTES),
    )
}

fn redact_result(redactor: &Redactor, result: StepResult) -> StepResult {
    match result {
        StepResult::Failed { error } => StepResult::Failed {
            error: redactor.redact(&error).into_owned(),
        },
        other => other,
    }
}

async fn run_operation(
    env: &StepEnv<'_>,
    step: &PlanStep,
    operation: &Operation,
    meter: &TransferMeter,
) -> Attempt {
    let timeout = step.timeout.0;
    match operation {
        Operation::Script { script } => {
            let (transport, sudo) = match env.transport(&step.host) {
                Ok(found) => found,
                Err(error) => return Attempt::failed(error),
            };
            let request = CommandRequest {
                script,
                sudo,
                timeout,
                grace: KILL_GRACE,
            };
            match transport.run(&request, None).await {
                Err(err) => Attempt::failed(error_chain(&err)),
                Ok(output) => {
                    let combined = if output.stderr.is_empty() {
                        output.stdout.clone()
                    } else {
                        format!("{}{}", output.stdout, output.stderr)
                    };
                    let result = if output.timed_out {
                        StepResult::TimedOut
                    } else if output.exit_status == Some(0) {
                        StepResult::Succeeded
                    } else {
                        let last_line = output.stderr.lines().rev().find(|l| !l.trim().is_empty());
                        StepResult::Failed {
                            error: match (output.exit_status, last_line) {
                                (Some(code), Some(line)) => {
                                    format!("exit status {code}: {}", line.trim())
                                }
                                (Some(code), None) => format!("exit status {code}"),
                                (None, _) => "killed by a signal".into(),
                            },
                        }
                    };
                    let outputs = if result == StepResult::Succeeded {
                        capture_outputs(step, &output.stdout)
                    } else {
                        Ok(BTreeMap::new())
                    };
                    match outputs {
                        Ok(outputs) => Attempt {
                            result,
                            exit_status: output.exit_status,
                            outputs,
                            output: combined,
                            lasting: false,
                        },
                        Err(error) => Attempt {
                            output: combined,
                            ..Attempt::failed(error)
                        },
                    }
                }
            }
        }
        Operation::Etcd { endpoints, call } => called(
            etcd::execute(
                env.access,
                env.cluster,
                endpoints,
                call,
                timeout,
                Some(meter),
            )
            .await
            .map_err(|err| error_chain(&err)),
        ),
        Operation::Native { call } if crate::backup::step::is_backup(call) => called(
            crate::backup::step::run(call, timeout)
                .await
                .map_err(|err| error_chain(&err)),
        ),
        Operation::Native { call } => called(
            etcd::execute_native(call, timeout)
                .await
                .map_err(|err| error_chain(&err)),
        ),
        Operation::Copy {
            direction,
            from,
            to,
        } => {
            let (transport, sudo) = match env.transport(&step.host) {
                Ok(found) => found,
                Err(error) => return Attempt::failed(error),
            };
            let writer = env.writer(&step.host);
            let copied = match direction {
                CopyDirection::Push => {
                    transport
                        .push(Path::new(from), to, &writer, sudo, timeout, meter)
                        .await
                }
                CopyDirection::Pull => {
                    transport
                        .pull(from, Path::new(to), &writer, sudo, timeout, meter)
                        .await
                }
            };
            match copied {
                Ok(bytes) => Attempt {
                    result: StepResult::Succeeded,
                    exit_status: None,
                    outputs: BTreeMap::new(),
                    output: format!("copied {bytes} bytes from {from} to {to}"),
                    lasting: false,
                },
                Err(err) => Attempt::failed(error_chain(&err)),
            }
        }
        Operation::Distribute {
            from,
            to,
            save_from,
        } => {
            let (transport, sudo) = match env.transport(&step.host) {
                Ok(found) => found,
                Err(error) => return Attempt::failed(error),
            };
            let destination = crate::distribute::Destination {
                transport,
                node: &step.host.to_string(),
                to,
                writer: &env.writer(&step.host),
                sudo,
            };
            use crate::distribute::{Failure, Save, distribute};
            let save = Save {
                access: env.access,
                cluster: env.cluster,
                endpoints: save_from,
            };
            let save = Some(&save).filter(|_| !save_from.is_empty());
            match distribute(env.rounds, from, save, &destination, timeout, meter).await {
                Ok(outcome) => called(Ok(outcome)),
                Err(Failure::Node(error)) => Attempt::failed(error),
                Err(Failure::Source(error)) => Attempt {
                    lasting: true,
                    ..Attempt::failed(error)
                },
            }
        }
    }
}

/// The outputs of a succeeded script: `etcdrill-output` lines for typed actions, the declared
/// captures for `shell`.
fn capture_outputs(step: &PlanStep, stdout: &str) -> Result<BTreeMap<String, String>, String> {
    if step.action != ActionKind::Shell {
        return Ok(stdout
            .lines()
            .filter_map(|line| line.strip_prefix(OUTPUT_PREFIX))
            .filter_map(|pair| pair.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect());
    }
    step.captures
        .iter()
        .map(|(name, capture)| {
            let value = match capture {
                OutputCapture::Stdout => Some(stdout.trim().to_owned()),
                OutputCapture::LastLine => stdout
                    .lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .map(|l| l.trim().to_owned()),
                OutputCapture::Json(pointer) => serde_json::from_str::<serde_json::Value>(stdout)
                    .ok()
                    .and_then(|json| json.pointer(pointer).cloned())
                    .map(|v| match v {
                        serde_json::Value::String(s) => s,
                        other => other.to_string(),
                    }),
            };
            value.map(|v| (name.clone(), v)).ok_or_else(|| {
                format!("output `{name}` ({capture}) was not found in the step's output")
            })
        })
        .collect()
}

/// The attempt of a call that ran in etcdrill itself (etcd API, snapshot checks, backups).
fn called(result: Result<crate::etcd::CallOutcome, String>) -> Attempt {
    match result {
        Ok(outcome) => Attempt {
            result: StepResult::Succeeded,
            exit_status: None,
            outputs: outcome.outputs,
            output: outcome.summary,
            lasting: false,
        },
        Err(error) => Attempt::failed(error),
    }
}

pub(crate) use crate::humanize::error_chain;

#[cfg(test)]
mod tests {
    use super::*;

    fn shell_step(captures: &[(&str, &str)]) -> PlanStep {
        use crate::inventory::Cluster;
        use crate::source::SourceFile;
        let outputs: String = captures
            .iter()
            .map(|(k, v)| format!("{k}: '{v}', "))
            .collect();
        let runbook = crate::runbook::Runbook::load(SourceFile::new(
            "rb.yaml",
            format!("name: t\nsummary: s\nsteps:\n  - {{id: a, title: A, on: controller, action: shell, with: {{run: 'x'}}, outputs: {{{outputs}}}}}\n"),
        ))
        .unwrap();
        let cluster = Cluster::load(SourceFile::new("inv.yaml", "name: c\ndefaults: {etcd: {management: {static_pod: {}}}}\nnodes: [{name: n, address: 10.0.0.1}]\n")).unwrap();
        let plan = crate::plan::compile(&runbook, &cluster, &[]).unwrap();
        plan.graph[plan.find("a").unwrap()].clone()
    }

    #[test]
    fn shell_outputs_are_captured_as_declared() {
        let step = shell_step(&[
            ("all", "stdout"),
            ("last", "last_line"),
            ("rev", "json:/header/revision"),
        ]);
        let got = capture_outputs(&step, "{\"header\": {\"revision\": 42}}\n").unwrap();
        assert_eq!(got["all"], "{\"header\": {\"revision\": 42}}");
        assert_eq!(got["rev"], "42");
        let step = shell_step(&[("rev", "json:/missing")]);
        let err = capture_outputs(&step, "{}").unwrap_err();
        assert!(
            err.contains("output `rev` (json:/missing) was not found"),
            "{err}"
        );
    }

    #[test]
    fn error_chains_read_on_one_line() {
        let io = std::io::Error::other("disk full");
        let outer = crate::journal::JournalError::Write {
            path: "/r/journal.jsonl".into(),
            source: io,
        };
        assert_eq!(
            error_chain(&outer),
            "failed to write journal /r/journal.jsonl: disk full"
        );
    }
}
