//! Where an entry runs: the controller, the cluster, or the nodes its target names (every node,
//! leader, followers, a named node, a group), with a located error for a name the inventory lacks.

use std::collections::BTreeSet;

use super::{Compiler, Entry};
use crate::diagnostic::one_of;
use crate::inventory::Node;
use crate::plan::{Host, RoleGuard};
use crate::runbook::step::Target;

impl<'a> Compiler<'a> {
    /// The nodes (or none, for controller and cluster steps) an entry runs on.
    pub(super) fn placements(
        &mut self,
        entry: &Entry<'_>,
    ) -> Vec<(Host, Option<&'a Node>, Option<RoleGuard>)> {
        let cluster = self.cluster;
        let all = || cluster.nodes.iter();
        let on = entry.path.key("on");
        match entry.target {
            Target::Controller => vec![(Host::Controller, None, None)],
            Target::Cluster => vec![(Host::Cluster, None, None)],
            Target::Each => all()
                .map(|n| (Host::Node(n.name.clone()), Some(n), None))
                .collect(),
            Target::Leader | Target::Followers => {
                let role = if *entry.target == Target::Leader {
                    RoleGuard::Leader
                } else {
                    RoleGuard::Follower
                };
                all()
                    .map(|n| (Host::Node(n.name.clone()), Some(n), Some(role)))
                    .collect()
            }
            Target::Node(name) => match cluster.node(name) {
                Some(n) => vec![(Host::Node(n.name.clone()), Some(n), None)],
                None => {
                    let names = all().map(|n| n.name.as_str());
                    let diagnostic = self
                        .error(
                            &on,
                            format!(
                                "no node `{name}` in inventory `{}`",
                                cluster.inventory().name
                            ),
                        )
                        .expected(one_of(names.clone()))
                        .suggest(name, names);
                    self.sink.push(diagnostic);
                    vec![]
                }
            },
            Target::Group(group) => {
                let members: Vec<_> = all()
                    .filter(|n| n.groups.iter().any(|g| g == group))
                    .map(|n| (Host::Node(n.name.clone()), Some(n), None))
                    .collect();
                if members.is_empty() {
                    let groups: BTreeSet<&str> = all()
                        .flat_map(|n| n.groups.iter().map(String::as_str))
                        .collect();
                    let diagnostic = self
                        .error(
                            &on,
                            format!(
                                "no node of inventory `{}` is in group `{group}`",
                                cluster.inventory().name
                            ),
                        )
                        .expected(if groups.is_empty() {
                            "a group listed under a node's `groups` (this inventory has none)"
                                .to_string()
                        } else {
                            one_of(&groups)
                        })
                        .suggest(group, groups.iter().copied());
                    self.sink.push(diagnostic);
                }
                members
            }
        }
    }
}
