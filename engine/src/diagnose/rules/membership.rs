//! Findings about membership: no endpoint at all, no member answering, quorum lost, members
//! down, endpoints that belong to no member, even member counts and single-member production
//! clusters.

use super::backups::newest_good_backup;
use super::{
    MemberView, RUNBOOK_QUORUM_RECOVERY, RUNBOOK_REPLACE_MEMBER, RUNBOOK_RESTORE, View, member_urls,
};
use crate::diagnose::facts::{EndpointFacts, Facts};
use crate::diagnose::findings::{Finding, RunbookSuggestion, Severity};
use crate::inventory::same_url;

/// Members down, quorum, even counts and single members.
pub(super) fn membership(facts: &Facts, view: &View<'_>, findings: &mut Vec<Finding>) {
    if view.members.is_empty() {
        findings.push(no_endpoints());
        return;
    }
    let quorum = Quorum::of(view);
    if quorum.up_voting.is_empty() && view.up().next().is_none() {
        findings.push(no_member_answers(facts, view));
        return;
    }
    if quorum.is_lost() {
        findings.push(quorum_lost(view, &quorum));
    } else {
        members_down(view, &quorum, findings);
    }
    // Endpoints that answered for no member of the list: a wrong URL, or a foreign cluster.
    for endpoint in endpoints_of_no_member(facts, view) {
        findings.push(endpoint_unreachable(endpoint));
    }
    if view.known && quorum.voting.len() >= 2 && quorum.voting.len() % 2 == 0 {
        findings.push(even_member_count(&quorum));
    }
    if view.known && quorum.voting.len() == 1 && facts.production {
        findings.push(single_member_production());
    }
}

/// The voting members, which of them answer, which members are down, and the majority needed.
struct Quorum<'v, 'f> {
    voting: Vec<&'v MemberView<'f>>,
    up_voting: Vec<&'v MemberView<'f>>,
    down: Vec<&'v MemberView<'f>>,
    leader_known: bool,
    majority: usize,
}

impl<'v, 'f> Quorum<'v, 'f> {
    fn of(view: &'v View<'f>) -> Self {
        let voting: Vec<&MemberView> = view.members.iter().filter(|m| !m.is_learner).collect();
        let up_voting: Vec<&MemberView> = voting
            .iter()
            .copied()
            .filter(|m| m.status.is_some())
            .collect();
        let down: Vec<&MemberView> = view.members.iter().filter(|m| m.status.is_none()).collect();
        let leader_known = view.up().any(|(m, s)| !m.is_learner && s.leader.is_some());
        let majority = voting.len() / 2 + 1;
        Quorum {
            voting,
            up_voting,
            down,
            leader_known,
            majority,
        }
    }

    /// Too few voting members answer, or none of them knows a leader.
    fn is_lost(&self) -> bool {
        !self.voting.is_empty() && (self.up_voting.len() < self.majority || !self.leader_known)
    }
}

/// Why a member does not answer, from its endpoints.
fn why(m: &MemberView) -> String {
    if m.errors.is_empty() {
        "no endpoint of it was given or advertised".to_string()
    } else {
        m.errors.join("; ")
    }
}

/// Nothing named an endpoint.
fn no_endpoints() -> Finding {
    Finding::new(
        Severity::Critical,
        "no-endpoints",
        "no etcd endpoint to ask",
        "neither flags, an inventory nor ETCDCTL_ENDPOINTS named an endpoint",
        "give --endpoints or -i INVENTORY",
    )
}

/// No member answers: the restore from the newest good backup is the last resort.
fn no_member_answers(facts: &Facts, view: &View<'_>) -> Finding {
    let newest = newest_good_backup(facts);
    let mut action = "check the endpoints, the CA and client certificate (a TLS error above \
                      says which), and whether etcd runs on the nodes; if every member's data \
                      is lost for good, restore the cluster from the newest good snapshot"
        .to_string();
    if let Some(copy) = newest.filter(|b| b.off_host) {
        action.push_str(&format!(
            " (the newest is {}: copy it to this machine first and give its path)",
            copy.location
        ));
    }
    let mut finding = Finding::new(
        Severity::Critical,
        "no-member-answers",
        format!("no member answers ({} tried)", view.members.len()),
        view.members
            .iter()
            .map(|m| format!("{}: {}", m.label, why(m)))
            .collect::<Vec<_>>()
            .join("\n"),
        action,
    );
    if let Some(copy) = newest {
        // The runbook takes a file on this machine.
        let path = if copy.off_host {
            "PATH"
        } else {
            copy.location.as_str()
        };
        finding = finding.with_runbook(RunbookSuggestion::new(
            RUNBOOK_RESTORE,
            &[("snapshot", path)],
        ));
    }
    finding
}

/// Quorum lost: bring members back, or recover from the best survivor.
fn quorum_lost(view: &View<'_>, quorum: &Quorum<'_, '_>) -> Finding {
    let (voting, up_voting, majority) = (&quorum.voting, &quorum.up_voting, quorum.majority);
    let down = &quorum.down;
    // The survivor with the most of the log: highest raft index, then applied index, then term.
    let best = view
        .up()
        .filter(|(m, _)| !m.is_learner)
        .max_by_key(|(_, s)| (s.raft_index, s.raft_applied_index, s.raft_term));
    let down_list = down
        .iter()
        .map(|m| format!("{}: {}", m.label, why(m)))
        .collect::<Vec<_>>()
        .join("\n");
    let mut finding = Finding::new(
        Severity::Critical,
        "quorum-lost",
        format!(
            "quorum lost: {} of {} voting members answer, {} needed{}",
            up_voting.len(),
            voting.len(),
            majority,
            if up_voting.len() >= majority {
                " (yet none knows a leader)"
            } else {
                ""
            }
        ),
        format!(
            "the cluster takes no writes and no linearizable reads (the Kubernetes API is down).\n{}{}",
            down_list,
            best.map(|(m, s)| format!(
                "\nbest survivor: {} at raft index {} (term {})",
                m.label, s.raft_index, s.raft_term
            ))
            .unwrap_or_default()
        ),
        "first try to bring the missing members back (start etcd on their nodes): that loses \
         nothing. Only if a majority is lost for good, recover from the best survivor, which \
         drops every entry it had not seen committed",
    );
    if let Some((m, _)) = best {
        finding = finding.with_runbook(RunbookSuggestion::new(
            RUNBOOK_QUORUM_RECOVERY,
            &[("survivor", &m.label)],
        ));
    }
    finding
}

/// One finding per member down while quorum holds.
fn members_down(view: &View<'_>, quorum: &Quorum<'_, '_>, findings: &mut Vec<Finding>) {
    let (voting, up_voting, majority) = (&quorum.voting, &quorum.up_voting, quorum.majority);
    let down = &quorum.down;
    for member in down {
        let (severity, consequence) = if member.is_learner {
            (
                Severity::Warning,
                "it is a learner, so quorum does not depend on it".to_string(),
            )
        } else {
            (
                Severity::Urgent,
                format!(
                    "quorum holds with {} of {} voting members; {} more failure(s) stop the cluster",
                    up_voting.len(),
                    voting.len(),
                    up_voting.len() + 1 - majority
                ),
            )
        };
        let mut finding = Finding::new(
            severity,
            "member-down",
            format!("member {} does not answer", member.label),
            format!("{}\n{consequence}", why(member)),
            format!(
                "if {} only stopped (reboot, kubelet, a moved manifest), start etcd on it again and \
                 check with `etcdrill health`; if its data or disk is lost for good, replace the \
                 member",
                member.label
            ),
        );
        if view.known && !member.is_learner {
            finding = finding.with_runbook(RunbookSuggestion::new(
                RUNBOOK_REPLACE_MEMBER,
                &[("node", &member.label)],
            ));
        }
        findings.push(finding);
    }
}

/// An endpoint that does not answer and belongs to no member.
fn endpoint_unreachable(endpoint: &EndpointFacts) -> Finding {
    Finding::new(
        Severity::Warning,
        "endpoint-unreachable",
        format!("endpoint {} does not answer", endpoint.endpoint),
        endpoint.status_error.clone().unwrap_or_default(),
        "check the endpoint list: no member of the cluster advertises this URL",
    )
}

/// An even number of voting members tolerates no more failures than one fewer.
fn even_member_count(quorum: &Quorum<'_, '_>) -> Finding {
    let (voting, majority) = (&quorum.voting, quorum.majority);
    Finding::new(
        Severity::Warning,
        "even-member-count",
        format!("{} voting members: an even count", voting.len()),
        format!(
            "{n} members need {q} for quorum and so tolerate {t} failure(s), no more than {m} \
             members would, while one more member can fail",
            n = voting.len(),
            q = majority,
            t = voting.len() - majority,
            m = voting.len() - 1
        ),
        format!(
            "run {} or {} voting members: add a member, or remove one",
            voting.len() + 1,
            voting.len() - 1
        ),
    )
}

/// A production cluster of one member.
fn single_member_production() -> Finding {
    Finding::new(
        Severity::Warning,
        "single-member-production",
        "a single-member cluster marked production",
        "one member tolerates no failure: losing its disk loses the cluster, and every \
         restart is an outage",
        "grow the cluster to 3 members (member add as learner, promote), and keep off-host \
         backups until then",
    )
}

/// Endpoints that did not answer and that no member of the list advertises.
fn endpoints_of_no_member<'f>(facts: &'f Facts, view: &View<'_>) -> Vec<&'f EndpointFacts> {
    if !view.known {
        return Vec::new();
    }
    let members = facts.members.as_deref().unwrap_or_default();
    facts
        .endpoints
        .iter()
        .filter(|e| e.status.is_none() && !e.discovered)
        .filter(|e| {
            !members.iter().any(|m| {
                member_urls(facts, m)
                    .iter()
                    .any(|u| same_url(u, &e.endpoint))
                    || (e.node.is_some() && e.node == m.node)
            })
        })
        // Loopback endpoints (kubeadm's default) stand for the local member.
        .filter(|e| !e.endpoint.contains("127.0.0.1") && !e.endpoint.contains("localhost"))
        .collect()
}
