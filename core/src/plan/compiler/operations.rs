//! What a typed action becomes where it runs: an etcd API call (and its endpoints), a node script,
//! a controller script or a native call.

use super::Compiler;
use crate::inventory::Node;
use crate::plan::node_script::{self, ScriptError};
use crate::plan::{Host, Operation};
use crate::runbook::action::{Action, ActionKind, Placement};
use crate::source::YamlPath;

impl<'a> Compiler<'a> {
    pub(super) fn operation(
        &mut self,
        action: &Action,
        host: &Host,
        node: Option<&Node>,
        path: &YamlPath,
    ) -> Option<Operation> {
        let kind = action.kind();
        match (kind.info().placement, node) {
            (Placement::EtcdApi, _) => Some(Operation::Etcd {
                endpoints: self.endpoints(kind, node),
                call: action.clone(),
            }),
            (Placement::ControllerOrNode, None) if kind == ActionKind::Shell => {
                let Action::Shell(args) = action else {
                    unreachable!()
                };
                Some(Operation::Script {
                    script: args.run.clone(),
                })
            }
            (Placement::ControllerOrNode | Placement::Controller, None) => {
                Some(Operation::Native {
                    call: action.clone(),
                })
            }
            (_, Some(node)) => match node_script::operation(action, node, self.cluster) {
                Ok(operation) => Some(operation),
                Err(err) => {
                    self.script_error(err, node, path);
                    None
                }
            },
            (Placement::Node, None) => {
                unreachable!("placement is checked when the runbook loads: {host}")
            }
        }
    }

    fn script_error(&mut self, err: ScriptError, node: &Node, path: &YamlPath) {
        let diagnostic = if err.inventory {
            self.cluster.document.error_at(&node.path, err.message)
        } else {
            self.error(&path.key("with").key(err.field), err.message)
        };
        self.sink.push(diagnostic.hint(err.hint));
    }

    /// The endpoints an etcd API call goes to.
    pub(super) fn endpoints(&self, kind: ActionKind, node: Option<&Node>) -> Vec<String> {
        let all = || self.cluster.nodes.iter();
        let subject_is_target = matches!(
            kind,
            ActionKind::EtcdHealth
                | ActionKind::EtcdStatus
                | ActionKind::EtcdHashKv
                | ActionKind::EtcdDefrag
                | ActionKind::EtcdSnapshotSave
                | ActionKind::WaitHealthy
                | ActionKind::VerifyHealthy
                | ActionKind::VerifyHashKv
                | ActionKind::VerifyNoAlarms
                | ActionKind::EtcdAlarmList
        );
        match node {
            Some(node) if subject_is_target => vec![node.etcd.client_url.clone()],
            // Membership changes go to the rest of the cluster, not to the member they concern.
            Some(node)
                if matches!(
                    kind,
                    ActionKind::EtcdMemberAdd
                        | ActionKind::EtcdMemberRemove
                        | ActionKind::EtcdMemberPromote
                ) =>
            {
                all()
                    .filter(|n| n.name != node.name)
                    .map(|n| n.etcd.client_url.clone())
                    .collect()
            }
            _ => self.cluster.client_urls(),
        }
    }
}
