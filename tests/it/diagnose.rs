//! `etcdrill diagnose`, `health`, `status`, `members` and `snapshot save|verify|status` against
//! the test bed's real etcd clusters (mutual TLS, kubeadm static pods). Each diagnose test creates
//! one condition and checks that diagnose finds it, says what to do, and exits with the code of
//! its worst finding. These tests need root; see `etcdrill_testbed::require`.

use std::path::Path;
use std::time::Duration;

use etcdrill_testbed::{Bed, BedConfig, SEED_PREFIX, wait_until};
use serde_json::Value;

use crate::support;
use crate::support::{Etcdrill, Outcome, bed, inventory_yaml, write};

const MIB: u64 = 1024 * 1024;

/// A work directory with the bed's inventory in it.
fn work(bed: &Bed) -> (tempfile::TempDir, String) {
    let work = tempfile::tempdir().unwrap();
    let inventory = write(
        work.path(),
        "inventory.yaml",
        &inventory_yaml(bed, work.path()),
    );
    (work, inventory.display().to_string())
}

/// `etcdrill diagnose -i INVENTORY -o json` (runs looked for in the work dir), and its JSON.
fn diagnose(work: &Path, inventory: &str, extra: &[&str]) -> (Outcome, Value) {
    let outcome = Etcdrill::new(work)
        .args(["diagnose", "-i", inventory, "-o", "json"])
        .args(extra)
        .run();
    let json: Value = serde_json::from_str(&outcome.stdout())
        .unwrap_or_else(|e| panic!("diagnose prints JSON ({e}):\n{}", outcome.shown()));
    // The exit code is the worst finding's.
    let expected = json["exit_code"].as_i64().unwrap() as i32;
    assert_eq!(
        outcome.code(),
        Some(expected),
        "exit code vs the worst finding:\n{}",
        outcome.shown()
    );
    (outcome, json)
}

/// The finding with `code`, if any.
fn finding<'j>(json: &'j Value, code: &str) -> Option<&'j Value> {
    json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == code)
}

fn codes(json: &Value) -> Vec<String> {
    json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| format!("{} ({})", f["code"], f["severity"]))
        .collect()
}

#[test]
fn a_member_down_is_urgent_and_names_replace_member_for_its_node() {
    let Some(bed) = bed(BedConfig::new(3)) else {
        return;
    };
    let (work, inventory) = work(&bed);
    let victim = &bed.nodes()[2];
    bed.stop_member(victim).unwrap();
    let (outcome, json) = diagnose(work.path(), &inventory, &[]);
    let down = finding(&json, "member-down")
        .unwrap_or_else(|| panic!("no member-down finding: {:?}", codes(&json)));
    assert_eq!(down["severity"], "urgent");
    assert_eq!(down["runbook"]["runbook"], "replace-member");
    assert_eq!(down["runbook"]["params"]["node"], victim.name());
    assert!(
        down["summary"].as_str().unwrap().contains(victim.name()),
        "{down}"
    );
    assert!(
        down["commands"][0]
            .as_str()
            .unwrap()
            .contains(&format!("-p node={}", victim.name())),
        "{down}"
    );
    assert!(
        finding(&json, "quorum-lost").is_none(),
        "{:?}",
        codes(&json)
    );
    assert_eq!(outcome.code(), Some(4), "{}", outcome.shown());

    // The table says the same to a person.
    let table = Etcdrill::new(work.path())
        .args(["diagnose", "-i", &inventory])
        .run()
        .expect_code(4);
    let text = table.stdout();
    assert!(text.contains("URGENT"), "{text}");
    assert!(
        text.contains(&format!(
            "runbook: etcdrill run runbooks/replace-member.yaml -i {inventory} -p node={}",
            victim.name()
        )),
        "{text}"
    );
}

#[test]
fn a_database_near_its_quota_is_found() {
    let Some(bed) = bed(BedConfig::new(1).quota_backend_bytes(16 * MIB)) else {
        return;
    };
    let (work, inventory) = work(&bed);
    // About 12 MiB of values: over 70 % of the 16 MiB quota, under the quota itself.
    bed.seed(124, 100_000).unwrap();
    let (_, json) = diagnose(work.path(), &inventory, &[]);
    let near = finding(&json, "db-near-quota")
        .unwrap_or_else(|| panic!("no db-near-quota finding: {:?}\n{json:#}", codes(&json)));
    assert!(
        near["severity"] == "warning" || near["severity"] == "urgent",
        "{near}"
    );
    // The quota was read from the member's metrics, not assumed.
    let detail = near["detail"].as_str().unwrap();
    assert!(detail.contains("16.0 MiB quota"), "{detail}");
    assert!(!detail.contains("assumed"), "{detail}");
    assert!(
        finding(&json, "alarm-nospace").is_none(),
        "{:?}",
        codes(&json)
    );
}

#[test]
fn a_nospace_alarm_is_critical_and_names_compact_defrag_and_disarm() {
    let Some(bed) = bed(BedConfig::new(1).quota_backend_bytes(4 * MIB)) else {
        return;
    };
    let (work, inventory) = work(&bed);
    // Write past the quota: the writes fail once the alarm is raised.
    assert!(
        bed.seed(80, 100_000).is_err(),
        "writing 8 MB under a 4 MiB quota failed nowhere"
    );
    let (outcome, json) = diagnose(work.path(), &inventory, &[]);
    let nospace = finding(&json, "alarm-nospace")
        .unwrap_or_else(|| panic!("no alarm-nospace finding: {:?}", codes(&json)));
    assert_eq!(nospace["severity"], "critical");
    let action = nospace["action"].as_str().unwrap();
    let at = |word: &str| {
        action
            .find(word)
            .unwrap_or_else(|| panic!("{word} not in {action}"))
    };
    assert!(at("compact") < at("defragment") && at("defragment") < at("disarm"));
    assert_eq!(nospace["runbook"]["runbook"], "compact");
    assert_eq!(nospace["then"][0]["runbook"], "defrag-rolling");
    assert_eq!(outcome.code(), Some(5), "{}", outcome.shown());
    // Health fails too: an active alarm makes an endpoint unhealthy.
    let health = Etcdrill::new(work.path())
        .args(["health", "-i", &inventory])
        .run()
        .expect_code(1);
    assert!(health.stdout().contains("NOSPACE"), "{}", health.shown());
}

#[test]
fn an_even_member_count_is_found() {
    let Some(bed) = bed(BedConfig::new(2)) else {
        return;
    };
    let (work, inventory) = work(&bed);
    let (_, json) = diagnose(work.path(), &inventory, &[]);
    let even = finding(&json, "even-member-count")
        .unwrap_or_else(|| panic!("no even-member-count finding: {:?}", codes(&json)));
    assert_eq!(even["severity"], "warning");
    assert!(even["summary"].as_str().unwrap().contains('2'), "{even}");
}

#[test]
fn free_pages_worth_a_defrag_are_found() {
    let Some(bed) = bed(BedConfig::new(1)) else {
        return;
    };
    let (work, inventory) = work(&bed);
    // About 24 MiB written, deleted and compacted away: the file keeps its size, mostly free.
    bed.seed(250, 100_000).unwrap();
    bed.etcdctl(&["del", "--prefix", SEED_PREFIX])
        .unwrap()
        .into_stdout()
        .unwrap();
    let header = bed
        .etcdctl(&["get", "x", "-w", "json"])
        .unwrap()
        .into_stdout()
        .unwrap();
    let revision = serde_json::from_str::<Value>(&header).unwrap()["header"]["revision"]
        .as_i64()
        .unwrap();
    bed.etcdctl(&["compact", &revision.to_string(), "--physical"])
        .unwrap()
        .into_stdout()
        .unwrap();
    let mut last = Value::Null;
    let mut found = None;
    let mut nudges = 0;
    let waited = wait_until(
        "diagnose to find free pages",
        Duration::from_secs(30),
        || {
            // Freed pages count as free once the backend commits again, which takes a write.
            bed.etcdctl(&["put", &format!("/after/{nudges}"), "x"])
                .unwrap()
                .into_stdout()
                .unwrap();
            nudges += 1;
            let (_, json) = diagnose(work.path(), &inventory, &[]);
            found = finding(&json, "defrag-reclaimable").cloned();
            last = json;
            found
                .as_ref()
                .map(|_| ())
                .ok_or_else(|| "not yet".to_string())
        },
    );
    if let Err(e) = waited {
        panic!("{e}: {:?}\n{last:#}", codes(&last));
    }
    let defrag = found.unwrap();
    assert_eq!(defrag["runbook"]["runbook"], "defrag-rolling");
    assert!(
        defrag["summary"]
            .as_str()
            .unwrap()
            .starts_with("a defrag would reclaim"),
        "{defrag}"
    );
}

#[test]
fn health_status_and_members_print_tables_and_json() {
    let Some(bed) = bed(BedConfig::new(3)) else {
        return;
    };
    let (work, inventory) = work(&bed);
    let run = |args: &[&str]| Etcdrill::new(work.path()).args(args).run().expect_code(0);
    let json = |args: &[&str]| -> Value {
        let outcome = run(args);
        serde_json::from_str(&outcome.stdout())
            .unwrap_or_else(|e| panic!("JSON ({e}):\n{}", outcome.shown()))
    };

    let health = json(&["health", "-i", &inventory, "-o", "json"]);
    let endpoints = health["endpoints"].as_array().unwrap();
    assert_eq!(endpoints.len(), 3);
    assert!(endpoints.iter().all(|e| e["healthy"] == true), "{health:#}");

    let status = json(&["status", "-i", &inventory, "-o", "json"]);
    let statuses: Vec<&Value> = status["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["status"])
        .collect();
    assert_eq!(statuses.len(), 3);
    let leaders: Vec<&Value> = statuses.iter().map(|s| &s["leader"]).collect();
    assert!(leaders.iter().all(|l| *l == leaders[0]), "{status:#}");
    assert_eq!(
        statuses
            .iter()
            .filter(|s| s["member_id"] == *leaders[0])
            .count(),
        1,
        "exactly one member leads: {status:#}"
    );
    assert!(statuses.iter().all(|s| s["db_size"].as_i64().unwrap() > 0));
    assert!(
        statuses
            .iter()
            .all(|s| s["db_size_in_use"].as_i64().unwrap() > 0)
    );

    let table = run(&["status", "-i", &inventory]).stdout();
    for column in ["ENDPOINT", "DB SIZE", "IN USE", "FRAG", "LEADER", "APPLIED"] {
        assert!(table.contains(column), "{table}");
    }
    assert!(table.contains("alarms: none"), "{table}");

    // Flags instead of an inventory, one endpoint: the other members are found from the list.
    let tls = bed.tls();
    let flagged = json(&[
        "status",
        "--endpoints",
        &bed.nodes()[0].client_url(),
        "--cacert",
        &tls.ca_cert.display().to_string(),
        "--cert",
        &tls.client_cert.display().to_string(),
        "--key",
        &tls.client_key.display().to_string(),
        "-o",
        "json",
    ]);
    let flagged = flagged["endpoints"].as_array().unwrap();
    assert_eq!(flagged.len(), 3, "{flagged:#?}");
    assert_eq!(
        flagged.iter().filter(|e| e["discovered"] == true).count(),
        2
    );

    // A learner that never started is listed, marked. etcd refuses membership changes until
    // the member asked has been connected to its peers for 5 s ("unhealthy cluster").
    wait_until("the learner to be added", Duration::from_secs(30), || {
        let added = bed
            .etcdctl(&[
                "member",
                "add",
                "ghost",
                "--learner",
                "--peer-urls=https://192.0.2.1:2380",
            ])
            .map_err(|e| e.to_string())?;
        if added.success() {
            Ok(())
        } else {
            Err(added.stderr)
        }
    })
    .unwrap();
    let members = json(&["members", "-i", &inventory, "-o", "json"]);
    let members = members["members"].as_array().unwrap();
    assert_eq!(members.len(), 4);
    let learners: Vec<&Value> = members.iter().filter(|m| m["is_learner"] == true).collect();
    assert_eq!(learners.len(), 1, "{members:#?}");
    assert_eq!(learners[0]["name"], "");
    assert_eq!(learners[0]["peer_urls"][0], "https://192.0.2.1:2380");
    let table = run(&["members", "-i", &inventory]).stdout();
    assert!(table.contains("LEARNER"), "{table}");
    assert!(table.contains("unstarted"), "{table}");
    for node in bed.nodes() {
        assert!(table.contains(node.name()), "{table}");
    }
}

#[test]
fn snapshot_save_verify_and_status_round_trip_with_metadata() {
    let Some(bed) = bed(BedConfig::new(3)) else {
        return;
    };
    let (work, inventory) = work(&bed);
    bed.seed(50, 1000).unwrap();
    let backups = work.path().join("backups");
    let path = backups.join("etcd.db");
    let path_text = path.display().to_string();
    let saved = Etcdrill::new(work.path())
        .args([
            "snapshot", "save", &path_text, "-i", &inventory, "-o", "json",
        ])
        .run()
        .expect_code(0);
    let printed: Value = serde_json::from_str(&saved.stdout()).unwrap();

    // The metadata file, beside the snapshot, agrees with the file.
    let meta_path = backups.join("etcd.db.meta.json");
    let meta: Value = serde_json::from_str(&std::fs::read_to_string(&meta_path).unwrap()).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let trailer: String = bytes[bytes.len() - 32..]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(meta["format"], "etcdrill-snapshot-meta");
    assert_eq!(meta["version"], 1);
    assert_eq!(meta["size"].as_u64().unwrap(), bytes.len() as u64);
    assert_eq!(meta["sha256"], trailer);
    assert_eq!(meta["cluster"], format!("bed-{}", bed.id()));
    let names: Vec<&str> = bed.nodes().iter().map(|n| n.name()).collect();
    assert!(
        names.contains(&meta["member"].as_str().unwrap()),
        "{meta:#}"
    );
    // The seed is one transaction: revision 2.
    assert!(meta["revision"].as_i64().unwrap() >= 2, "{meta:#}");
    assert!(meta["etcd_version"].as_str().unwrap().starts_with("3."));
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(meta["written_on"], host.trim());
    assert_eq!(printed["sha256"], meta["sha256"]);
    assert!(humantime::parse_rfc3339(meta["time"].as_str().unwrap()).is_ok());

    let verified = Etcdrill::new(work.path())
        .args(["snapshot", "verify", &path_text])
        .run()
        .expect_code(0);
    assert!(
        verified.stdout().starts_with("ok: "),
        "{}",
        verified.shown()
    );
    assert!(
        verified.stdout().contains("matches its metadata"),
        "{}",
        verified.shown()
    );

    let status = Etcdrill::new(work.path())
        .args(["snapshot", "status", &path_text, "-o", "json"])
        .run()
        .expect_code(0);
    let status: Value = serde_json::from_str(&status.stdout()).unwrap();
    assert!(status["revision"].as_i64().unwrap() >= meta["revision"].as_i64().unwrap());
    assert!(status["total_keys"].as_u64().unwrap() >= 50);
    // status leaves the trailer to verify, as etcdutl does.
    assert_eq!(status["sha256_trailer"]["state"], "unchecked");
    let table = Etcdrill::new(work.path())
        .args(["snapshot", "status", &path_text])
        .run()
        .expect_code(0)
        .stdout();
    assert!(table.starts_with("HASH"), "{table}");
    assert!(table.contains("TOTAL KEYS"), "{table}");

    // diagnose counts it as a fresh, off-host backup.
    let (_, json) = diagnose(
        work.path(),
        &inventory,
        &["--backups", &backups.display().to_string()],
    );
    for code in [
        "no-backup",
        "backup-old",
        "backups-on-etcd-hosts",
        "backups-not-checked",
    ] {
        assert!(finding(&json, code).is_none(), "{code}: {:?}", codes(&json));
    }

    // A damaged copy fails verification, and the metadata catches a swapped file.
    let mut damaged = bytes.clone();
    damaged[4096 + 100] ^= 0xff;
    let damaged_path = backups.join("damaged.db");
    std::fs::write(&damaged_path, &damaged).unwrap();
    let failed = Etcdrill::new(work.path())
        .args(["snapshot", "verify", &damaged_path.display().to_string()])
        .run()
        .expect_code(1);
    assert!(failed.stderr().contains("corrupt"), "{}", failed.shown());
    std::fs::write(&path, &bytes[..bytes.len() - 512]).unwrap();
    let (_, json) = diagnose(
        work.path(),
        &inventory,
        &["--backups", &backups.display().to_string()],
    );
    assert!(finding(&json, "no-backup").is_some(), "{:?}", codes(&json));
}

/// What a new user sees first: standard error of a read command that could not connect, with the
/// endpoint redacted.
fn connection_error(bed: &Bed, args: &[&str]) -> String {
    let work = tempfile::tempdir().unwrap();
    let outcome = Etcdrill::new(work.path())
        .args(args)
        .env("ETCDCTL_CERT", "")
        .env("ETCDCTL_KEY", "")
        .env("ETCDCTL_CACERT", "")
        .run()
        .expect_code(1);
    let url = &bed.client_urls()[0];
    outcome
        .stderr()
        .replace(url, "https://[ENDPOINT]")
        .replace(&url.replace("https://", "http://"), "http://[ENDPOINT]")
}

#[test]
fn connection_mistakes_a_new_user_makes_are_explained() {
    let Some(bed) = bed(BedConfig::new(1)) else {
        return;
    };
    let url = bed.client_urls()[0].clone();
    let ca = bed.tls().ca_cert.display().to_string();
    // No client certificate for a member with mutual TLS ("no endpoint answered" before).
    for command in ["health", "members", "alarm"] {
        let mut args = vec![command];
        if command == "alarm" {
            args.push("list");
        }
        args.extend(["--endpoints", &url, "--cacert", &ca]);
        let error = connection_error(&bed, &args);
        assert!(
            error.contains("no client certificate was given"),
            "{command}: {error}"
        );
        if command == "health" {
            insta::assert_snapshot!("no_client_certificate", error);
        }
    }
    // http:// against a member that serves TLS ("broken pipe" before).
    let plain = url.replace("https://", "http://");
    let error = connection_error(&bed, &["status", "--endpoints", &plain]);
    insta::assert_snapshot!("http_against_tls", error);
    // With the certificate, the same endpoint answers.
    let client = bed.tls();
    Etcdrill::new(Path::new("."))
        .args(["health", "--endpoints", &url, "--cacert", &ca])
        .args(["--cert", &client.client_cert.display().to_string()])
        .args(["--key", &client.client_key.display().to_string()])
        .run()
        .expect_code(0);
}

/// After a restore, copies taken before it carry the old cluster ID: `diagnose --backups` counts
/// them as this cluster's (the restore's journal links the IDs), says so, and is not urgent.
#[test]
fn backups_from_before_a_restore_count_as_the_clusters_own() {
    let Some(bed) = bed(BedConfig::new(3)) else {
        return;
    };
    let (work, inventory) = work(&bed);
    bed.seed(20, 100).unwrap();
    let backups = work.path().join("backups");
    let path = backups.join("before-restore.db");
    Etcdrill::new(work.path())
        .args([
            "snapshot",
            "save",
            &path.display().to_string(),
            "-i",
            &inventory,
        ])
        .run()
        .expect_code(0);
    // etcd 3.5.1's etcdutl has no --bump-revision.
    Etcdrill::new(work.path())
        .args([
            "run".as_ref(),
            support::stock_runbook("restore-3-node").as_os_str(),
            "-i".as_ref(),
            inventory.as_ref(),
            "--yes".as_ref(),
            "-p".as_ref(),
            format!("snapshot={}", path.display()).as_ref(),
            "-p".as_ref(),
            "bump_revision=0".as_ref(),
            "-p".as_ref(),
            "mark_compacted=false".as_ref(),
        ])
        .run()
        .expect_code(0);
    bed.wait_healthy(Duration::from_secs(30)).unwrap();
    let backups_arg = backups.display().to_string();
    let (_, json) = diagnose(work.path(), &inventory, &["--backups", &backups_arg]);
    assert!(finding(&json, "no-backup").is_none(), "{json:#}");
    let earlier = finding(&json, "backups-of-earlier-incarnation")
        .unwrap_or_else(|| panic!("{:?}", codes(&json)));
    assert_eq!(earlier["severity"], "info", "{earlier:#}");
    let detail = earlier["detail"].as_str().unwrap();
    assert!(
        detail.contains("before-restore.db") && detail.contains("restored by run"),
        "{detail}"
    );
    // Without the runs that link the IDs, the copy is another cluster's, and the finding says
    // so rather than that there is no metadata file.
    let nowhere = work.path().join("no-runs-here");
    let (_, json) = diagnose(
        work.path(),
        &inventory,
        &[
            "--backups",
            &backups_arg,
            "--runs",
            &nowhere.display().to_string(),
        ],
    );
    let urgent = finding(&json, "no-backup").unwrap_or_else(|| panic!("{:?}", codes(&json)));
    let detail = urgent["detail"].as_str().unwrap();
    assert!(
        detail.contains("copy(ies) of other clusters") && !detail.contains("no snapshot metadata"),
        "{detail}"
    );
}
