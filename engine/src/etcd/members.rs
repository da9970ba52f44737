//! Membership: listing, adding, promoting and removing members, and matching members to inventory
//! nodes (by member name, else by peer URL).

use etcd_client::{Client, Member, MemberAddOptions};

use futures_util::future::join_all;

use super::CallOutcome;
use super::context::{Ctx, call_error};
use super::error::EtcdError;
use crate::inventory::{Cluster, Node};
use crate::runbook::action::{MemberAddArgs, MemberNameArgs, VerifyMemberCountArgs};

pub(crate) use crate::inventory::same_url;

/// The inventory node a member runs on: the node whose member name is the member's name, else the
/// node whose peer URL the member advertises.
pub(crate) fn node_of_member<'c>(cluster: &'c Cluster, member: &Member) -> Option<&'c Node> {
    if !member.name().is_empty()
        && let Some(node) = cluster
            .nodes
            .iter()
            .find(|n| n.etcd.member == member.name())
    {
        return Some(node);
    }
    cluster.nodes.iter().find(|n| {
        member
            .peer_urls()
            .iter()
            .any(|url| same_url(url, &n.etcd.peer_url))
    })
}

/// The member that runs on `node`: by member name, else by peer URL.
pub(crate) fn member_of_node<'m>(members: &'m [Member], node: &Node) -> Option<&'m Member> {
    members
        .iter()
        .find(|m| m.name() == node.etcd.member)
        .or_else(|| {
            members.iter().find(|m| {
                m.peer_urls()
                    .iter()
                    .any(|url| same_url(url, &node.etcd.peer_url))
            })
        })
}

/// The member called `name`; an unstarted member has no name yet, so an inventory node with that
/// member (or node) name is matched by its peer URL.
pub(crate) fn find_member<'m>(
    members: &'m [Member],
    cluster: &Cluster,
    name: &str,
) -> Option<&'m Member> {
    if let Some(member) = members.iter().find(|m| m.name() == name) {
        return Some(member);
    }
    let node = cluster
        .nodes
        .iter()
        .find(|n| n.etcd.member == name)
        .or_else(|| cluster.node(name))?;
    members.iter().find(|m| {
        m.name().is_empty()
            && m.peer_urls()
                .iter()
                .any(|url| same_url(url, &node.etcd.peer_url))
    })
}

/// How a member is shown: its node's name, else its member name, else `unstarted <id>`.
pub(crate) fn member_label(cluster: &Cluster, member: &Member) -> String {
    match node_of_member(cluster, member) {
        Some(node) => node.name.clone(),
        None if !member.name().is_empty() => member.name().to_string(),
        None => format!("unstarted {:x}", member.id()),
    }
}

/// The label of the member with this id, or the id in hex when it is not a member.
pub(crate) fn label_of_id(cluster: &Cluster, members: &[Member], id: u64) -> String {
    members
        .iter()
        .find(|m| m.id() == id)
        .map(|m| member_label(cluster, m))
        .unwrap_or_else(|| format!("member {id:x}"))
}

/// The member list, from whichever of the context's endpoints answers.
pub(crate) async fn list(ctx: &Ctx<'_>) -> Result<Vec<Member>, EtcdError> {
    let mut client = ctx.client().await?;
    list_with(ctx, &mut client).await
}

pub(crate) async fn list_with(
    ctx: &Ctx<'_>,
    client: &mut Client,
) -> Result<Vec<Member>, EtcdError> {
    client
        .member_list()
        .await
        .map(|resp| resp.members().to_vec())
        .map_err(|err| call_error(format!("member list on {}", ctx.endpoints.join(",")), err))
}

/// `etcd.member.list`.
pub(crate) async fn member_list(ctx: &Ctx<'_>) -> Result<CallOutcome, EtcdError> {
    let members = list(ctx).await?;
    let names: Vec<String> = members.iter().map(display_name).collect();
    let learners: Vec<String> = members
        .iter()
        .filter(|m| m.is_learner())
        .map(display_name)
        .collect();
    let summary = members
        .iter()
        .map(|m| {
            format!(
                "{} {:x}{} peer {}",
                display_name(m),
                m.id(),
                if m.is_learner() { " (learner)" } else { "" },
                m.peer_urls().join(",")
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    Ok(
        CallOutcome::new(format!("{} members: {summary}", members.len()))
            .output("count", members.len())
            .output("names", names.join(","))
            .output("learners", learners.join(",")),
    )
}

/// A member's name, or `unstarted-<id>` before it has started and announced one.
fn display_name(member: &Member) -> String {
    if member.name().is_empty() {
        format!("unstarted-{:x}", member.id())
    } else {
        member.name().to_string()
    }
}

/// `etcd.member.add`.
pub(crate) async fn member_add(
    ctx: &Ctx<'_>,
    args: &MemberAddArgs,
) -> Result<CallOutcome, EtcdError> {
    let what = format!(
        "etcd.member.add of {} ({}) on {}",
        args.name,
        args.peer_url,
        ctx.endpoints.join(",")
    );
    let mut client = ctx.client().await?;
    let options = args
        .learner
        .then(|| MemberAddOptions::new().with_is_learner());
    let added = client
        .member_add(vec![args.peer_url.clone()], options)
        .await
        .map_err(super::ApiError);
    // A retry whose first answer was lost finds its own member already there: done. etcd
    // says "Peer URLs already exists", or "member ID already exist" when the retry comes within
    // the same second (the new ID is a hash of the peer URLs, cluster name and time).
    if let Err(err) = &added
        && ["Peer URLs already exists", "member ID already exist"]
            .iter()
            .any(|m| err.message().contains(m))
    {
        let members = list_with(ctx, &mut client).await?;
        if let Some(existing) = members.iter().find(|m| {
            (m.name().is_empty() || m.name() == args.name)
                && m.peer_urls().iter().any(|u| same_url(u, &args.peer_url))
        }) {
            let id = existing.id();
            let initial_cluster = initial_cluster(ctx.cluster, &members, id, &args.name);
            return Ok(CallOutcome::new(format!(
                "{} ({}) is already a member as {id:x} (a retry after a lost answer?); \
                 --initial-cluster={initial_cluster}",
                args.name, args.peer_url
            ))
            .output("member_id", format!("{id:x}"))
            .output("initial_cluster", initial_cluster));
        }
    }
    let resp = added.map_err(|err| {
        let message = err.message();
        let reason = if message.contains("too many learner") {
            format!(
                "etcd allows only one learner at a time: promote or remove the existing \
                     learner first (etcd: {message})"
            )
        } else if message.contains("Peer URLs already exists") {
            format!(
                "a member with peer URL {} already exists (etcd: {message})",
                args.peer_url
            )
        } else if message.contains("unhealthy cluster") {
            format!(
                "etcd refuses to add a member until the member receiving the request has \
                     been connected to every other voting member it knows for 5 s (strict \
                     reconfig check), so soon after a member started or was removed; retry \
                     (etcd: {message})"
            )
        } else {
            message
        };
        EtcdError::Refused {
            what: what.clone(),
            reason,
        }
    })?;
    let new_id = resp
        .member()
        .map(|m| m.id())
        .ok_or_else(|| EtcdError::Refused {
            what: what.clone(),
            reason: "etcd answered without the new member".into(),
        })?;
    let members = resp.member_list().to_vec();
    let initial_cluster = initial_cluster(ctx.cluster, &members, new_id, &args.name);
    Ok(CallOutcome::new(format!(
        "added {} as {} {new_id:x}; --initial-cluster={initial_cluster}",
        args.name,
        if args.learner {
            "learner"
        } else {
            "voting member"
        },
    ))
    .output("member_id", format!("{new_id:x}"))
    .output("initial_cluster", initial_cluster))
}

/// `name=peer_url,...` of every member after an add, exactly what the new member's
/// `--initial-cluster` must be: the new member under `new_name`, other unstarted members under
/// their inventory member name.
pub(crate) fn initial_cluster(
    cluster: &Cluster,
    members: &[Member],
    new_id: u64,
    new_name: &str,
) -> String {
    let mut parts = Vec::new();
    for member in members {
        let name = if member.id() == new_id {
            new_name.to_string()
        } else if !member.name().is_empty() {
            member.name().to_string()
        } else {
            node_of_member(cluster, member)
                .map(|n| n.etcd.member.clone())
                .unwrap_or_default()
        };
        for url in member.peer_urls() {
            parts.push(format!("{name}={url}"));
        }
    }
    parts.join(",")
}

/// `etcd.member.promote`: promoting a voting member succeeds without a call, so a retry after a
/// lost answer holds.
pub(crate) async fn member_promote(
    ctx: &Ctx<'_>,
    args: &MemberNameArgs,
) -> Result<CallOutcome, EtcdError> {
    let what = format!("etcd.member.promote of {}", args.name);
    let mut client = ctx.client().await?;
    let members = list_with(ctx, &mut client).await?;
    let member =
        find_member(&members, ctx.cluster, &args.name).ok_or_else(|| EtcdError::Refused {
            what: what.clone(),
            reason: no_member(&args.name, &members),
        })?;
    if !member.is_learner() {
        return Ok(CallOutcome::new(format!(
            "{} ({:x}) is already a voting member",
            args.name,
            member.id()
        )));
    }
    let id = member.id();
    client.member_promote(id).await.map_err(|err| {
        let api = super::ApiError(err);
        let message = api.message();
        if message.contains("in sync") || message.contains("not ready") {
            EtcdError::Refused {
                what: what.clone(),
                reason: format!(
                    "learner not yet in sync with the leader; retry once it has caught up \
                     (etcd: {message})"
                ),
            }
        } else {
            EtcdError::Call {
                what: what.clone(),
                source: api,
            }
        }
    })?;
    Ok(CallOutcome::new(format!(
        "promoted {} ({id:x}) to a voting member",
        args.name
    )))
}

/// `etcd.member.remove`: strict; a name that is not a member fails.
pub(crate) async fn member_remove(
    ctx: &Ctx<'_>,
    args: &MemberNameArgs,
) -> Result<CallOutcome, EtcdError> {
    let what = format!("etcd.member.remove of {}", args.name);
    let mut client = ctx.client().await?;
    let members = list_with(ctx, &mut client).await?;
    let Some(member) = find_member(&members, ctx.cluster, &args.name) else {
        // Absent already: done, if the name is one the inventory knows (a retry after a lost
        // answer, or removed by hand). An unknown name is a mistake, not a removal.
        let known = ctx
            .cluster
            .nodes
            .iter()
            .any(|n| n.etcd.member == args.name || n.name == args.name);
        if known {
            return Ok(CallOutcome::new(format!(
                "{} is not a member (already removed); {} members",
                args.name,
                members.len()
            )));
        }
        return Err(EtcdError::Refused {
            what: what.clone(),
            reason: no_member(&args.name, &members),
        });
    };
    let id = member.id();
    client
        .member_remove(id)
        .await
        .map_err(|err| call_error(what.clone(), err))?;
    Ok(CallOutcome::new(format!(
        "removed {} ({id:x}); {} members left",
        args.name,
        members.len() - 1
    )))
}

fn no_member(name: &str, members: &[Member]) -> String {
    let names: Vec<String> = members.iter().map(display_name).collect();
    format!(
        "no member named {name} (members: {})",
        if names.is_empty() {
            "none".into()
        } else {
            names.join(", ")
        }
    )
}

/// `verify.member_count`.
pub(crate) async fn verify_member_count(
    ctx: &Ctx<'_>,
    args: &VerifyMemberCountArgs,
) -> Result<CallOutcome, EtcdError> {
    let members = list(ctx).await?;
    let (learners, voting): (Vec<&Member>, Vec<&Member>) =
        members.iter().partition(|m| m.is_learner());
    let show = |list: &[&Member]| {
        list.iter()
            .map(|m| member_label(ctx.cluster, m))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let found = format!(
        "{} voting ({}) and {} learner(s) ({})",
        voting.len(),
        show(&voting),
        learners.len(),
        show(&learners)
    );
    if voting.len() != args.voting as usize || learners.len() != args.learners as usize {
        return Err(EtcdError::Refused {
            what: "verify.member_count".into(),
            reason: format!(
                "expected {} voting member(s) and {} learner(s), found {found}",
                args.voting, args.learners
            ),
        });
    }
    Ok(CallOutcome::new(format!("members as expected: {found}")))
}

/// Member lists from each endpoint, for callers that must tolerate unreachable members.
pub(crate) async fn list_any(ctx: &Ctx<'_>) -> Result<Vec<Member>, EtcdError> {
    let attempts = join_all(ctx.endpoints.iter().map(|ep| async move {
        let mut client = ctx.client_for(ep).await?;
        list_with(ctx, &mut client).await
    }))
    .await;
    let mut last = None;
    for attempt in attempts {
        match attempt {
            Ok(members) => return Ok(members),
            Err(err) => last = Some(err),
        }
    }
    Err(last.unwrap_or_else(|| EtcdError::Config {
        reason: "no endpoints".into(),
    }))
}
