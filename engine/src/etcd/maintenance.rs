//! Maintenance of the keyspace and the database files: `etcd.defrag` and `etcd.compact`.

use etcd_client::{Client, CompactionOptions};

use super::CallOutcome;
use super::context::{Ctx, call_error, endpoint_status};
use super::error::{ApiError, EtcdError};
use crate::humanize::bytes;
use crate::runbook::action::CompactArgs;

/// `etcd.defrag`: one endpoint at a time, in the order given.
pub(crate) async fn defrag(ctx: &Ctx<'_>) -> Result<CallOutcome, EtcdError> {
    let mut done = Vec::new();
    for endpoint in ctx.endpoints {
        let before = endpoint_status(ctx, endpoint).await?.db_size();
        let mut client = ctx.client_for(endpoint).await?;
        client
            .defragment()
            .await
            .map_err(|err| call_error(format!("defragment of {}", ctx.label(endpoint)), err))?;
        let after = endpoint_status(ctx, endpoint).await?.db_size();
        done.push(format!(
            "{}: {} -> {}",
            ctx.short(endpoint),
            bytes(before as f64),
            bytes(after as f64)
        ));
    }
    Ok(CallOutcome::new(format!(
        "defragmented {}",
        done.join(", ")
    )))
}

/// The current revision, from a read's header.
async fn current_revision(ctx: &Ctx<'_>, client: &mut Client) -> Result<i64, EtcdError> {
    let resp = client
        .get(
            "health",
            Some(etcd_client::GetOptions::new().with_count_only()),
        )
        .await
        .map_err(|err| call_error(format!("read on {}", ctx.endpoints.join(",")), err))?;
    Ok(resp.header().map_or(0, |h| h.revision()))
}

/// `etcd.compact`: to the current revision minus `keep_revisions`, or to `revision` if that
/// keeps the window. Compacting to an already compacted revision succeeds (a retry).
pub(crate) async fn compact(ctx: &Ctx<'_>, args: &CompactArgs) -> Result<CallOutcome, EtcdError> {
    let mut client = ctx.client().await?;
    let current = current_revision(ctx, &mut client).await?;
    let newest_allowed = current - args.keep_revisions as i64;
    let target = match args.revision {
        Some(revision) if revision as i64 > newest_allowed => {
            return Err(EtcdError::Refused {
                what: "etcd.compact".into(),
                reason: format!(
                    "refusing to compact to revision {revision}: the current revision is \
                     {current} and keep_revisions {} allows at most {}",
                    args.keep_revisions,
                    newest_allowed.max(0)
                ),
            });
        }
        Some(revision) => revision as i64,
        None => newest_allowed,
    };
    if target < 1 {
        return Ok(CallOutcome::new(format!(
            "nothing to compact: the current revision {current} is within the {} kept",
            args.keep_revisions
        ))
        .output("revision", 0));
    }
    let options = args
        .physical
        .then(|| CompactionOptions::new().with_physical());
    match client.compact(target, options).await {
        Ok(_) => Ok(CallOutcome::new(format!(
            "compacted to revision {target} (current {current}{})",
            if args.physical {
                ", physically applied"
            } else {
                ""
            }
        ))
        .output("revision", target)),
        Err(err) => {
            let api = ApiError(err);
            if api
                .message()
                .contains("required revision has been compacted")
            {
                Ok(CallOutcome::new(format!(
                    "already compacted to revision {target} or later (current {current})"
                ))
                .output("revision", target))
            } else {
                Err(EtcdError::Call {
                    what: format!("compact to revision {target}"),
                    source: api,
                })
            }
        }
    }
}
