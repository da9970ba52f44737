//! Keyspace hashes: `etcd.hashkv`, and `verify.hashkv`, which checks that every member holds the
//! same data.

use etcd_client::HashKvResponse;

use super::CallOutcome;
use super::context::{Ctx, all_ok, call_error, endpoint_status, per_endpoint};
use super::error::EtcdError;
use super::status::header_revision;

async fn endpoint_hashkv(
    ctx: &Ctx<'_>,
    endpoint: &str,
    revision: i64,
) -> Result<HashKvResponse, EtcdError> {
    let mut client = ctx.client_for(endpoint).await?;
    client.hash_kv(revision).await.map_err(|err| {
        call_error(
            format!("hashkv at revision {revision} of {}", ctx.label(endpoint)),
            err,
        )
    })
}

/// The revision a HashKV answer is for: the requested one, or the header's current one.
fn hashed_revision(resp: &HashKvResponse, requested: i64) -> i64 {
    if requested > 0 {
        requested
    } else {
        resp.header().map_or(0, |h| h.revision())
    }
}

/// `etcd.hashkv`: each endpoint at its current revision; outputs from the first.
pub(crate) async fn hashkv(ctx: &Ctx<'_>) -> Result<CallOutcome, EtcdError> {
    let results = all_ok(
        "etcd.hashkv",
        per_endpoint(ctx, |ctx, ep| endpoint_hashkv(ctx, ep, 0)).await,
    )?;
    let summary = results
        .iter()
        .map(|(ep, r)| {
            format!(
                "{}: hash {} at revision {} (compacted at {})",
                ctx.short(ep),
                r.hash(),
                hashed_revision(r, 0),
                r.compact_version()
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    let (_, first) = &results[0];
    Ok(CallOutcome::new(summary)
        .output("hash", first.hash())
        .output("revision", hashed_revision(first, 0)))
}

/// `verify.hashkv`: every endpoint hashes the same revision (the lowest current revision among
/// them) and must report the same hash; tried twice in case a compaction raced.
pub(crate) async fn verify_hashkv(ctx: &Ctx<'_>) -> Result<CallOutcome, EtcdError> {
    let mut last = None;
    for _ in 0..2 {
        match hashkv_once(ctx).await? {
            Ok(outcome) => return Ok(outcome),
            Err(reason) => last = Some(reason),
        }
    }
    Err(EtcdError::Refused {
        what: "verify.hashkv".into(),
        reason: last.unwrap_or_default(),
    })
}

async fn hashkv_once(ctx: &Ctx<'_>) -> Result<Result<CallOutcome, String>, EtcdError> {
    let statuses = all_ok(
        "verify.hashkv",
        per_endpoint(ctx, |ctx, ep| endpoint_status(ctx, ep)).await,
    )?;
    let revision = statuses
        .iter()
        .map(|(_, s)| header_revision(s))
        .min()
        .unwrap_or(0);
    let results = per_endpoint(ctx, |ctx, ep| endpoint_hashkv(ctx, ep, revision)).await;
    let mut hashes = Vec::new();
    for (endpoint, result) in results {
        match result {
            Ok(resp) => hashes.push((endpoint, resp)),
            // Compacted past the revision between status and hash: try again.
            Err(EtcdError::Call { source, .. })
                if source
                    .message()
                    .contains("required revision has been compacted") =>
            {
                return Ok(Err(format!(
                    "revision {revision} was compacted while hashing; try again"
                )));
            }
            Err(err) => return Err(err),
        }
    }
    let (first_ep, first) = &hashes[0];
    let differing: Vec<String> = hashes
        .iter()
        .filter(|(_, r)| r.hash() != first.hash() || r.compact_version() != first.compact_version())
        .map(|(ep, r)| {
            format!(
                "{} reports hash {} at revision {revision} (compacted at {})",
                ctx.short(ep),
                r.hash(),
                r.compact_version()
            )
        })
        .collect();
    if differing.is_empty() {
        return Ok(Ok(CallOutcome::new(format!(
            "{} members agree: hash {} at revision {revision}",
            hashes.len(),
            first.hash()
        ))));
    }
    Ok(Err(format!(
        "{}, {} reports {} (compacted at {}): the members' data differs; find the odd one out \
         (etcd's corruption check, `etcdctl endpoint hashkv`) before trusting it",
        differing.join(", "),
        ctx.short(first_ep),
        first.hash(),
        first.compact_version()
    )))
}
