//! Alarms: reading the active alarms, `etcd.alarm.list`, `etcd.alarm.disarm` and
//! `verify.no_alarms`.

use etcd_client::{AlarmAction, AlarmOptions, AlarmType, Client};

use super::CallOutcome;
use super::context::{Ctx, call_error};
use super::error::EtcdError;
use super::members::{self, label_of_id};
use crate::inventory::Cluster;

/// Active alarms as `(member id, type)`, from any endpoint (alarms are cluster-wide).
pub(crate) async fn active_alarms(
    ctx: &Ctx<'_>,
    client: &mut Client,
) -> Result<Vec<(u64, AlarmType)>, EtcdError> {
    let resp = client
        .alarm(AlarmAction::Get, AlarmType::None, None)
        .await
        .map_err(|err| call_error(format!("alarm list on {}", ctx.endpoints.join(",")), err))?;
    Ok(resp
        .alarms()
        .iter()
        .map(|a| (a.member_id(), a.alarm()))
        .collect())
}

/// `NOSPACE@cp2,CORRUPT@cp1`.
pub(crate) fn format_alarms(
    cluster: &Cluster,
    members: &[etcd_client::Member],
    alarms: &[(u64, AlarmType)],
) -> String {
    alarms
        .iter()
        .map(|(id, kind)| {
            format!(
                "{}@{}",
                kind.as_str_name(),
                label_of_id(cluster, members, *id)
            )
        })
        .collect::<Vec<_>>()
        .join(",")
}

async fn alarms_text(ctx: &Ctx<'_>) -> Result<(Vec<(u64, AlarmType)>, String), EtcdError> {
    let mut client = ctx.client().await?;
    let alarms = active_alarms(ctx, &mut client).await?;
    if alarms.is_empty() {
        return Ok((alarms, "none".into()));
    }
    let members = members::list_with(ctx, &mut client).await?;
    let text = format_alarms(ctx.cluster, &members, &alarms);
    Ok((alarms, text))
}

/// `etcd.alarm.list`.
pub(crate) async fn alarm_list(ctx: &Ctx<'_>) -> Result<CallOutcome, EtcdError> {
    let (alarms, text) = alarms_text(ctx).await?;
    Ok(
        CallOutcome::new(format!("{} active alarm(s): {text}", alarms.len()))
            .output("alarms", text),
    )
}

/// `etcd.alarm.disarm`: disarms every active alarm.
pub(crate) async fn alarm_disarm(ctx: &Ctx<'_>) -> Result<CallOutcome, EtcdError> {
    let (alarms, text) = alarms_text(ctx).await?;
    let mut client = ctx.client().await?;
    for (member, kind) in &alarms {
        let mut options = AlarmOptions::new();
        options.with_member(*member);
        client
            .alarm(AlarmAction::Deactivate, *kind, Some(options))
            .await
            .map_err(|err| {
                call_error(
                    format!("disarm of {} on member {member:x}", kind.as_str_name()),
                    err,
                )
            })?;
    }
    Ok(CallOutcome::new(if alarms.is_empty() {
        "no active alarm to disarm".to_string()
    } else {
        format!("disarmed {text}")
    }))
}

/// `verify.no_alarms`.
pub(crate) async fn verify_no_alarms(ctx: &Ctx<'_>) -> Result<CallOutcome, EtcdError> {
    let (alarms, text) = alarms_text(ctx).await?;
    if !alarms.is_empty() {
        return Err(EtcdError::Refused {
            what: "verify.no_alarms".into(),
            reason: format!(
                "active alarm(s): {text} (NOSPACE: compact, defragment every member, then \
                 disarm)"
            ),
        });
    }
    Ok(CallOutcome::new("no active alarm"))
}
