//! Tests of the etcd API layer against real etcd 3.5 and 3.4 clusters (no mocks), and of the
//! pure parts (snapshot trailer checks, access resolution) without etcd.

use std::process::Command;
use std::time::{Duration, Instant};

use super::test_cluster::{self, MemberSpec, TestCluster, Version, require};
use super::*;
use crate::runbook::action::{
    CompactArgs, KvGetArgs, KvPutArgs, MemberAddArgs, MemberNameArgs, MoveLeaderArgs, NoArgs,
    SnapshotSaveArgs, SnapshotVerifyArgs, VerifyHealthyArgs, VerifyKeyArgs, VerifyLeaderArgs,
    VerifyMemberCountArgs, WaitHealthyArgs,
};

const T: Duration = Duration::from_secs(15);

fn put(key: &str, value: &str) -> Action {
    Action::EtcdKvPut(KvPutArgs {
        key: key.into(),
        value: value.into(),
    })
}

fn out<'a>(outcome: &'a CallOutcome, name: &str) -> &'a str {
    outcome
        .outputs
        .get(name)
        .unwrap_or_else(|| panic!("no output {name} in {outcome:?}"))
}

/// Outputs are exactly the names the catalog declares for the action.
fn assert_declared(action: &Action, outcome: &CallOutcome) {
    let declared: Vec<&str> = action.kind().info().outputs.to_vec();
    let mut got: Vec<&str> = outcome.outputs.keys().map(String::as_str).collect();
    let mut want = declared.clone();
    got.sort_unstable();
    want.sort_unstable();
    assert_eq!(got, want, "outputs of {}", action.kind());
}

async fn ok(tc: &TestCluster, endpoints: &[String], action: Action) -> CallOutcome {
    match tc.run(endpoints, action.clone(), T).await {
        Ok(outcome) => {
            assert_declared(&action, &outcome);
            outcome
        }
        Err(err) => panic!("{} failed: {err}\n{}", action.kind(), tc.logs()),
    }
}

async fn refused(tc: &TestCluster, endpoints: &[String], action: Action) -> String {
    match tc.run(endpoints, action.clone(), T).await {
        Ok(outcome) => panic!("{} should fail, gave {outcome:?}", action.kind()),
        Err(err) => err.to_string(),
    }
}

#[tokio::test]
async fn three_members_probes_day2_and_membership() {
    let Some(bins) = require(Version::V35) else {
        return;
    };
    let mut tc = TestCluster::start(bins, 3, 1).await;
    let all = tc.endpoints(0..3);

    // Status and roles agree on the leader, named as an inventory node.
    let status = ok(&tc, &all, Action::EtcdStatus(NoArgs {})).await;
    let leader = out(&status, "leader").to_string();
    assert!(["m0", "m1", "m2"].contains(&leader.as_str()), "{status:?}");
    assert_eq!(out(&status, "member_count"), "3");
    assert!(status.summary.contains("v3.5.1"), "{}", status.summary);
    let roles = roles(&tc.access, &tc.cluster, T).await.unwrap();
    assert_eq!(roles.leader.as_deref(), Some(leader.as_str()));
    assert_eq!(roles.followers.len(), 2, "{roles:?}");
    assert!(!roles.followers.contains(&leader));

    let health = ok(&tc, &all, Action::EtcdHealth(NoArgs {})).await;
    assert_eq!((out(&health, "healthy"), out(&health, "total")), ("3", "3"));
    ok(
        &tc,
        &all,
        Action::VerifyHealthy(VerifyHealthyArgs::default()),
    )
    .await;
    ok(&tc, &all, Action::WaitHealthy(WaitHealthyArgs::default())).await;

    // Keys.
    let put_out = ok(&tc, &all, put("/etcdrill/canary", "alive")).await;
    let get = ok(
        &tc,
        &all,
        Action::EtcdKvGet(KvGetArgs {
            key: "/etcdrill/canary".into(),
        }),
    )
    .await;
    assert_eq!(out(&get, "value"), "alive");
    assert!(
        out(&get, "revision").parse::<i64>().unwrap() >= out(&put_out, "revision").parse().unwrap()
    );
    let missing = ok(
        &tc,
        &all,
        Action::EtcdKvGet(KvGetArgs {
            key: "/nope".into(),
        }),
    )
    .await;
    assert_eq!(out(&missing, "value"), "");
    assert!(missing.summary.contains("missing"), "{}", missing.summary);
    let verify_key = |value: Option<&str>, present: bool| {
        Action::VerifyKey(VerifyKeyArgs {
            key: "/etcdrill/canary".into(),
            value: value.map(Into::into),
            present,
        })
    };
    ok(&tc, &all, verify_key(Some("alive"), true)).await;
    let err = refused(&tc, &all, verify_key(Some("dead"), true)).await;
    assert!(
        err.contains(r#"the value is "alive", expected "dead""#),
        "{err}"
    );
    let err = refused(&tc, &all, verify_key(None, false)).await;
    assert!(err.contains("expected it absent"), "{err}");

    // Membership and alarms.
    let list = ok(&tc, &all, Action::EtcdMemberList(NoArgs {})).await;
    assert_eq!(out(&list, "count"), "3");
    assert_eq!(out(&list, "learners"), "");
    let mut names: Vec<&str> = out(&list, "names").split(',').collect();
    names.sort_unstable();
    assert_eq!(names, ["m0", "m1", "m2"]);
    let count =
        |voting, learners| Action::VerifyMemberCount(VerifyMemberCountArgs { voting, learners });
    ok(&tc, &all, count(3, 0)).await;
    let err = refused(&tc, &all, count(2, 0)).await;
    assert!(
        err.contains("expected 2 voting member(s) and 0 learner(s), found 3 voting"),
        "{err}"
    );
    let alarms = ok(&tc, &all, Action::EtcdAlarmList(NoArgs {})).await;
    assert_eq!(out(&alarms, "alarms"), "none");
    ok(&tc, &all, Action::VerifyNoAlarms(NoArgs {})).await;
    ok(&tc, &all, Action::EtcdAlarmDisarm(NoArgs {})).await;

    // Hashes agree.
    let hash = ok(&tc, &all, Action::EtcdHashKv(NoArgs {})).await;
    assert!(out(&hash, "hash").parse::<u32>().is_ok());
    let verified = ok(&tc, &all, Action::VerifyHashKv(NoArgs {})).await;
    assert!(
        verified.summary.contains("3 members agree"),
        "{}",
        verified.summary
    );

    // Defrag, one endpoint at a time.
    let defrag = ok(&tc, &all, Action::EtcdDefrag(NoArgs {})).await;
    assert!(
        defrag.summary.contains("m0:") && defrag.summary.contains("m2:"),
        "{}",
        defrag.summary
    );

    // Compaction keeps the window and refuses a too-recent revision.
    let mut last = String::new();
    for i in 0..5 {
        last = out(
            &ok(&tc, &all, put("/etcdrill/compact", &i.to_string())).await,
            "revision",
        )
        .to_string();
    }
    let current: u64 = last.parse().unwrap();
    let err = refused(
        &tc,
        &all,
        Action::EtcdCompact(CompactArgs {
            keep_revisions: 3,
            revision: Some(current - 1),
            physical: false,
        }),
    )
    .await;
    assert!(
        err.contains(&format!("refusing to compact to revision {}", current - 1))
            && err.contains(&format!("allows at most {}", current - 3)),
        "{err}"
    );
    let compacted = ok(
        &tc,
        &all,
        Action::EtcdCompact(CompactArgs {
            keep_revisions: 3,
            revision: None,
            physical: true,
        }),
    )
    .await;
    assert_eq!(out(&compacted, "revision"), (current - 3).to_string());
    // Again (a retry after a lost answer) still succeeds.
    ok(
        &tc,
        &all,
        Action::EtcdCompact(CompactArgs {
            keep_revisions: 3,
            revision: Some(current - 4),
            physical: false,
        }),
    )
    .await;
    ok(&tc, &all, Action::VerifyHashKv(NoArgs {})).await;

    // Leadership moves to a follower, sent to the leader whichever endpoints are given.
    let target = roles.followers[0].clone();
    ok(
        &tc,
        &all,
        Action::EtcdMoveLeader(MoveLeaderArgs { to: target.clone() }),
    )
    .await;
    ok(
        &tc,
        &all,
        Action::VerifyLeader(VerifyLeaderArgs {
            node: Some(target.clone()),
        }),
    )
    .await;
    let err = refused(
        &tc,
        &all,
        Action::VerifyLeader(VerifyLeaderArgs {
            node: Some(leader.clone()),
        }),
    )
    .await;
    assert!(
        err.contains(&format!("the leader is {target}, expected {leader}")),
        "{err}"
    );

    // Add m3 as a learner, start it, promote it (retrying while it catches up), remove it.
    // A young cluster refuses membership changes for its first 5 s (strict reconfig check).
    let add_m3 = Action::EtcdMemberAdd(MemberAddArgs {
        name: "m3".into(),
        peer_url: tc.specs[3].peer_url.clone(),
        learner: true,
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let add = loop {
        match tc.run(&all, add_m3.clone(), T).await {
            Ok(outcome) => break outcome,
            Err(err)
                if err.to_string().contains("strict reconfig check")
                    && Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            Err(err) => panic!("member add failed: {err}\n{}", tc.logs()),
        }
    };
    assert_declared(&add_m3, &add);
    let initial = out(&add, "initial_cluster").to_string();
    let mut parts: Vec<&str> = initial.split(',').collect();
    parts.sort_unstable();
    let expected = tc.initial_cluster(0..4);
    let mut want: Vec<&str> = expected.split(',').collect();
    want.sort_unstable();
    assert_eq!(parts, want);
    assert!(u64::from_str_radix(out(&add, "member_id"), 16).is_ok());
    // Adding it again (a retry whose first answer was lost) finds it there: the same answer.
    let again = ok(&tc, &all, add_m3.clone()).await;
    assert!(
        again.summary.contains("already a member"),
        "{}",
        again.summary
    );
    assert_eq!(out(&again, "member_id"), out(&add, "member_id"));
    assert_eq!(out(&again, "initial_cluster"), initial);
    let list = ok(&tc, &all, Action::EtcdMemberList(NoArgs {})).await;
    assert!(out(&list, "learners").starts_with("unstarted-"), "{list:?}");
    ok(&tc, &all, count(3, 1)).await;
    // etcd 3.5 allows one learner at a time.
    let err = refused(
        &tc,
        &all,
        Action::EtcdMemberAdd(MemberAddArgs {
            name: "m9".into(),
            peer_url: "http://127.0.0.1:9".into(),
            learner: true,
        }),
    )
    .await;
    assert!(err.contains("only one learner at a time"), "{err}");
    // Promoting a learner that has not started is refused in words the runner can retry on.
    let promote = Action::EtcdMemberPromote(MemberNameArgs { name: "m3".into() });
    let err = refused(&tc, &all, promote.clone()).await;
    assert!(err.contains("learner not yet in sync"), "{err}");
    tc.start_member(3, &initial, "existing");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match tc.run(&all, promote.clone(), T).await {
            Ok(_) => break,
            Err(err)
                if err.to_string().contains("learner not yet in sync")
                    && Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            Err(err) => panic!("promote failed: {err}\n{}", tc.logs()),
        }
    }
    // Promoting again is a no-op success (a retry after a lost answer).
    let again = ok(&tc, &all, promote.clone()).await;
    assert!(
        again.summary.contains("already a voting member"),
        "{}",
        again.summary
    );
    let four = tc.endpoints(0..4);
    tc.wait_healthy(0..4, Duration::from_secs(30)).await;
    ok(&tc, &four, count(4, 0)).await;
    let health = member_health(&tc.access, &tc.cluster, T).await;
    assert!(health.iter().all(|(_, h)| h.is_ok()), "{health:?}");
    assert_eq!(health.len(), 4);
    ok(&tc, &four, Action::VerifyHashKv(NoArgs {})).await;

    let remove = Action::EtcdMemberRemove(MemberNameArgs { name: "m3".into() });
    ok(&tc, &all, remove.clone()).await;
    // Removing it again is done already; a name the inventory does not know is refused.
    let again = ok(&tc, &all, remove).await;
    assert!(
        again.summary.contains("already removed"),
        "{}",
        again.summary
    );
    // Promoting a member that is not there is never "done".
    let err = refused(&tc, &all, promote).await;
    assert!(err.contains("no member named m3"), "{err}");
    let err = refused(
        &tc,
        &all,
        Action::EtcdMemberRemove(MemberNameArgs {
            name: "m-unknown".into(),
        }),
    )
    .await;
    assert!(err.contains("no member named m-unknown"), "{err}");
    ok(&tc, &all, count(3, 0)).await;
    tc.kill_member(3);
    let health = member_health(&tc.access, &tc.cluster, Duration::from_secs(2)).await;
    let m3 = health.iter().find(|(n, _)| n == "m3").unwrap();
    assert!(m3.1.is_err(), "{health:?}");
    // The quorum guard's view leaves the removed member out: it cannot cost quorum any more.
    let current = super::current_member_health(&tc.access, &tc.cluster, T).await;
    assert!(
        current.iter().all(|(n, h)| n != "m3" && h.is_ok()) && current.len() == 3,
        "{current:?}"
    );

    // One member down: calls to every endpoint still go through the others, health names it.
    let down = if target == "m2" { 1 } else { 2 };
    let down_name = format!("m{down}");
    tc.kill_member(down);
    ok(&tc, &all, put("/etcdrill/after", "one down")).await;
    let err = refused(&tc, &all, Action::EtcdHealth(NoArgs {})).await;
    assert!(
        err.contains("2 of 3 endpoints healthy") && err.contains(&format!("{down_name} (")),
        "{err}"
    );
    ok(
        &tc,
        &all,
        Action::VerifyHealthy(VerifyHealthyArgs {
            min_healthy: Some(2),
        }),
    )
    .await;
    let now = super::roles(&tc.access, &tc.cluster, T).await.unwrap();
    assert_eq!(now.leader.as_deref(), Some(target.as_str()), "{now:?}");
    let health = member_health(&tc.access, &tc.cluster, Duration::from_secs(2)).await;
    let unhealthy: Vec<&str> = health
        .iter()
        .filter(|(_, h)| h.is_err())
        .map(|(n, _)| n.as_str())
        .collect();
    assert_eq!(unhealthy, [down_name.as_str(), "m3"], "{health:?}");
}

#[tokio::test]
async fn snapshot_save_restores_with_etcdutl_and_verify_catches_damage() {
    let Some(bins) = require(Version::V35) else {
        return;
    };
    let tc = TestCluster::start(bins, 1, 0).await;
    let ep = tc.endpoints(0..1);
    let mut client = tc.access.client(&ep).await.unwrap();
    for i in 0..300 {
        client
            .put(format!("/k/{i}"), vec![b'x'; 1000], None)
            .await
            .unwrap();
    }
    let path = tc.dir.path().join("snaps/first.db");
    let save = Action::EtcdSnapshotSave(SnapshotSaveArgs {
        path: path.display().to_string(),
    });
    let saved = ok(&tc, &ep, save).await;
    assert_eq!(out(&saved, "path"), path.display().to_string());
    let size: u64 = out(&saved, "size").parse().unwrap();
    assert_eq!(size, std::fs::metadata(&path).unwrap().len());
    assert_eq!(size % 512, 32);
    let parts: Vec<_> = std::fs::read_dir(tc.dir.path().join("snaps"))
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with(".part"))
        .collect();
    assert!(parts.is_empty(), "a part file is left: {parts:?}");

    // The native verify agrees with the save.
    let verify = Action::EtcdSnapshotVerify(SnapshotVerifyArgs {
        path: path.display().to_string(),
    });
    let verified = execute_native(&verify, T).await.unwrap();
    assert_declared(&verify, &verified);
    assert_eq!(out(&verified, "sha256"), out(&saved, "sha256"));
    assert_eq!(out(&verified, "size"), out(&saved, "size"));

    // etcdutl restores it without --skip-hash-check and agrees on the revision.
    let etcdutl = tc.bins.etcdutl.clone().unwrap();
    let restored = tc.dir.path().join("restored");
    let restore = Command::new(&etcdutl)
        .arg("snapshot")
        .arg("restore")
        .arg(&path)
        .arg(format!("--data-dir={}", restored.display()))
        .arg("--name=m0")
        .arg("--initial-cluster=m0=http://127.0.0.1:2380")
        .arg("--initial-advertise-peer-urls=http://127.0.0.1:2380")
        .output()
        .unwrap();
    assert!(
        restore.status.success(),
        "etcdutl snapshot restore: {}",
        String::from_utf8_lossy(&restore.stderr)
    );
    assert!(restored.join("member/snap/db").is_file());
    let status = Command::new(&etcdutl)
        .args(["snapshot", "status", "-w", "json"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(
        json["revision"].to_string(),
        out(&saved, "revision"),
        "{json}"
    );
    assert!(json["totalKey"].as_u64().unwrap() >= 300, "{json}");

    // A flipped bit, a truncation and a raw db without trailer are caught, never a panic.
    let bytes = std::fs::read(&path).unwrap();
    let damaged = |name: &str, data: &[u8]| {
        let p = tc.dir.path().join(name);
        std::fs::write(&p, data).unwrap();
        p
    };
    let mut flipped = bytes.clone();
    flipped[4096 + 17] ^= 0x04;
    let err = verify_snapshot_file(&damaged("flipped.db", &flipped))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("corrupt"), "{err}");
    let err = verify_snapshot_file(&damaged("short.db", &bytes[..bytes.len() - 100]))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no sha256 trailer"), "{err}");
    let err = verify_snapshot_file(&damaged("page-short.db", &bytes[..bytes.len() - 512]))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("corrupt"), "{err}");
    let err = verify_snapshot_file(&damaged("raw.db", &bytes[..bytes.len() - 32]))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no sha256 trailer"), "{err}");
    let err = verify_snapshot_file(&damaged("empty.db", &[]))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no sha256 trailer"), "{err}");
    let missing = Action::EtcdSnapshotVerify(SnapshotVerifyArgs {
        path: "/nonexistent/snap.db".into(),
    });
    let err = execute_native(&missing, T).await.unwrap_err();
    assert!(err.to_string().contains("/nonexistent/snap.db"), "{err}");
}

#[tokio::test]
async fn tls_failures_are_clear_errors() {
    let Some(bins) = require(Version::V35) else {
        return;
    };
    let tc = TestCluster::start(bins, 1, 0).await;
    let ep = tc.endpoints(0..1);

    // A CA that did not sign the server's certificate.
    let mut wrong = tc.certs.client.clone();
    wrong.ca = tc.certs.other_ca.display().to_string();
    let access = EtcdAccess::resolve(Some(&wrong)).unwrap();
    let err = execute(
        &access,
        &tc.cluster,
        &ep,
        &Action::EtcdStatus(NoArgs {}),
        Duration::from_secs(5),
        None,
    )
    .await
    .unwrap_err();
    let text = err.to_string();
    eprintln!("wrong CA: {text}");
    assert!(text.contains(&ep[0]), "names the endpoint: {text}");
    assert!(
        text.to_lowercase().contains("certificate"),
        "says why: {text}"
    );
    assert!(!text.contains("PRIVATE KEY"), "{text}");

    // No client certificate: the server refuses the handshake.
    let ca_only = EtcdAccess::resolve_with(None, |name| {
        (name == "ETCDCTL_CACERT").then(|| tc.certs.ca.display().to_string())
    })
    .unwrap();
    let err = execute(
        &ca_only,
        &tc.cluster,
        &ep,
        &Action::EtcdStatus(NoArgs {}),
        Duration::from_secs(5),
        None,
    )
    .await
    .unwrap_err();
    eprintln!("no client certificate: {err}");
    assert!(err.to_string().contains(&ep[0]), "{err}");

    // https without a CA is refused before dialling (there are no system roots).
    let err = execute(
        &EtcdAccess::plain(),
        &tc.cluster,
        &ep,
        &Action::EtcdStatus(NoArgs {}),
        T,
        None,
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("need the CA"), "{err}");

    // A missing file names its path.
    let mut missing = tc.certs.client.clone();
    missing.key = "/nonexistent/client.key".into();
    let err = EtcdAccess::resolve(Some(&missing)).unwrap_err();
    assert!(matches!(err, EtcdError::Tls { .. }), "{err:?}");
    assert!(err.to_string().contains("/nonexistent/client.key"), "{err}");
    // A key given as the certificate is caught with its path, and its bytes are never shown.
    let mut swapped = tc.certs.client.clone();
    swapped.cert = swapped.key.clone();
    let err = EtcdAccess::resolve(Some(&swapped)).unwrap_err();
    assert!(
        err.to_string()
            .contains("no PEM block labelled `CERTIFICATE`"),
        "{err}"
    );
    let debug = format!("{:?}", tc.access);
    assert!(
        !debug.contains("PRIVATE KEY") && debug.contains("client.key"),
        "{debug}"
    );
}

#[tokio::test]
async fn etcd34_status_put_get_and_snapshot() {
    let Some(bins) = require(Version::V34) else {
        return;
    };
    let tc = TestCluster::start(bins, 1, 0).await;
    let ep = tc.endpoints(0..1);
    let status = ok(&tc, &ep, Action::EtcdStatus(NoArgs {})).await;
    assert_eq!(out(&status, "leader"), "m0");
    assert!(status.summary.contains("v3.4."), "{}", status.summary);
    ok(&tc, &ep, put("/etcdrill/v34", "yes")).await;
    let get = ok(
        &tc,
        &ep,
        Action::EtcdKvGet(KvGetArgs {
            key: "/etcdrill/v34".into(),
        }),
    )
    .await;
    assert_eq!(out(&get, "value"), "yes");
    let path = tc.dir.path().join("v34.db");
    let saved = ok(
        &tc,
        &ep,
        Action::EtcdSnapshotSave(SnapshotSaveArgs {
            path: path.display().to_string(),
        }),
    )
    .await;
    let file = verify_snapshot_file(&path).await.unwrap();
    assert_eq!(file.sha256, out(&saved, "sha256"));
    ok(&tc, &ep, Action::VerifyHashKv(NoArgs {})).await;
    ok(
        &tc,
        &ep,
        Action::VerifyLeader(VerifyLeaderArgs {
            node: Some("m0".into()),
        }),
    )
    .await;
}

/// An inventory whose only member listens nowhere.
fn dead_cluster() -> (Cluster, Vec<String>) {
    let port = test_cluster::free_ports(1)[0];
    let spec = MemberSpec {
        name: "dead".into(),
        client_url: format!("http://127.0.0.1:{port}"),
        peer_url: "http://127.0.0.1:1".into(),
    };
    let tls = crate::inventory::TlsFiles {
        ca: "ca".into(),
        cert: "c".into(),
        key: "k".into(),
    };
    let endpoints = vec![spec.client_url.clone()];
    (test_cluster::inventory(&[spec], &tls), endpoints)
}

#[tokio::test]
async fn wait_healthy_times_out_naming_the_dead_endpoint() {
    let (cluster, endpoints) = dead_cluster();
    let access = EtcdAccess::plain();
    let started = Instant::now();
    let action = Action::WaitHealthy(WaitHealthyArgs::default());
    let err = execute(
        &access,
        &cluster,
        &endpoints,
        &action,
        Duration::from_millis(1500),
        None,
    )
    .await
    .unwrap_err();
    let elapsed = started.elapsed();
    let text = err.to_string();
    eprintln!("dead endpoint: {text}");
    assert!(matches!(err, EtcdError::Refused { .. }), "{err:?}");
    assert!(
        text.starts_with("wait.healthy: 0 of 1 endpoints healthy"),
        "{text}"
    );
    assert!(text.contains(&format!("dead ({})", endpoints[0])), "{text}");
    assert!(
        text.to_lowercase().contains("refused") || text.contains("connect"),
        "{text}"
    );
    assert!(
        elapsed >= Duration::from_millis(1400) && elapsed < Duration::from_secs(4),
        "{elapsed:?}"
    );

    // Any other call to a dead endpoint fails within its timeout and names the endpoint.
    let started = Instant::now();
    let err = execute(
        &access,
        &cluster,
        &endpoints,
        &Action::EtcdStatus(NoArgs {}),
        Duration::from_secs(2),
        None,
    )
    .await
    .unwrap_err();
    eprintln!("dead endpoint status: {err}");
    assert!(err.to_string().contains(&endpoints[0]), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let roles_err = roles(&access, &cluster, Duration::from_secs(2))
        .await
        .unwrap_err();
    assert!(roles_err.to_string().contains(&endpoints[0]), "{roles_err}");
}

#[tokio::test]
async fn non_etcd_actions_are_refused() {
    let (cluster, endpoints) = dead_cluster();
    let action = Action::EtcdStopMember(NoArgs {});
    let err = execute(&EtcdAccess::plain(), &cluster, &endpoints, &action, T, None)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            EtcdError::Unsupported {
                action: "etcd.stop_member"
            }
        ),
        "{err:?}"
    );
    let err = execute_native(&put("a", "b"), T).await.unwrap_err();
    assert!(matches!(err, EtcdError::Unsupported { .. }), "{err:?}");
}

#[tokio::test]
async fn verify_accepts_a_well_formed_file_and_names_the_problem_otherwise() {
    use sha2::{Digest, Sha256};
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, data: &[u8]| {
        let path = dir.path().join(name);
        std::fs::write(&path, data).unwrap();
        path
    };
    // 3 MiB of data spans several read buffers; the trailer straddles nothing.
    let data = crate::snapshot::test_db::sample(3 * 1024 * 1024);
    let digest = Sha256::digest(&data);
    let mut good = data.clone();
    good.extend_from_slice(&digest);
    let file = verify_snapshot_file(&write("good.db", &good))
        .await
        .unwrap();
    assert_eq!(file.size, good.len() as u64);
    assert_eq!(file.sha256.len(), 64);
    let mut bad = good.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    let err = verify_snapshot_file(&write("bad-trailer.db", &bad))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("corrupt: the sha256 of the data is"),
        "{err}"
    );
    let err = verify_snapshot_file(&write("tiny.db", &[0; 31]))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no sha256 trailer"), "{err}");
}

#[test]
fn access_resolution_from_variables() {
    let vars = |pairs: &'static [(&'static str, &'static str)]| {
        move |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    };
    let plain = EtcdAccess::resolve_with(None, vars(&[])).unwrap();
    assert!(!plain.uses_tls());
    let err = EtcdAccess::resolve_with(None, vars(&[("ETCDCTL_CERT", "/x/c.crt")])).unwrap_err();
    assert!(err.to_string().contains("/x/c.crt"), "{err}");
    let err = EtcdAccess::resolve_with(None, vars(&[("ETCDCTL_USER", "root")])).unwrap_err();
    assert!(err.to_string().contains("without a password"), "{err}");
    let user = EtcdAccess::resolve_with(None, vars(&[("ETCDCTL_USER", "root:s3cret")])).unwrap();
    let debug = format!("{user:?}");
    assert!(
        debug.contains("root") && !debug.contains("s3cret"),
        "{debug}"
    );
    let err =
        EtcdAccess::resolve_with(None, vars(&[("ETCDCTL_DIAL_TIMEOUT", "soon")])).unwrap_err();
    assert!(err.to_string().contains("ETCDCTL_DIAL_TIMEOUT"), "{err}");
    let err = EtcdAccess::resolve_with(None, vars(&[("ETCDCTL_CACERT", "/nonexistent/ca.crt")]))
        .unwrap_err();
    assert!(err.to_string().contains("/nonexistent/ca.crt"), "{err}");
}
