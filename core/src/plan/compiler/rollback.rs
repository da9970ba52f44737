//! How a plan step is undone: declined, irreversible, not needed, a custom rollback step, or the
//! action's natural undo.

use super::{Compiler, Entry};
use crate::inventory::Node;
use crate::plan::node_script;
use crate::plan::{Host, Operation, Rollback};
use crate::render::TemplateContext;
use crate::runbook::action::{Action, ActionKind, Nature, Placement};
use crate::runbook::step::RollbackSpec;

impl<'a> Compiler<'a> {
    pub(super) fn rollback(
        &mut self,
        entry: &Entry<'_>,
        action: &Action,
        host: &Host,
        node: Option<&Node>,
        context: &TemplateContext,
    ) -> Option<Rollback> {
        let info = entry.action.info();
        match entry.rollback {
            RollbackSpec::None => Some(Rollback::Declined),
            RollbackSpec::Irreversible => Some(Rollback::Irreversible),
            RollbackSpec::Custom(step) => {
                let path = entry.path.key("rollback");
                if step.action.info().placement == Placement::Node && node.is_none() {
                    self.sink.push(
                        self.error(
                            &path.key("action"),
                            format!(
                                "`{}` runs on nodes, but this step runs on `{host}`",
                                step.action
                            ),
                        )
                        .hint("a rollback runs where its step runs"),
                    );
                    return None;
                }
                let undo = self.action(step.action, &step.with, &path, context)?;
                let operation = self.operation(&undo, host, node, &path)?;
                Some(Rollback::Run { operation })
            }
            RollbackSpec::Natural if info.nature == Nature::Probe || entry.probe == Some(true) => {
                Some(Rollback::NotNeeded)
            }
            RollbackSpec::Natural => Some(match (info.placement, node) {
                (Placement::Node | Placement::ControllerOrNode, Some(node)) => {
                    node_script::natural_rollback(action, node)
                }
                (Placement::ControllerOrNode, None) => Rollback::Declined,
                // Copies are harmless to keep; deleted copies cannot come back.
                (Placement::Controller, _) => match action {
                    Action::BackupPrune(_) => Rollback::Irreversible,
                    _ => Rollback::NotNeeded,
                },
                (Placement::EtcdApi, _) => match action {
                    Action::EtcdMemberAdd(args) => Rollback::Run {
                        operation: Operation::Etcd {
                            endpoints: self.endpoints(ActionKind::EtcdMemberRemove, node),
                            call: Action::EtcdMemberRemove(
                                crate::runbook::action::MemberNameArgs {
                                    name: args.name.clone(),
                                },
                            ),
                        },
                    },
                    Action::EtcdMemberPromote(_)
                    | Action::EtcdMemberRemove(_)
                    | Action::EtcdCompact(_) => Rollback::Irreversible,
                    _ => Rollback::NotNeeded,
                },
                (Placement::Node, None) => {
                    unreachable!("placement is checked when the runbook loads")
                }
            }),
        }
    }
}
