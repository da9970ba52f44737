//! Stage 3: each steady-state probe and step becomes one plan step per place it runs on, in
//! runbook order (probes before, steps, probes after), with its condition, action, operation,
//! rollback and defaults (timeout, idempotence) decided.

use std::rc::Rc;

use indexmap::IndexMap;

use super::{Compiler, Entry, Origin, SharedContext};
use crate::human_duration::HumanDuration;
use crate::inventory::Node;
use crate::plan::context;
use crate::plan::node_script;
use crate::plan::{Condition, Host, Operation, Phase, PlanStep, RoleGuard, Rollback, StepTemplate};
use crate::render::{TemplateContext, refers_to_run_time};
use crate::runbook::action::{Action, ActionKind, Nature};
use crate::runbook::step::{CheckPhase, Retries, RollbackSpec};
use crate::source::YamlPath;

impl<'a> Compiler<'a> {
    pub(super) fn expand_all(&mut self) {
        let runbook = &self.runbook.value;
        let before: Vec<usize> = (0..runbook.steady_state.len())
            .filter(|&i| runbook.steady_state[i].check != CheckPhase::After)
            .collect();
        let after: Vec<usize> = (0..runbook.steady_state.len())
            .filter(|&i| runbook.steady_state[i].check != CheckPhase::Before)
            .collect();
        for &i in &before {
            self.expand(Origin::Probe(i, Phase::SteadyBefore));
        }
        for i in 0..runbook.steps.len() {
            self.expand(Origin::Step(i));
        }
        for &i in &after {
            self.expand(Origin::Probe(i, Phase::SteadyAfter));
        }
    }

    fn entry(&self, origin: Origin) -> Entry<'a> {
        let runbook = &self.runbook.value;
        match origin {
            Origin::Probe(i, _) => {
                let probe = &runbook.steady_state[i];
                Entry {
                    id: &probe.id,
                    title: &probe.title,
                    path: YamlPath::root().key("steady_state").index(i),
                    target: &probe.on,
                    action: probe.action,
                    with: &probe.with,
                    when: None,
                    timeout: probe.timeout,
                    retries: probe.retries.as_ref(),
                    rollback: &RollbackSpec::Natural,
                    confirm: None,
                    destructive: None,
                    idempotent: None,
                    probe: None,
                    captures: IndexMap::new(),
                }
            }
            Origin::Step(i) => {
                let step = &runbook.steps[i];
                Entry {
                    id: &step.id,
                    title: &step.title,
                    path: YamlPath::root().key("steps").index(i),
                    target: &step.on,
                    action: step.action,
                    with: &step.with,
                    when: step.when.as_deref(),
                    timeout: step.timeout,
                    retries: step.retries.as_ref(),
                    rollback: &step.rollback,
                    confirm: step.confirm.as_deref(),
                    destructive: step.destructive,
                    idempotent: step.idempotent,
                    probe: step.probe,
                    captures: step.outputs.clone(),
                }
            }
        }
    }

    fn expand(&mut self, origin: Origin) {
        let entry = self.entry(origin);
        let phase = match origin {
            Origin::Probe(_, phase) => phase,
            Origin::Step(_) => Phase::Main,
        };
        let outputs = self.referenced_outputs(origin, &entry);
        let placements = self.placements(&entry);
        let per_node = entry.target.is_per_node();
        let mut made = Vec::new();
        for (host, node, role) in placements {
            let key_base = match phase {
                Phase::Main => entry.id.to_string(),
                Phase::SteadyBefore => format!("steady-before.{}", entry.id),
                Phase::SteadyAfter => format!("steady-after.{}", entry.id),
            };
            let key = match (&host, per_node) {
                (Host::Node(name), true) => format!("{key_base}@{name}"),
                _ => key_base,
            };
            let context = self.context(node, &outputs);
            if let Some(step) = self.instance(&entry, phase, key, host, node, role, context) {
                let index = self.graph.add_node(step);
                made.push((node.map(|n| n.name.clone()), index));
            }
        }
        self.instances.insert(origin, made);
    }

    /// The template context of an instance at `node` that uses `outputs`, shared with every
    /// instance that sees the same values.
    fn context(
        &mut self,
        node: Option<&'a Node>,
        outputs: &[(&'a str, Vec<String>)],
    ) -> Rc<SharedContext> {
        let key = (node.map(|n| n.name.as_str()), outputs.to_vec());
        if let Some(shared) = self.contexts.get(&key) {
            return Rc::clone(shared);
        }
        let place = &self.places[&key.0];
        let value = if outputs.is_empty() {
            place.clone()
        } else {
            context::with_outputs(place, node, outputs, self.values)
        };
        let shared = Rc::new(SharedContext {
            template: TemplateContext::new(value),
            value: std::cell::OnceCell::new(),
        });
        self.contexts.insert(key, Rc::clone(&shared));
        shared
    }

    #[allow(clippy::too_many_arguments)]
    fn instance(
        &mut self,
        entry: &Entry<'_>,
        phase: Phase,
        key: String,
        host: Host,
        node: Option<&Node>,
        role: Option<RoleGuard>,
        shared: Rc<SharedContext>,
    ) -> Option<PlanStep> {
        let context = &shared.template;
        let when = match entry.when {
            None => Condition::Always,
            // Once run values are known (a run-time compile), such conditions are evaluated.
            Some(expression) if refers_to_run_time(expression) && self.values.is_none() => {
                // Evaluate once with placeholders so unknown variables are caught now.
                self.template(&entry.path.key("when"), |r| {
                    r.condition(expression, context)
                })?;
                Condition::AtRunTime(expression.to_string())
            }
            Some(expression) => {
                if self.template(&entry.path.key("when"), |r| {
                    r.condition(expression, context)
                })? {
                    Condition::Always
                } else {
                    Condition::SkippedAtCompile(expression.to_string())
                }
            }
        };
        let action = self.action(entry.action, entry.with, &entry.path, context)?;
        let operation = self.operation(&action, &host, node, &entry.path)?;
        let rollback = self.rollback(entry, &action, &host, node, context)?;
        let preflight = node
            .filter(|_| matches!(operation, Operation::Script { .. }))
            .and_then(|node| node_script::preflight(&action, node))
            .map(|script| Operation::Script { script });
        let info = entry.action.info();
        let nature = match (entry.action, entry.probe) {
            (ActionKind::Shell, Some(true)) => Nature::Probe,
            _ => info.nature,
        };
        let force = matches!(&action, Action::EtcdStartMember(args) if args.force_new_cluster);
        let destructive = info.destructive || force || entry.destructive == Some(true);
        let outputs = if entry.action == ActionKind::Shell {
            entry.captures.keys().cloned().collect()
        } else {
            info.outputs.iter().map(|s| s.to_string()).collect()
        };
        let deferred = operation.is_deferred()
            || matches!(&rollback, Rollback::Run { operation } if operation.is_deferred())
            || preflight.as_ref().is_some_and(Operation::is_deferred);
        let template = deferred.then(|| StepTemplate {
            with: serde_json::to_value(entry.with).unwrap_or(serde_json::Value::Null),
            context: shared.value(),
        });
        Some(PlanStep {
            key,
            step: entry.id.to_string(),
            title: entry.title.to_string(),
            phase,
            host,
            role,
            action: entry.action,
            nature,
            destructive,
            idempotent: entry
                .idempotent
                .unwrap_or_else(|| default_idempotent(entry.action, nature)),
            operation,
            rollback,
            preflight,
            when,
            confirm: entry.confirm.map(str::to_string),
            timeout: entry
                .timeout
                .unwrap_or_else(|| default_timeout(entry.action)),
            retries: entry.retries.cloned().unwrap_or_else(Retries::none),
            outputs,
            captures: entry.captures.clone(),
            template,
        })
    }
}

fn default_timeout(kind: ActionKind) -> HumanDuration {
    use ActionKind as K;
    HumanDuration::from_secs(match kind {
        K::BackupShip => 3600,
        K::EtcdSnapshotSave
        | K::EtcdSnapshotRestore
        | K::FileCopy
        | K::EtcdSnapshotDistribute
        | K::EtcdDefrag
        | K::BackupPrune => 600,
        K::WaitHealthy
        | K::EtcdStopMember
        | K::EtcdStartMember
        | K::EtcdConfigureMember
        | K::Shell => 120,
        K::EtcdSnapshotVerify => 300,
        _ => 30,
    })
}

fn default_idempotent(kind: ActionKind, nature: Nature) -> bool {
    use ActionKind as K;
    nature == Nature::Probe
        || matches!(
            kind,
            K::EtcdStopMember
                | K::EtcdStartMember
                | K::EtcdConfigureMember
                | K::EtcdSnapshotSave
                | K::EtcdSnapshotRestore
                | K::EtcdDefrag
                | K::EtcdAlarmDisarm
                | K::EtcdKvPut
                | K::FileCopy
                | K::EtcdSnapshotDistribute
                | K::BackupShip
                | K::BackupPrune
        )
}
