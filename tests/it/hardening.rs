//! Hardening against misuse and hostile input, through the real `etcdrill` binary on local nodes
//! (no test bed needed): one owner per run, secrets that never leak, bounded inputs, escaped
//! output and values that cannot become options.

use std::path::{Path, PathBuf};
use std::time::Duration;

use etcdrill::journal::Event;

use crate::support;
use crate::support::{Etcdrill, journal, only_run, wait_for_record, write};

/// An inventory of one node reached without SSH, on this machine.
fn local_inventory(dir: &Path) -> PathBuf {
    write(
        dir,
        "inventory.yaml",
        "name: local\ndefaults:\n  transport: local\n  etcd:\n    management: {external: {start: 'true', stop: 'true'}}\nnodes:\n  - {name: n1, address: 127.0.0.1}\n",
    )
}

/// Runs `etcdrill` with `args` in `dir`.
fn etcdrill<S: AsRef<std::ffi::OsStr>>(
    dir: &Path,
    args: impl IntoIterator<Item = S>,
) -> support::Outcome {
    Etcdrill::new(dir).args(args).run()
}

#[test]
fn a_run_has_one_owner_at_a_time() {
    let work = tempfile::tempdir().unwrap();
    let gate = work.path().join("gate");
    let inventory = local_inventory(work.path());
    let runbook = write(
        work.path(),
        "runbook.yaml",
        &format!(
            "name: held\nsummary: a step that waits for the test\nsteps:\n  - id: wait\n    title: Wait for the gate\n    on: each\n    action: shell\n    idempotent: true\n    with:\n      run: \"while [ ! -e '{}' ]; do sleep 0.05; done; echo once >> '{}'\"\n  - {{id: after, title: After, on: each, action: shell, needs: [wait], with: {{run: 'true'}}}}\n",
            gate.display(),
            work.path().join("trail").display()
        ),
    );
    let mut child = Etcdrill::new(work.path())
        .args([
            "run",
            runbook.to_str().unwrap(),
            "-i",
            inventory.to_str().unwrap(),
            "--yes",
            "--work-dir",
            ".",
        ])
        .spawn();
    wait_for_record(
        work.path(),
        Duration::from_secs(60),
        |r| matches!(&r.event, Event::StepStarted { step, .. } if step == "wait@n1"),
    )
    .unwrap();
    let run = only_run(work.path());
    let holder = format!("pid {} on host", child.id());
    for command in ["resume", "rollback"] {
        let refused = etcdrill(work.path(), [command, run.to_str().unwrap()]).expect_code(1);
        assert!(
            refused.stderr().contains("is in use by") && refused.stderr().contains(&holder),
            "{command}: {}",
            refused.shown()
        );
    }
    std::fs::write(&gate, "").unwrap();
    assert!(child.wait().unwrap().success());
    let journal = journal(&run);
    let seqs: Vec<u64> = journal.records.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
    let finished = journal
        .records
        .iter()
        .filter(|r| matches!(r.event, Event::RunFinished { .. }))
        .count();
    assert_eq!(finished, 1, "{:#?}", journal.records);
    assert_eq!(
        std::fs::read_to_string(work.path().join("trail")).unwrap(),
        "once\n",
        "the step ran twice"
    );
}

/// A runbook whose steps print secrets the ways tools do: whole, line by line, trimmed; pass a
/// secret-bearing output to a later step; and fail with a secret in the error.
fn secrets_runbook(dir: &Path) -> PathBuf {
    let seen = dir.join("seen");
    write(
        dir,
        "runbook.yaml",
        &format!(
            r#"
name: secrets
summary: secrets printed every way a tool prints them
params:
  token: {{type: string, secret: true}}
  padded: {{type: string, secret: true}}
  single: {{type: string, secret: true}}
steps:
  - id: print
    title: Print the secrets
    on: each
    action: shell
    with:
      run: |
        echo "trimmed=$(echo {{{{params.padded}}}})"
        echo "whole={{{{params.token}}}}" >&2
        printf '%s\n' {{{{params.token}}}}
        printf '%s\n' {{{{params.single}}}}
    outputs: {{said: last_line}}
  - id: pass
    title: Use the output
    on: each
    action: shell
    needs: [print]
    with:
      run: printf '%s' {{{{steps.print.outputs.said}}}} > '{seen}'
  - id: fail
    title: Fail with the secret
    on: each
    action: shell
    needs: [pass]
    with:
      run: |
        printf '%s\n' {{{{params.token}}}} >&2
        exit 3
"#,
            seen = seen.display()
        ),
    )
}

/// Every file a run leaves, and what it printed, with names.
fn everything_shown(
    run: &Path,
    outcome: &support::Outcome,
    metrics: &Path,
) -> Vec<(String, String)> {
    let mut shown = vec![
        ("stdout".to_string(), outcome.stdout()),
        ("stderr".to_string(), outcome.stderr()),
        (
            "metrics textfile".to_string(),
            std::fs::read_to_string(metrics).unwrap_or_default(),
        ),
    ];
    for name in [
        "journal.jsonl",
        "run.json",
        "plan.json",
        "report.md",
        "report.html",
        "report.json",
        "report.junit.xml",
    ] {
        let text = std::fs::read_to_string(run.join(name))
            .unwrap_or_else(|e| panic!("{name} is written: {e}"));
        shown.push((name.to_string(), text));
    }
    shown
}

#[test]
fn multi_line_and_padded_secrets_reach_no_output_and_steps_get_real_values() {
    for output in ["human", "json"] {
        let work = tempfile::tempdir().unwrap();
        let inventory = local_inventory(work.path());
        let runbook = secrets_runbook(work.path());
        let metrics = work.path().join("etcdrill.prom");
        let outcome = etcdrill(
            work.path(),
            [
                "run",
                runbook.to_str().unwrap(),
                "-i",
                inventory.to_str().unwrap(),
                "-p",
                "token=alpha-first\nbravo-second",
                "-p",
                "padded=  charlie-pad  ",
                "-p",
                "single=delta-single",
                "-o",
                output,
                "--metrics-textfile",
                metrics.to_str().unwrap(),
                "--yes",
                "--work-dir",
                ".",
            ],
        )
        .expect_code(1);
        let run = only_run(work.path());
        assert_eq!(
            std::fs::read_to_string(work.path().join("seen")).unwrap(),
            "delta-single",
            "a later step got the masked value, not the real one"
        );
        for (what, text) in everything_shown(&run, &outcome, &metrics) {
            for secret in ["alpha-first", "bravo-second", "charlie-pad", "delta-single"] {
                assert!(
                    !text.contains(secret),
                    "-o {output}: `{secret}` reached the {what}:\n{text}"
                );
            }
        }
        let journal = std::fs::read_to_string(run.join("journal.jsonl")).unwrap();
        assert!(journal.contains("********"), "{journal}");
    }
}

#[test]
fn secrets_come_from_a_file_stdin_or_the_environment_and_run_json_cannot_be_guessed_from() {
    let work = tempfile::tempdir().unwrap();
    let inventory = local_inventory(work.path());
    let seen = work.path().join("seen");
    let runbook = write(
        work.path(),
        "runbook.yaml",
        &format!(
            "name: from-file\nsummary: s\nparams:\n  token: {{type: string, secret: true}}\n  other: {{type: string, secret: true}}\nsteps:\n  - {{id: a, title: A, on: each, action: shell, with: {{run: \"printf '%s|%s' {{{{params.token}}}} {{{{params.other}}}} > '{}'\"}}}}\n",
            seen.display()
        ),
    );
    // A secret file ends with a newline, as editors write it; the newline is not the secret's.
    let file = write(work.path(), "token", "hunter2\n");
    let outcome = Etcdrill::new(work.path())
        .args([
            "run",
            runbook.to_str().unwrap(),
            "-i",
            inventory.to_str().unwrap(),
            "-p",
            &format!("token=@{}", file.display()),
            "--yes",
            "--work-dir",
            ".",
        ])
        .env("ETCDRILL_PARAM_OTHER", "from-env")
        .run();
    assert_eq!(outcome.code(), Some(0), "{}", outcome.shown());
    assert_eq!(std::fs::read_to_string(&seen).unwrap(), "hunter2|from-env");

    // run.json holds nothing that checks a guess offline: no unkeyed digest of the secret.
    let run = only_run(work.path());
    let record = std::fs::read_to_string(run.join("run.json")).unwrap();
    let id = run.file_name().unwrap().to_str().unwrap();
    let old_digest = sha256(&format!("{id}\0hunter2\n"));
    assert!(!record.contains(&old_digest), "{record}");
    assert!(!record.contains("hunter2"), "{record}");
    assert!(!record.contains("from-env"), "{record}");

    // Resume still tells a wrong secret from the right one.
    let wrong = Etcdrill::new(work.path())
        .args(["rollback", run.to_str().unwrap(), "-p", "token=hunter3"])
        .env("ETCDRILL_PARAM_OTHER", "from-env")
        .run()
        .expect_code(1);
    assert!(
        wrong.stderr().contains("differs from the one run"),
        "{}",
        wrong.shown()
    );
}

fn sha256(text: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "input", text);
    let out = std::process::Command::new("sha256sum")
        .arg(file)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

#[test]
fn fifos_devices_and_oversized_files_are_refused_before_reading() {
    let work = tempfile::tempdir().unwrap();
    let fifo = work.path().join("runbook.yaml");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    // Nobody writes to the FIFO: reading it would block for ever; the refusal comes first.
    let refused = etcdrill(work.path(), ["validate", fifo.to_str().unwrap()]).expect_code(1);
    assert!(
        refused.stderr().contains("not a regular file"),
        "{}",
        refused.shown()
    );
    let refused = etcdrill(work.path(), ["validate", "/dev/zero"]).expect_code(1);
    assert!(
        refused.stderr().contains("not a regular file"),
        "{}",
        refused.shown()
    );

    let big = work.path().join("big.yaml");
    let file = std::fs::File::create(&big).unwrap();
    file.set_len(64 << 20).unwrap();
    let refused = etcdrill(work.path(), ["validate", big.to_str().unwrap()]).expect_code(1);
    assert!(
        refused.stderr().contains("larger than"),
        "{}",
        refused.shown()
    );
}

#[test]
fn deep_nesting_is_refused_and_long_lines_are_cut_in_messages() {
    let work = tempfile::tempdir().unwrap();
    let deep = write(work.path(), "deep.yaml", &"{".repeat(64 * 1024));
    let refused = etcdrill(work.path(), ["validate", deep.to_str().unwrap()]).expect_code(1);
    assert!(
        refused.stderr().len() < 4096,
        "{} bytes of stderr",
        refused.stderr().len()
    );
    assert!(
        refused.stderr().contains("nested deeper than"),
        "{}",
        refused.shown()
    );
}

#[test]
fn control_and_bidirectional_characters_are_shown_escaped() {
    let work = tempfile::tempdir().unwrap();
    let inventory = local_inventory(work.path());
    let hostile = "\u{1b}]0;owned\u{7}\u{1b}[2J";
    let runbook = write(
        work.path(),
        "runbook.yaml",
        "name: bidi\nsummary: s\nparams:\n  n: {type: int, default: 1}\n  flag: {type: bool, default: false}\nsteps:\n  - {id: a, title: \"delete \u{202e}gol.tset\u{2066}\u{200b}\", on: each, action: shell, with: {run: 'true'}}\n",
    );
    let mut failures = vec![];
    for args in [
        vec!["-p".to_string(), format!("{hostile}=1")],
        vec!["-p".to_string(), format!("n={hostile}")],
        vec!["-p".to_string(), format!("flag={hostile}")],
    ] {
        let mut all = vec![
            "plan".to_string(),
            runbook.to_str().unwrap().to_string(),
            "-i".into(),
            inventory.to_str().unwrap().into(),
        ];
        all.extend(args);
        failures.push(etcdrill(work.path(), &all).expect_code(1));
    }
    // YAML refuses raw control characters; its double-quoted escapes (`\e`, `\a`) write them.
    let yaml_hostile = r"\e]0;owned\a\e[2J";
    for (name, text) in [
        (
            "field",
            format!("name: x\nsummary: s\n\"{yaml_hostile}\": 1\nsteps: []\n"),
        ),
        (
            "action",
            format!(
                "name: x\nsummary: s\nsteps:\n  - {{id: a, title: A, on: each, action: \"{yaml_hostile}\"}}\n"
            ),
        ),
        (
            "node",
            format!(
                "name: x\nsummary: s\nsteps:\n  - {{id: a, title: A, on: \"node:{yaml_hostile}\", action: shell, with: {{run: 'true'}}}}\n"
            ),
        ),
    ] {
        let file = write(work.path(), &format!("{name}.yaml"), &text);
        failures.push(
            etcdrill(
                work.path(),
                [
                    "plan",
                    file.to_str().unwrap(),
                    "-i",
                    inventory.to_str().unwrap(),
                ],
            )
            .expect_code(1),
        );
    }
    failures.push(
        etcdrill(
            work.path(),
            ["validate", &format!("/nonexistent/{hostile}.yaml")],
        )
        .expect_code(1),
    );
    for outcome in &failures {
        let text = outcome.stderr();
        assert!(
            !text.contains('\u{1b}') && !text.contains('\u{7}'),
            "raw control characters: {text:?}"
        );
        assert!(text.contains("\\u{1b}"), "{text:?}");
    }
    for format in ["text", "markdown", "json", "dot", "mermaid"] {
        let shown = etcdrill(
            work.path(),
            [
                "plan",
                runbook.to_str().unwrap(),
                "-i",
                inventory.to_str().unwrap(),
                "--format",
                format,
            ],
        )
        .expect_code(0)
        .stdout();
        for hidden in ['\u{202e}', '\u{2066}', '\u{200b}'] {
            assert!(
                !shown.contains(hidden),
                "{format}: {hidden:?} shown raw: {shown}"
            );
        }
    }
}

#[test]
fn values_that_begin_with_a_dash_never_become_options() {
    let work = tempfile::tempdir().unwrap();
    let inventory = local_inventory(work.path());
    let restore = support::stock_runbook("restore-3-node");
    let refused = etcdrill(
        work.path(),
        [
            "plan",
            restore.to_str().unwrap(),
            "-i",
            inventory.to_str().unwrap(),
            "-p",
            "snapshot=/backups/s.db",
            "-p",
            "remote_snapshot=--skip-hash-check",
        ],
    )
    .expect_code(1);
    let text = refused.stderr();
    assert!(
        text.contains("begins with `-`") && text.contains("restore-3-node.yaml:"),
        "{}",
        refused.shown()
    );

    let dashed = write(
        work.path(),
        "dashed.yaml",
        "name: local\ndefaults:\n  transport: local\n  etcd:\n    management: {external: {start: 'true', stop: 'true'}}\nnodes:\n  - {name: n1, address: 127.0.0.1, etcd: {data_dir: -rf}}\n",
    );
    let refused = etcdrill(
        work.path(),
        [
            "plan",
            restore.to_str().unwrap(),
            "-i",
            dashed.to_str().unwrap(),
            "-p",
            "snapshot=/backups/s.db",
        ],
    )
    .expect_code(1);
    let text = refused.stderr();
    assert!(
        text.contains("begins with `-`") && text.contains("dashed.yaml:7:"),
        "{}",
        refused.shown()
    );
}

#[test]
fn resume_works_from_another_directory() {
    let work = tempfile::tempdir().unwrap();
    let here = work.path().join("here");
    std::fs::create_dir(&here).unwrap();
    local_inventory(&here);
    write(
        &here,
        "runbook.yaml",
        "name: relative\nsummary: s\nsteps:\n  - {id: a, title: A, on: each, action: shell, with: {run: 'exit 1'}}\n",
    );
    Etcdrill::new(&here)
        .args([
            "run",
            "runbook.yaml",
            "-i",
            "inventory.yaml",
            "--on-failure",
            "stop",
            "--yes",
        ])
        .run()
        .expect_code(1);
    let run = only_run(&here.join(".etcdrill"));
    let record = std::fs::read_to_string(run.join("run.json")).unwrap();
    let elsewhere = etcdrill(work.path(), ["rollback", run.to_str().unwrap()]);
    let ends = journal(&run)
        .records
        .iter()
        .filter(|r| matches!(r.event, Event::RunFinished { .. }))
        .count();
    assert_eq!(
        ends,
        2,
        "rollback did not run:\n{}\n{record}",
        elsewhere.shown()
    );
}

#[test]
fn parameter_errors_name_the_parameter_and_never_echo_a_secret_or_the_command_line() {
    let work = tempfile::tempdir().unwrap();
    let inventory = local_inventory(work.path());
    let runbook = write(
        work.path(),
        "runbook.yaml",
        "name: params\nsummary: s\nparams:\n  token: {type: string, secret: true}\n  pin: {type: int, secret: true, max: 9999, default: 1}\n  n: {type: int, default: 1}\nsteps:\n  - {id: a, title: A, on: each, action: shell, with: {run: 'true'}}\n",
    );
    // Each case: the `-p` arguments, and what the error must say.
    let cases: [(&[&str], &str); 8] = [
        (&["token=hunter2", "n"], "parameter `n` has no value"),
        (
            &["token=hunter2", "hunter2"],
            "`-p` argument 2 of 2 has no `=`",
        ),
        (
            &["token=hunter2", "=hunter2"],
            "`-p` argument 2 of 2 has no name",
        ),
        (
            &["token=hunter2", "n=4x"],
            "parameter `n`: `4x` is not a whole number",
        ),
        (
            &["tokn=hunter2"],
            "runbook `params` has no parameter `tokn`",
        ),
        (
            &["token=hunter2", "pin=hunter2"],
            "parameter `pin`: the secret value is not a whole number",
        ),
        (
            &["token=hunter2", "pin=20000"],
            "parameter `pin`: the secret value is out of range",
        ),
        (
            &["token=hunter2", "token=hunter2"],
            "parameter `token` is given twice",
        ),
    ];
    for (params, message) in cases {
        let mut args = vec![
            "plan".to_string(),
            runbook.to_str().unwrap().into(),
            "-i".into(),
            inventory.to_str().unwrap().into(),
        ];
        for param in params {
            args.extend(["-p".to_string(), param.to_string()]);
        }
        let failed = etcdrill(work.path(), &args).expect_code(1);
        let stderr = failed.stderr();
        assert!(stderr.contains(message), "{params:?}: {}", failed.shown());
        assert!(
            !stderr.contains("hunter2") && !stderr.contains("20000"),
            "{params:?}: a secret reached the error:\n{stderr}"
        );
    }
}

/// A runbook whose first step prints a secret as its output (declared read-only or not), and
/// whose last step writes that output to `seen`, with a step between them to crash after.
fn masked_output_runbook(dir: &Path, probe: bool) -> PathBuf {
    let seen = dir.join("seen");
    write(
        dir,
        "runbook.yaml",
        &format!(
            r#"
name: masked-output
summary: an output that holds a secret, read after a resume
params:
  token: {{type: string, secret: true}}
steps:
  - id: print
    title: Print the secret
    on: each
    action: shell
    probe: {probe}
    with:
      run: printf 'token=%s\n' {{{{params.token}}}}
    outputs: {{said: last_line}}
  - {{id: between, title: Between, on: each, action: shell, idempotent: true, needs: [print], with: {{run: 'true'}}}}
  - id: pass
    title: Use the output
    on: each
    action: shell
    needs: [between]
    with:
      run: printf '%s' {{{{steps.print.outputs.said}}}} > '{seen}'
"#,
            seen = seen.display()
        ),
    )
}

#[test]
fn outputs_holding_a_secret_reach_later_steps_real_after_a_resume() {
    for probe in [true, false] {
        let work = tempfile::tempdir().unwrap();
        let inventory = local_inventory(work.path());
        let runbook = masked_output_runbook(work.path(), probe);
        Etcdrill::new(work.path())
            .args([
                "run",
                runbook.to_str().unwrap(),
                "-i",
                inventory.to_str().unwrap(),
                "-p",
                "token=hunter2",
                "--yes",
                "--work-dir",
                ".",
            ])
            .env(etcdrill::journal::CRASH_AFTER_RECORD, "finished:between@n1")
            .run();
        let run = only_run(work.path());
        let recorded = support::step_outputs(&journal(&run), "print@n1");
        assert_eq!(recorded["said"], "token=********", "probe: {probe}");
        let resumed = Etcdrill::new(work.path())
            .args(["resume", run.to_str().unwrap(), "--yes"])
            .env("ETCDRILL_PARAM_TOKEN", "hunter2")
            .run();
        let seen = std::fs::read_to_string(work.path().join("seen")).ok();
        if probe {
            // The read-only step ran again, and the later step got the real value.
            assert_eq!(resumed.code(), Some(0), "{}", resumed.shown());
            assert_eq!(seen.as_deref(), Some("token=hunter2"));
            let prints = journal(&run)
                .records
                .iter()
                .filter(
                    |r| matches!(&r.event, Event::StepStarted { step, .. } if step == "print@n1"),
                )
                .count();
            assert_eq!(prints, 2, "the probe ran again");
        } else {
            // A step that changes things is not run again: resume refuses before anything runs.
            let refused = resumed.expect_code(1);
            let stderr = refused.stderr();
            assert!(
                stderr.contains("step `pass@n1` needs output `said` of step `print@n1`")
                    && stderr.contains("not read-only")
                    && stderr.contains("etcdrill rollback"),
                "{}",
                refused.shown()
            );
            assert_eq!(seen, None, "a step got the masked value");
        }
        for (what, text) in everything_shown_after_resume(&run) {
            assert!(
                !text.contains("hunter2"),
                "the secret reached {what}:\n{text}"
            );
        }
    }
}

/// The run's files after a resume.
fn everything_shown_after_resume(run: &Path) -> Vec<(String, String)> {
    ["journal.jsonl", "run.json", "report.md", "report.json"]
        .into_iter()
        .filter_map(|name| {
            let text = std::fs::read_to_string(run.join(name)).ok()?;
            Some((name.to_string(), text))
        })
        .collect()
}

#[test]
fn progress_lines_and_reports_show_control_and_bidirectional_characters_escaped() {
    let work = tempfile::tempdir().unwrap();
    let inventory = local_inventory(work.path());
    // A title that reads reversed, and a step whose output and failure drive a terminal.
    let runbook = write(
        work.path(),
        "runbook.yaml",
        "name: hidden\nsummary: s\nsteps:\n  - {id: a, title: \"delete \u{202e}gol.tset\u{2066}\u{200b}\", on: each, action: shell, with: {run: \"printf 'x\\\\033]0;owned\\\\007\\\\342\\\\200\\\\256y\\\\n'; printf 'e\\\\033[2J\\\\n' >&2; exit 3\"}}\n",
    );
    for output in ["human", "json"] {
        let outcome = etcdrill(
            work.path(),
            [
                "run",
                runbook.to_str().unwrap(),
                "-i",
                inventory.to_str().unwrap(),
                "-o",
                output,
                "--verbose",
                "--yes",
                "--work-dir",
                output,
            ],
        )
        .expect_code(1);
        let run = only_run(&work.path().join(output));
        let mut shown = vec![
            ("stdout".to_string(), outcome.stdout()),
            ("stderr".to_string(), outcome.stderr()),
        ];
        for name in [
            "report.html",
            "report.junit.xml",
            "report.md",
            "report.json",
        ] {
            shown.push((
                name.into(),
                std::fs::read_to_string(run.join(name)).unwrap(),
            ));
        }
        for (what, text) in shown {
            for hidden in ['\u{1b}', '\u{7}', '\u{202e}', '\u{2066}', '\u{200b}'] {
                assert!(
                    !text.contains(hidden),
                    "-o {output}: {what} shows {hidden:?} raw:\n{text}"
                );
            }
        }
        let printed = outcome.stdout() + &outcome.stderr();
        assert!(
            printed.contains("owned") && (output == "json" || printed.contains("gol.tset")),
            "-o {output}: what was escaped is still shown:\n{}",
            outcome.shown()
        );
    }
}

#[test]
fn an_undo_that_needs_an_output_holding_a_secret_never_runs_with_the_masked_value() {
    let work = tempfile::tempdir().unwrap();
    let inventory = local_inventory(work.path());
    let undone = work.path().join("undone");
    let runbook = write(
        work.path(),
        "runbook.yaml",
        &format!(
            r#"
name: masked-undo
summary: an undo that reads an output holding a secret
params:
  token: {{type: string, secret: true}}
steps:
  - id: print
    title: Print the secret
    on: each
    action: shell
    with:
      run: printf 'token=%s\n' {{{{params.token}}}}
    outputs: {{said: last_line}}
  - id: use
    title: Use it
    on: each
    action: shell
    needs: [print]
    with: {{run: 'true'}}
    rollback:
      action: shell
      with: {{run: "printf '%s' {{{{steps.print.outputs.said}}}} > '{undone}'"}}
  - {{id: fail, title: Fail, on: each, action: shell, needs: [use], with: {{run: 'exit 1'}}}}
"#,
            undone = undone.display()
        ),
    );
    Etcdrill::new(work.path())
        .args([
            "run",
            runbook.to_str().unwrap(),
            "-i",
            inventory.to_str().unwrap(),
            "--on-failure",
            "stop",
            "--yes",
            "--work-dir",
            ".",
        ])
        .env("ETCDRILL_PARAM_TOKEN", "hunter2")
        .run()
        .expect_code(1);
    let run = only_run(work.path());
    let rolled = Etcdrill::new(work.path())
        .args(["rollback", run.to_str().unwrap()])
        .env("ETCDRILL_PARAM_TOKEN", "hunter2")
        .run();
    let undo = std::fs::read_to_string(&undone).ok();
    assert_eq!(undo, None, "the undo ran with the masked value");
    let failed = journal(&run).records.iter().find_map(|r| match &r.event {
        Event::RollbackFinished {
            step,
            result: etcdrill::journal::StepResult::Failed { error },
            ..
        } if step == "use@n1" => Some(error.clone()),
        _ => None,
    });
    let error = failed.unwrap_or_else(|| panic!("no failed undo of use@n1:\n{}", rolled.shown()));
    assert!(
        error.contains("output `said` of step `print@n1`") && error.contains("a person"),
        "{error}"
    );
    assert_ne!(rolled.code(), Some(0), "{}", rolled.shown());
}
