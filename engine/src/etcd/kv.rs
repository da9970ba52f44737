//! Single keys: `etcd.kv.put`, `etcd.kv.get` and `verify.key`.

use super::CallOutcome;
use super::context::{Ctx, call_error};
use super::error::EtcdError;
use crate::runbook::action::{KvGetArgs, KvPutArgs, VerifyKeyArgs};

/// `etcd.kv.put`.
pub(crate) async fn kv_put(ctx: &Ctx<'_>, args: &KvPutArgs) -> Result<CallOutcome, EtcdError> {
    let mut client = ctx.client().await?;
    let resp = client
        .put(args.key.as_bytes(), args.value.as_bytes(), None)
        .await
        .map_err(|err| call_error(format!("put of {}", args.key), err))?;
    let revision = resp.header().map_or(0, |h| h.revision());
    Ok(
        CallOutcome::new(format!("put {} at revision {revision}", args.key))
            .output("revision", revision),
    )
}

/// A key's value (lossy UTF-8) and the read's revision.
async fn get(ctx: &Ctx<'_>, key: &str) -> Result<(Option<String>, i64), EtcdError> {
    let mut client = ctx.client().await?;
    let resp = client
        .get(key.as_bytes(), None)
        .await
        .map_err(|err| call_error(format!("get of {key}"), err))?;
    let revision = resp.header().map_or(0, |h| h.revision());
    let value = resp
        .kvs()
        .first()
        .map(|kv| String::from_utf8_lossy(kv.value()).into_owned());
    Ok((value, revision))
}

/// `etcd.kv.get`: a missing key gives an empty value, and the summary says it is missing.
pub(crate) async fn kv_get(ctx: &Ctx<'_>, args: &KvGetArgs) -> Result<CallOutcome, EtcdError> {
    let (value, revision) = get(ctx, &args.key).await?;
    let summary = match &value {
        Some(value) => format!(
            "{} = {} bytes at revision {revision}",
            args.key,
            value.len()
        ),
        None => format!(
            "{} is missing at revision {revision} (value output is empty)",
            args.key
        ),
    };
    Ok(CallOutcome::new(summary)
        .output("value", value.unwrap_or_default())
        .output("revision", revision))
}

/// `verify.key`.
pub(crate) async fn verify_key(
    ctx: &Ctx<'_>,
    args: &VerifyKeyArgs,
) -> Result<CallOutcome, EtcdError> {
    let (value, revision) = get(ctx, &args.key).await?;
    let refuse = |reason: String| EtcdError::Refused {
        what: format!("verify.key {}", args.key),
        reason,
    };
    match (args.present, value, &args.value) {
        (true, None, _) => Err(refuse(format!("the key is missing at revision {revision}"))),
        (true, Some(found), Some(expected)) if &found != expected => Err(refuse(format!(
            "the value is {found:?}, expected {expected:?} (revision {revision})"
        ))),
        (true, Some(_), _) => Ok(CallOutcome::new(format!(
            "{} is present as expected at revision {revision}",
            args.key
        ))),
        (false, Some(_), _) => Err(refuse(format!(
            "the key exists at revision {revision}, expected it absent"
        ))),
        (false, None, _) => Ok(CallOutcome::new(format!(
            "{} is absent as expected at revision {revision}",
            args.key
        ))),
    }
}
