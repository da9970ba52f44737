//! The deployment files under `deploy/` run the stock backup runbook with arguments etcdrill
//! accepts: the CronJob's and the systemd unit's command lines are extracted and planned (with
//! the CronJob's own inventory), so a renamed parameter or flag breaks this test, not a night's
//! backup. Needs no root.

use std::path::Path;

use crate::support::{Etcdrill, repo, write};

/// `args` with the deployed runbook and inventory paths replaced by the repository's runbook and
/// `inventory`, and the flags that only matter for a real run (`run` becomes `plan`) dropped.
fn as_plan(args: &[String], inventory: &Path) -> Vec<String> {
    let mut plan = Vec::new();
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        match arg.as_str() {
            "run" => plan.push("plan".to_string()),
            "--yes" => {}
            "--on-failure" | "--output" | "--work-dir" | "--metrics-textfile" => {
                let value = iter.next().expect("the flag has a value");
                // The flags exist; `run --help` lists them.
                assert!(!value.is_empty(), "{arg} has a value");
            }
            "-i" => {
                iter.next();
                plan.push("-i".into());
                plan.push(inventory.display().to_string());
            }
            path if path.ends_with("runbooks/backup.yaml") => {
                plan.push(repo().join("runbooks/backup.yaml").display().to_string())
            }
            other => plan.push(other.to_string()),
        }
    }
    plan
}

/// The deployed `run` arguments plan cleanly with `inventory`, and the flags only `run` uses
/// still exist.
fn plans(work: &Path, args: &[String], inventory: &Path) {
    let help = Etcdrill::new(&repo())
        .args(["run", "--help"])
        .run()
        .stdout();
    for flag in [
        "--metrics-textfile",
        "--on-failure",
        "--work-dir",
        "--output",
    ] {
        assert!(help.contains(flag), "`etcdrill run` has no {flag}:\n{help}");
    }
    Etcdrill::new(work)
        .args(as_plan(args, inventory))
        .run()
        .expect_code(0);
}

#[test]
fn the_cronjob_runs_the_backup_runbook_with_valid_arguments() {
    let text =
        std::fs::read_to_string(repo().join("deploy/kubernetes/etcdrill-backup.yaml")).unwrap();
    let mut inventory = None;
    let mut cronjob = None;
    for document in serde_yaml::Deserializer::from_str(&text) {
        let value = <serde_yaml::Value as serde::Deserialize>::deserialize(document).unwrap();
        match value["kind"].as_str() {
            Some("ConfigMap") => {
                inventory = value["data"]["inventory.yaml"].as_str().map(str::to_string)
            }
            Some("CronJob") => cronjob = Some(value),
            _ => {}
        }
    }
    let cronjob = cronjob.expect("a CronJob");
    let job = &cronjob["spec"]["jobTemplate"]["spec"];
    assert_eq!(job["backoffLimit"].as_u64(), Some(0), "no blind retries");
    assert_eq!(
        cronjob["spec"]["concurrencyPolicy"].as_str(),
        Some("Forbid")
    );
    let container = &job["template"]["spec"]["containers"][0];
    let args: Vec<String> = container["args"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    assert!(args.contains(&"--metrics-textfile".to_string()), "{args:?}");
    let work = tempfile::tempdir().unwrap();
    let inventory = write(
        work.path(),
        "inventory.yaml",
        &inventory.expect("an inventory"),
    );
    plans(work.path(), &args, &inventory);
}

#[test]
fn the_systemd_unit_runs_the_backup_runbook_with_valid_arguments() {
    let unit =
        std::fs::read_to_string(repo().join("deploy/systemd/etcdrill-backup.service")).unwrap();
    assert!(unit.contains("Type=oneshot"), "{unit}");
    let copy_to = unit
        .lines()
        .find_map(|l| l.strip_prefix("Environment=COPY_TO="))
        .expect("COPY_TO is set");
    // ExecStart= with its continuation lines joined, ${COPY_TO} expanded as systemd would.
    let exec = unit
        .split("ExecStart=")
        .nth(1)
        .expect("an ExecStart")
        .replace("\\\n", " ");
    let exec = exec.lines().next().unwrap().replace("${COPY_TO}", copy_to);
    let words = shlex::split(&exec).expect("the command line splits");
    assert!(words[0].ends_with("/etcdrill"), "{words:?}");
    let timer =
        std::fs::read_to_string(repo().join("deploy/systemd/etcdrill-backup.timer")).unwrap();
    assert!(
        timer.contains("Persistent=true") && timer.contains("OnCalendar="),
        "{timer}"
    );
    let work = tempfile::tempdir().unwrap();
    let inventory = repo().join("drills/inventories/kubeadm-3.yaml");
    plans(work.path(), &words[1..], &inventory);
}
