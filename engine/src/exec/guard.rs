//! The checks a run passes before its first side effect: consent for destructive steps and
//! confirmation gates, protection of production inventories, and connections to every node with
//! strict host key checking.

use std::collections::HashMap;

use futures_util::StreamExt;
use futures_util::future::LocalBoxFuture;
use futures_util::stream::FuturesUnordered;

use tokio::sync::watch;

pub use super::terminal::Answer;
use super::terminal::Terminal;
use super::{ExecError, RunOptions};
use crate::inventory::Cluster;
use crate::plan::{Condition, Host, Operation, Plan, PlanStep, Rollback};
use crate::runbook::action::Nature;
use crate::transport::Transport;

/// Asks a person yes-or-no questions.
pub trait Prompter {
    /// Whether a person is there to answer.
    fn interactive(&self) -> bool;
    /// Asks; only an explicit yes is [`Answer::Yes`].
    fn confirm<'a>(&'a mut self, question: &'a str) -> LocalBoxFuture<'a, Answer>;
}

/// Asks on the terminal: the question on standard error, the answer from standard input. A
/// signal while it waits (Ctrl-C, SIGTERM) is [`Answer::Interrupted`]: the run stops, and the
/// question is asked again on resume.
pub struct TerminalPrompter {
    terminal: Terminal,
    stop: watch::Receiver<u32>,
}

impl TerminalPrompter {
    /// Asks through `terminal`, giving up when `stop` counts a signal.
    pub fn new(terminal: Terminal, stop: watch::Receiver<u32>) -> Self {
        Self { terminal, stop }
    }
}

impl Prompter for TerminalPrompter {
    fn interactive(&self) -> bool {
        self.terminal.interactive()
    }

    fn confirm<'a>(&'a mut self, question: &'a str) -> LocalBoxFuture<'a, Answer> {
        Box::pin(async move {
            if self.interactive() {
                self.terminal.ask(question, &mut self.stop).await
            } else {
                Answer::EndOfInput
            }
        })
    }
}

/// Nobody to ask: every question is answered no.
#[derive(Debug, Default)]
pub struct NoPrompter;

impl Prompter for NoPrompter {
    fn interactive(&self) -> bool {
        false
    }

    fn confirm<'a>(&'a mut self, _question: &'a str) -> LocalBoxFuture<'a, Answer> {
        Box::pin(std::future::ready(Answer::No))
    }
}

/// Steps that will destroy something if the run reaches them.
fn destructive_steps(plan: &Plan) -> Vec<&PlanStep> {
    plan.graph
        .node_weights()
        .filter(|s| {
            s.destructive
                && s.nature == Nature::Action
                && !matches!(s.when, Condition::SkippedAtCompile(_))
        })
        .collect()
}

fn listing(steps: &[&PlanStep]) -> String {
    steps
        .iter()
        .map(|s| format!("  - {} on {}: {} ({})", s.key, s.host, s.title, s.action))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Checks consent for destructive steps and gates before anything runs.
pub(crate) async fn consent(
    plan: &Plan,
    cluster: &Cluster,
    options: &RunOptions,
    prompter: &mut dyn Prompter,
) -> Result<(), ExecError> {
    if options.check {
        // Check mode runs probes only: nothing is changed, so nothing needs consent.
        return Ok(());
    }
    let destructive = destructive_steps(plan);
    let gates = plan
        .graph
        .node_weights()
        .filter(|s| s.confirm.is_some())
        .count();
    let inventory = cluster.inventory();
    if !destructive.is_empty() && inventory.production && !options.allow_production {
        return Err(ExecError::Refused(format!(
            "inventory `{}` is marked production and this plan has {} destructive step(s):\n{}\npass --allow-production (with --yes, or at a terminal) if that is really meant",
            inventory.name,
            destructive.len(),
            listing(&destructive)
        )));
    }
    if (destructive.is_empty() && gates == 0) || options.yes {
        return Ok(());
    }
    if !prompter.interactive() {
        return Err(ExecError::Refused(format!(
            "this plan has {} destructive step(s) and {gates} confirmation gate(s), and there is no terminal to ask:\n{}\nreview it with `etcdrill plan`, then pass --yes to run it without questions",
            destructive.len(),
            listing(&destructive)
        )));
    }
    let question = format!(
        "Runbook `{}` on inventory `{}` will DESTROY, if it gets that far:\n{}\nRun it? (each confirmation gate is asked again when reached)",
        plan.header.runbook,
        inventory.name,
        if destructive.is_empty() {
            "  (nothing: but it has confirmation gates)".to_string()
        } else {
            listing(&destructive)
        }
    );
    match prompter.confirm(&question).await {
        Answer::Yes => Ok(()),
        Answer::No => Err(ExecError::Refused("declined at the terminal".into())),
        Answer::EndOfInput => Err(ExecError::Refused(
            "declined at the terminal (end of input)".into(),
        )),
        Answer::Interrupted => Err(ExecError::Refused(
            "interrupted at the terminal before anything ran".into(),
        )),
    }
}

/// The question shown at a step's confirmation gate.
pub(crate) fn describe_gate(step: &PlanStep, question: &str) -> String {
    let marker = if step.destructive {
        " [DESTRUCTIVE]"
    } else {
        ""
    };
    format!(
        "{} on {}{marker}: {}\n{question}",
        step.key, step.host, step.title
    )
}

/// Connects to every node the plan runs commands on, in parallel, before anything runs. An unknown
/// or changed host key or an unreachable node stops the run here.
pub(crate) async fn connect(
    plan: &Plan,
    cluster: &Cluster,
) -> Result<HashMap<String, Transport>, ExecError> {
    let uses_node = |step: &PlanStep| {
        let runs_there = |op: &Operation| {
            matches!(
                op,
                Operation::Script { .. } | Operation::Copy { .. } | Operation::Distribute { .. }
            )
        };
        runs_there(&step.operation)
            || matches!(&step.rollback, Rollback::Run { operation } if runs_there(operation))
    };
    let mut names: Vec<&str> = plan
        .graph
        .node_weights()
        .filter(|s| uses_node(s))
        .filter_map(|s| match &s.host {
            Host::Node(name) => Some(name.as_str()),
            _ => None,
        })
        .collect();
    names.sort_unstable();
    names.dedup();
    let mut pending: FuturesUnordered<_> = names
        .into_iter()
        .filter_map(|name| cluster.node(name))
        .map(|node| async move { (node.name.clone(), Transport::connect(node).await) })
        .collect();
    let mut transports = HashMap::new();
    let mut failures = Vec::new();
    while let Some((name, connected)) = pending.next().await {
        match connected {
            Ok(transport) => {
                transports.insert(name, transport);
            }
            Err(err) => failures.push(format!(
                "  - {name}: {}",
                super::step_run::error_chain(&err)
            )),
        }
    }
    if failures.is_empty() {
        return Ok(transports);
    }
    for (_, transport) in transports {
        // Best effort: the run is refused either way.
        let _ = transport.close().await;
    }
    failures.sort();
    Err(ExecError::Unreachable {
        count: failures.len(),
        details: failures.join("\n"),
    })
}
