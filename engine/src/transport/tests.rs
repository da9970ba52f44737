//! Transport tests: the output plumbing as plain functions, the local transport everywhere, and the
//! SSH transport against a throwaway sshd on loopback (root only; see [`super::sshd_harness`]).

use std::path::Path;
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;

use super::capture::{LineSplitter, TagFilter, TailBuffer};
use super::copy::{part_name, part_path, pull_script, push_script};
use super::sshd_harness::{Sshd, note, on_path, ssh_node};
use super::supervise::prologue;
use super::*;
use crate::render::shell_quote;
use crate::transfer::TransferMeter;

fn request(script: &str) -> CommandRequest<'_> {
    CommandRequest {
        script,
        sudo: false,
        timeout: Duration::from_secs(30),
        grace: Duration::from_secs(2),
    }
}

/// Whether process `pid` has ended (gone, or a zombie nobody reaped yet).
fn ended(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

/// Polls until `pid` has ended; panics after `limit`.
async fn assert_ends(pid: i32, limit: Duration) {
    let deadline = Instant::now() + limit;
    while !ended(pid) {
        assert!(
            Instant::now() < deadline,
            "process {pid} still runs {limit:?} later"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The pid a script printed as `pid=N` on stdout.
fn printed_pid(stdout: &str) -> i32 {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("pid="))
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("no pid= line in {stdout:?}"))
}

/// 20 MB of deterministic, incompressible-looking bytes.
fn pseudo_random(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

// ---- output plumbing ----

#[test]
fn the_tail_of_long_output_is_kept_with_a_note() {
    let mut tail = TailBuffer::new(10);
    tail.push(b"0123456789");
    tail.push(b"abcdefghij");
    tail.push(b"KLMNOPQRST");
    tail.push(b"uvw");
    let text = tail.into_string("stdout");
    assert_eq!(
        text,
        "[etcdrill: the first 23 bytes of stdout were cut]\nNOPQRSTuvw"
    );
    let mut short = TailBuffer::new(10);
    short.push(b"ok\n");
    assert_eq!(short.into_string("stdout"), "ok\n");
    let mut huge = TailBuffer::new(4);
    huge.push(b"0123456789");
    assert_eq!(
        huge.into_string("stderr"),
        "[etcdrill: the first 6 bytes of stderr were cut]\n6789"
    );
}

#[test]
fn a_cut_through_a_character_skips_its_remains() {
    let mut tail = TailBuffer::new(4);
    tail.push("aé€".as_bytes()); // 1 + 2 + 3 bytes: the cut lands inside `é`.
    assert_eq!(
        tail.into_string("stdout"),
        "[etcdrill: the first 3 bytes of stdout were cut]\n€"
    );
}

#[test]
fn live_chunks_are_whole_lines() {
    let mut lines = LineSplitter::default();
    assert_eq!(lines.push(b"par"), None);
    assert_eq!(
        lines.push(b"tial\nsecond\nthi").as_deref(),
        Some("partial\nsecond\n")
    );
    assert_eq!(lines.finish().as_deref(), Some("thi"));
    assert_eq!(lines.finish(), None);
    // A very long line still comes out, cut at a character boundary.
    let mut long = LineSplitter::default();
    let mut bytes = vec![b'x'; LineSplitter::MAX_PENDING - 1];
    bytes.extend_from_slice("é".as_bytes());
    let chunk = long.push(&bytes[..bytes.len() - 1]).unwrap();
    assert_eq!(chunk.len(), LineSplitter::MAX_PENDING - 1);
    assert_eq!(long.push(&bytes[bytes.len() - 1..]), None);
    assert_eq!(long.finish().as_deref(), Some("é"));
}

#[test]
fn the_process_group_line_is_taken_out_of_stderr() {
    let pgid = GroupId::default();
    let mut tag = TagFilter::default();
    let mut passed = tag.push(b"motd noise\nETCDRILL-PG", &pgid);
    passed.extend(tag.push(b"ID 4242\nreal error\n", &pgid));
    passed.extend(tag.push(b"ETCDRILL-PGID 7\n", &pgid));
    passed.extend(tag.finish());
    assert_eq!(pgid.get(), Some(4242));
    assert_eq!(
        String::from_utf8(passed).unwrap(),
        "motd noise\nreal error\nETCDRILL-PGID 7\n"
    );
    // Nonsense or dangerous group ids are never recorded.
    for line in [
        "ETCDRILL-PGID 1\n",
        "ETCDRILL-PGID 0\n",
        "ETCDRILL-PGID -5\n",
        "ETCDRILL-PGID x\n",
    ] {
        let pgid = GroupId::default();
        let mut tag = TagFilter::default();
        assert!(tag.push(line.as_bytes(), &pgid).is_empty());
        assert_eq!(pgid.get(), None, "{line}");
    }
}

#[test]
fn copy_scripts_quote_every_path() {
    let path = "/var/backups/it's a $(reboot) `x`.db";
    for script in [push_script(path, "run-1.cp1", 12), pull_script(path)] {
        assert!(
            script.contains(&format!("f={}\n", shell_quote(path))),
            "{script}"
        );
        assert!(!script.contains(&format!("f={path}")), "{script}");
    }
    // The writer is part of the temporary name, reduced to file-name characters.
    assert!(
        push_script(path, "run 1/cp1", 12).contains(&format!(
            "p={}\n",
            shell_quote(&format!("{path}.run_1_cp1.part"))
        )),
        "the temporary name carries the writer"
    );
    assert_eq!(
        with_sudo(true, &["sh", "-s"]),
        ["sudo", "-n", "--", "sh", "-s"]
    );
    assert_eq!(with_sudo(false, &["sh", "-s"]), ["sh", "-s"]);
    assert_eq!(script_body("echo hi"), "{\necho hi\n} </dev/null\n");
}

#[test]
fn errors_read_as_sentences() {
    let error = TransportError::Unreachable {
        host: "n1 (root@10.0.0.1:22)".into(),
        detail: "connection refused".into(),
    };
    assert_eq!(
        error.to_string(),
        "cannot reach n1 (root@10.0.0.1:22): connection refused"
    );
}

#[test]
fn run_futures_can_be_spawned() {
    fn assert_send<T: Send>(_: &T) {}
    let transport = Transport::local();
    let request = request("true");
    let local = Path::new("/nonexistent");
    assert_send(&transport.run(&request, None));
    let meter = TransferMeter::default();
    assert_send(&transport.push(local, "/x", "w", false, Duration::from_secs(1), &meter));
    assert_send(&transport.pull("/x", local, "w", false, Duration::from_secs(1), &meter));
    assert_send(&Transport::connect(&ssh_node(1, local, local)));
}

// ---- local transport ----

#[tokio::test]
async fn local_runs_report_exit_codes_and_output() {
    let transport = Transport::local();
    let (sender, mut receiver) = mpsc::unbounded_channel();
    let output = transport
        .run(
            &request("echo out\necho err >&2\nprintf 'no newline'\nexit 3"),
            Some(&sender),
        )
        .await
        .unwrap();
    assert_eq!(output.exit_status, Some(3));
    assert_eq!(output.stdout, "out\nno newline");
    assert_eq!(output.stderr, "err\n");
    assert!(!output.timed_out && !output.success());
    drop(sender);
    let mut live = Vec::new();
    while let Some(chunk) = receiver.recv().await {
        live.push(chunk);
    }
    let stdout: String = live
        .iter()
        .filter_map(|c| match c {
            OutputChunk::Stdout(s) => Some(s.as_str()),
            OutputChunk::Stderr(_) => None,
        })
        .collect();
    assert_eq!(stdout, "out\nno newline");
    assert!(
        live.contains(&OutputChunk::Stderr("err\n".into())),
        "{live:?}"
    );
    assert_eq!(transport.describe(), "local");
}

#[tokio::test]
async fn local_exit_127_is_an_exit_code() {
    let output = Transport::local()
        .run(&request("no-such-command-etcdrill"), None)
        .await
        .unwrap();
    assert_eq!(output.exit_status, Some(127));
    assert!(output.stderr.contains("not found"), "{}", output.stderr);
}

#[tokio::test]
async fn a_script_cannot_read_itself_and_a_syntax_error_runs_nothing() {
    let transport = Transport::local();
    let output = transport
        .run(&request("cat\necho after"), None)
        .await
        .unwrap();
    assert_eq!(
        (output.exit_status, output.stdout.as_str()),
        (Some(0), "after\n")
    );
    let output = transport
        .run(&request("echo ran\nif then fi"), None)
        .await
        .unwrap();
    assert_eq!(output.stdout, "");
    assert_ne!(output.exit_status, Some(0));
}

#[tokio::test]
async fn local_output_is_capped_at_its_end() {
    let output = Transport::local()
        .run(
            &request("i=0; while [ $i -lt 1100 ]; do printf '%01023d\\n' $i; i=$((i+1)); done; echo last"),
            None,
        )
        .await
        .unwrap();
    assert!(
        output.stdout.starts_with("[etcdrill: the first "),
        "{}",
        &output.stdout[..80]
    );
    assert!(output.stdout.ends_with("0001099\nlast\n"));
    let body = output.stdout.split_once('\n').unwrap().1;
    assert_eq!(body.len(), OUTPUT_CAP_BYTES);
}

#[tokio::test]
async fn local_timeout_kills_the_whole_group() {
    let started = Instant::now();
    let output = Transport::local()
        .run(
            &CommandRequest {
                script: "sleep 987651 &\necho pid=$!\nwait",
                sudo: false,
                timeout: Duration::from_millis(300),
                grace: Duration::from_secs(5),
            },
            None,
        )
        .await
        .unwrap();
    assert!(output.timed_out);
    assert_eq!(output.exit_status, None);
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "TERM was enough"
    );
    assert_ends(printed_pid(&output.stdout), Duration::from_secs(5)).await;
}

#[tokio::test]
async fn local_timeout_escalates_to_kill() {
    let output = Transport::local()
        .run(
            &CommandRequest {
                script: "trap '' TERM\nsleep 987652 &\necho pid=$!\nwait",
                sudo: false,
                timeout: Duration::from_millis(200),
                grace: Duration::from_millis(300),
            },
            None,
        )
        .await
        .unwrap();
    assert!(output.timed_out);
    assert!(output.duration >= Duration::from_millis(500), "{output:?}");
    assert_ends(printed_pid(&output.stdout), Duration::from_secs(5)).await;
}

/// Reads what `reader` holds until `len` bytes came, driving `feed` meanwhile.
async fn read_while_feeding(
    reader: &mut tokio::io::DuplexStream,
    feed: &mut Pin<&mut impl Future<Output = ()>>,
    len: usize,
) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buffer = [0u8; 4096];
    while got.len() < len {
        tokio::select! {
            () = feed.as_mut() => panic!("the feed ended before its group line was read"),
            read = reader.read(&mut buffer) => got.extend_from_slice(&buffer[..read.unwrap()]),
        }
    }
    got
}

#[tokio::test]
async fn the_script_is_sent_only_after_its_group_line_was_read() {
    use futures_util::FutureExt;
    let (mut stdin, mut reader) = tokio::io::duplex(1 << 16);
    let pgid = GroupId::default();
    let stderr_ended = Notify::new();
    let feed = feed_after_group(&mut stdin, "BODY\n", &pgid, &stderr_ended);
    tokio::pin!(feed);
    let prologue = prologue();
    let got = read_while_feeding(&mut reader, &mut feed, prologue.len()).await;
    assert_eq!(String::from_utf8(got).unwrap(), prologue);
    // The feed is waiting for the group; nothing of the script is readable yet.
    assert!(feed.as_mut().now_or_never().is_none());
    let mut buffer = [0u8; 64];
    assert!(
        reader.read(&mut buffer).now_or_never().is_none(),
        "the script was sent before the group line"
    );
    pgid.set(4242);
    feed.await;
    let mut rest = String::new();
    reader.read_to_string(&mut rest).await.unwrap();
    assert_eq!(rest, "BODY\n");
}

#[tokio::test]
async fn every_waiter_learns_the_group() {
    let pgid = GroupId::default();
    let (first, second) = (pgid.wait(), pgid.wait());
    tokio::pin!(first, second);
    use futures_util::FutureExt;
    assert!(first.as_mut().now_or_never().is_none());
    assert!(second.as_mut().now_or_never().is_none());
    pgid.set(77);
    assert_eq!(tokio::join!(first, second), (77, 77));
    assert_eq!(pgid.wait().await, 77);
}

#[tokio::test]
async fn a_shell_that_never_reports_its_group_gets_no_script() {
    let (mut stdin, mut reader) = tokio::io::duplex(1 << 16);
    let pgid = GroupId::default();
    let stderr_ended = Notify::new();
    // The shell died (or never started) before printing its group: its stderr ended.
    stderr_ended.notify_one();
    feed_after_group(&mut stdin, "rm -rf /important\n", &pgid, &stderr_ended).await;
    drop(stdin);
    let mut sent = String::new();
    reader.read_to_string(&mut sent).await.unwrap();
    assert_eq!(sent, prologue());
}

#[tokio::test]
async fn a_dropped_local_run_stops_its_group() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pid");
    let script = format!(
        "sleep 987653 &\necho $! > {}\nwait",
        shell_quote(&pid_file.display().to_string())
    );
    let transport = Transport::local();
    let request = request(&script);
    let run = transport.run(&request, None);
    let pid = {
        tokio::pin!(run);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            tokio::select! {
                _ = &mut run => panic!("the script ended"),
                _ = tokio::time::sleep(Duration::from_millis(20)) => {}
            }
            if let Some(pid) = std::fs::read_to_string(&pid_file)
                .ok()
                .and_then(|p| p.trim().parse::<i32>().ok())
            {
                break pid;
            }
            assert!(Instant::now() < deadline, "no pid file");
        }
    };
    assert_ends(pid, Duration::from_secs(10)).await;
}

#[tokio::test]
async fn local_push_and_pull_round_trip_odd_paths() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("source.db");
    let data = pseudo_random(3 * 1024 * 1024 + 7);
    std::fs::write(&source, &data).unwrap();
    let remote = dir.path().join("it's a $(dir)/sub/snap `1`.db");
    let remote = remote.to_str().unwrap();
    let transport = Transport::local();
    let sent = TransferMeter::default();
    let pushed = transport
        .push(
            &source,
            remote,
            "run-1.cp1",
            false,
            Duration::from_secs(30),
            &sent,
        )
        .await
        .unwrap();
    assert_eq!(pushed, data.len() as u64);
    assert_eq!((sent.done(), sent.total()), (pushed, Some(pushed)));
    assert_eq!(std::fs::read(remote).unwrap(), data);
    assert!(!Path::new(&part_name(remote, "run-1.cp1")).exists());
    let back = dir.path().join("back/here/snap.db");
    let received = TransferMeter::default();
    let pulled = transport
        .pull(
            remote,
            &back,
            "run-1.cp1",
            false,
            Duration::from_secs(30),
            &received,
        )
        .await
        .unwrap();
    assert_eq!(pulled, data.len() as u64);
    assert_eq!((received.done(), received.total()), (pulled, Some(pulled)));
    assert_eq!(std::fs::read(&back).unwrap(), data);
    assert!(!part_path(&back, "run-1.cp1").exists());
}

/// Nodes that mount one backup dir (NFS) copy the same snapshot to the same path at once: each
/// writes its own temporary file, so every copy succeeds and the file is whole.
#[tokio::test]
async fn parallel_pushes_to_one_path_from_different_writers_all_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("source.db");
    let data = pseudo_random(8 * 1024 * 1024 + 32);
    std::fs::write(&source, &data).unwrap();
    let remote = dir.path().join("shared/etcdrill-restore.db");
    let remote = remote.to_str().unwrap();
    let transport = Transport::local();
    let meter = TransferMeter::default();
    let push = |writer| {
        transport.push(
            &source,
            remote,
            writer,
            false,
            Duration::from_secs(60),
            &meter,
        )
    };
    let (a, b, c) = tokio::join!(push("run-1.cp1"), push("run-1.cp2"), push("run-1.cp3"));
    for result in [a, b, c] {
        assert_eq!(result.unwrap(), data.len() as u64);
    }
    assert_eq!(std::fs::read(remote).unwrap(), data);
    let left: Vec<_> = std::fs::read_dir(dir.path().join("shared"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["etcdrill-restore.db"], "no temporary file is left");
}

#[tokio::test]
async fn pulling_a_missing_file_fails_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("got.db");
    let error = Transport::local()
        .pull(
            "/nonexistent/etcdrill.db",
            &local,
            "w",
            false,
            Duration::from_secs(10),
            &TransferMeter::default(),
        )
        .await
        .unwrap_err();
    let text = error.to_string();
    assert!(matches!(error, TransportError::Remote { .. }), "{text}");
    assert!(text.contains("is not a readable file"), "{text}");
    assert!(!local.exists() && !part_path(&local, "w").exists());
    let error = Transport::local()
        .push(
            &dir.path().join("missing"),
            "/tmp/x",
            "w",
            false,
            Duration::from_secs(10),
            &TransferMeter::default(),
        )
        .await
        .unwrap_err();
    assert!(matches!(error, TransportError::Io { .. }), "{error}");
}

// ---- SSH transport against a loopback sshd ----

async fn connect(sshd: &Sshd) -> Transport {
    Transport::connect(&sshd.node(&sshd.known_hosts))
        .await
        .unwrap_or_else(|e| panic!("connect: {e}"))
}

#[tokio::test]
async fn ssh_runs_report_exit_codes_and_output() {
    let Some(sshd) = Sshd::start("ssh_runs_report_exit_codes_and_output") else {
        return;
    };
    let transport = connect(&sshd).await;
    assert_eq!(
        transport.describe(),
        format!("ssh root@127.0.0.1:{}", sshd.port)
    );
    let (sender, mut receiver) = mpsc::unbounded_channel();
    let output = transport
        .run(
            &request("echo out\necho err >&2\ncat\nexit 3"),
            Some(&sender),
        )
        .await
        .unwrap();
    assert_eq!(output.exit_status, Some(3));
    assert_eq!(output.stdout, "out\n");
    assert_eq!(output.stderr, "err\n");
    drop(sender);
    let mut live = Vec::new();
    while let Some(chunk) = receiver.recv().await {
        live.push(chunk);
    }
    assert!(
        live.contains(&OutputChunk::Stdout("out\n".into())),
        "{live:?}"
    );
    let output = transport
        .run(&request("no-such-command-etcdrill"), None)
        .await
        .unwrap();
    assert_eq!(output.exit_status, Some(127));
    // Several commands at once share the master.
    let scripts: Vec<String> = (0..8).map(|i| format!("echo {i}")).collect();
    let requests: Vec<_> = scripts.iter().map(|s| request(s)).collect();
    let runs = requests.iter().map(|r| transport.run(r, None));
    let outputs = futures_util::future::join_all(runs).await;
    for (i, output) in outputs.into_iter().enumerate() {
        assert_eq!(output.unwrap().stdout, format!("{i}\n"));
    }
    transport.close().await.unwrap();
}

#[tokio::test]
async fn ssh_sudo_runs_through_sudo() {
    let Some(sshd) = Sshd::start("ssh_sudo_runs_through_sudo") else {
        return;
    };
    if !on_path("sudo") {
        // Installing packages from a test is not allowed; the sudo prefix is unit-tested above.
        note("skipping ssh_sudo_runs_through_sudo: `sudo` is not installed");
        return;
    }
    let transport = connect(&sshd).await;
    let output = transport
        .run(
            &CommandRequest {
                sudo: true,
                ..request("id -u")
            },
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        (output.exit_status, output.stdout.as_str()),
        (Some(0), "0\n"),
        "{output:?}"
    );
}

#[tokio::test]
async fn ssh_timeout_kills_the_remote_tree() {
    let Some(sshd) = Sshd::start("ssh_timeout_kills_the_remote_tree") else {
        return;
    };
    let transport = connect(&sshd).await;
    let output = transport
        .run(
            &CommandRequest {
                script: "sleep 987654 &\necho pid=$!\nwait",
                sudo: false,
                // Long enough for the script to print its pid on a loaded machine.
                timeout: Duration::from_secs(3),
                grace: Duration::from_secs(30),
            },
            None,
        )
        .await
        .unwrap();
    assert!(output.timed_out, "{output:?}");
    assert_eq!(output.exit_status, None);
    assert!(
        output.duration < Duration::from_secs(30),
        "TERM was enough (KILL would have come after the 30 s grace): {output:?}"
    );
    // The sshd is on this machine, so the remote pid is visible here.
    assert_ends(printed_pid(&output.stdout), Duration::from_secs(5)).await;
    // A script that ignores TERM gets KILL after the grace period.
    let output = transport
        .run(
            &CommandRequest {
                script: "trap '' TERM\nsleep 987655 &\necho pid=$!\nwait",
                sudo: false,
                timeout: Duration::from_secs(3),
                grace: Duration::from_millis(500),
            },
            None,
        )
        .await
        .unwrap();
    assert!(
        output.timed_out && output.duration >= Duration::from_millis(3500),
        "{output:?}"
    );
    assert_ends(printed_pid(&output.stdout), Duration::from_secs(5)).await;
    // The connection is still good afterwards.
    let output = transport.run(&request("echo alive"), None).await.unwrap();
    assert_eq!(output.stdout, "alive\n");
}

#[tokio::test]
async fn a_dropped_ssh_run_stops_the_remote_group() {
    let Some(sshd) = Sshd::start("a_dropped_ssh_run_stops_the_remote_group") else {
        return;
    };
    let transport = connect(&sshd).await;
    let pid_file = sshd.dir.join("pid");
    // `started` goes to standard error after the process group line, on the same stream: once it
    // is seen, the group is known and dropping the run must kill it. (A run dropped before its
    // group line arrived never got its script: see the module docs.)
    let script = format!(
        "sleep 987656 &\necho $! > {}\necho started >&2\nwait",
        shell_quote(&pid_file.display().to_string())
    );
    let request = CommandRequest {
        grace: Duration::from_millis(200),
        ..request(&script)
    };
    let (live, mut chunks) = tokio::sync::mpsc::unbounded_channel();
    let run = transport.run(&request, Some(&live));
    {
        tokio::pin!(run);
        let deadline = tokio::time::sleep(Duration::from_secs(60));
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                _ = &mut run => panic!("the script ended"),
                _ = &mut deadline => panic!("the script never said it started"),
                Some(chunk) = chunks.recv() => {
                    if matches!(&chunk, OutputChunk::Stderr(text) if text.contains("started")) {
                        break;
                    }
                }
            }
        }
    }
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_ends(pid, Duration::from_secs(30)).await;
}

#[tokio::test]
async fn ssh_push_and_pull_round_trip_20_mb() {
    let Some(sshd) = Sshd::start("ssh_push_and_pull_round_trip_20_mb") else {
        return;
    };
    let transport = connect(&sshd).await;
    let data = pseudo_random(20 * 1024 * 1024);
    let source = sshd.dir.join("source.db");
    std::fs::write(&source, &data).unwrap();
    let remote = sshd.dir.join("remote dir/it's/snap.db");
    let remote = remote.to_str().unwrap();
    let started = Instant::now();
    let sent = TransferMeter::default();
    let pushed = transport
        .push(&source, remote, "w", false, Duration::from_secs(60), &sent)
        .await
        .unwrap();
    let push_time = started.elapsed();
    assert_eq!(pushed, data.len() as u64);
    assert_eq!((sent.done(), sent.total()), (pushed, Some(pushed)));
    assert!(
        std::fs::read(remote).unwrap() == data,
        "pushed bytes differ"
    );
    let back = sshd.dir.join("back/snap.db");
    let started = Instant::now();
    let received = TransferMeter::default();
    let pulled = transport
        .pull(
            remote,
            &back,
            "w",
            false,
            Duration::from_secs(60),
            &received,
        )
        .await
        .unwrap();
    let pull_time = started.elapsed();
    assert_eq!(pulled, data.len() as u64);
    assert_eq!((received.done(), received.total()), (pulled, Some(pulled)));
    assert!(std::fs::read(&back).unwrap() == data, "pulled bytes differ");
    note(&format!(
        "20 MiB over loopback ssh: push {:.0} MiB/s, pull {:.0} MiB/s",
        20.0 / push_time.as_secs_f64(),
        20.0 / pull_time.as_secs_f64()
    ));
    // A pull of a missing file is a remote error naming the file.
    let error = transport
        .pull(
            "/nonexistent/x.db",
            &back,
            "w",
            false,
            Duration::from_secs(10),
            &TransferMeter::default(),
        )
        .await
        .unwrap_err();
    assert!(error.to_string().contains("/nonexistent/x.db"), "{error}");
}

#[tokio::test]
async fn an_unknown_host_key_is_refused() {
    let Some(sshd) = Sshd::start("an_unknown_host_key_is_refused") else {
        return;
    };
    let empty = sshd.write("empty_known_hosts", "");
    let error = Transport::connect(&sshd.node(&empty)).await.unwrap_err();
    let text = error.to_string();
    eprintln!("{text}");
    assert!(matches!(error, TransportError::HostKey { .. }), "{text}");
    assert!(text.contains(&empty.display().to_string()), "{text}");
    assert!(text.contains("ssh-keygen -lf"), "{text}");
    // Nothing was added to the file: the key was not accepted.
    assert_eq!(std::fs::read_to_string(&empty).unwrap(), "");
}

#[tokio::test]
async fn a_changed_host_key_is_refused() {
    let Some(sshd) = Sshd::start("a_changed_host_key_is_refused") else {
        return;
    };
    let changed = sshd.write(
        "changed_known_hosts",
        &sshd.known_hosts_line("other_host_key"),
    );
    let error = Transport::connect(&sshd.node(&changed)).await.unwrap_err();
    let text = error.to_string();
    eprintln!("{text}");
    assert!(matches!(error, TransportError::HostKey { .. }), "{text}");
    assert!(text.contains("is NOT the one recorded"), "{text}");
    assert!(
        text.contains("SHA256:"),
        "the offered fingerprint is shown: {text}"
    );
}

#[tokio::test]
async fn a_closed_port_and_a_wrong_key_are_unreachable() {
    let Some(sshd) = Sshd::start("a_closed_port_and_a_wrong_key_are_unreachable") else {
        return;
    };
    let closed = super::sshd_harness::free_port();
    let error = Transport::connect(&sshd.node_with(closed, &sshd.client_key, &sshd.known_hosts))
        .await
        .unwrap_err();
    let text = error.to_string();
    eprintln!("{text}");
    assert!(
        matches!(error, TransportError::Unreachable { .. }),
        "{text}"
    );
    assert!(text.contains("connection refused"), "{text}");
    let wrong_key = sshd.dir.join("other_client_key");
    let error = Transport::connect(&sshd.node_with(sshd.port, &wrong_key, &sshd.known_hosts))
        .await
        .unwrap_err();
    let text = error.to_string();
    eprintln!("{text}");
    assert!(
        matches!(error, TransportError::Unreachable { .. }),
        "{text}"
    );
    assert!(text.contains("authentication failed"), "{text}");
    let missing = sshd.dir.join("no_such_key");
    let error = Transport::connect(&sshd.node_with(sshd.port, &missing, &sshd.known_hosts))
        .await
        .unwrap_err();
    assert!(matches!(error, TransportError::Io { .. }), "{error}");
}

/// Median of `samples`, in milliseconds.
fn median_ms(mut samples: Vec<Duration>) -> f64 {
    samples.sort();
    samples[samples.len() / 2].as_secs_f64() * 1000.0
}

/// Per-command overhead of 300 trivial commands: over one Transport::Ssh, plain `ssh` per command,
/// and an `ssh` ControlMaster loop. Run with
/// `cargo test -p etcdrill --release transport::tests::bench -- --ignored --nocapture`.
#[tokio::test]
#[ignore = "a measurement, not a test"]
async fn bench_command_overhead() {
    let Some(sshd) = Sshd::start("bench_command_overhead") else {
        return;
    };
    const N: usize = 300;
    let transport = connect(&sshd).await;
    let mut multiplexed = Vec::with_capacity(N);
    for _ in 0..N {
        let started = Instant::now();
        let output = transport.run(&request("true"), None).await.unwrap();
        assert!(output.success());
        multiplexed.push(started.elapsed());
    }
    let base = |extra: &[&str]| {
        let mut command = std::process::Command::new("ssh");
        command
            .args(["-p", &sshd.port.to_string(), "-i"])
            .arg(&sshd.client_key)
            .args([
                "-o",
                "IdentitiesOnly=yes",
                "-o",
                "BatchMode=yes",
                "-o",
                "StrictHostKeyChecking=yes",
            ])
            .arg("-o")
            .arg(format!("UserKnownHostsFile={}", sshd.known_hosts.display()))
            .args(extra)
            .args(["root@127.0.0.1", "true"])
            .stdin(std::process::Stdio::null());
        command
    };
    let mut plain = Vec::with_capacity(N);
    for _ in 0..N {
        let started = Instant::now();
        assert!(
            base(&["-o", "ControlMaster=no", "-o", "ControlPath=none"])
                .status()
                .unwrap()
                .success()
        );
        plain.push(started.elapsed());
    }
    let control = format!("ControlPath={}/cm-%C", sshd.dir.display());
    let mut master = Vec::with_capacity(N);
    for _ in 0..N {
        let started = Instant::now();
        let status = base(&[
            "-o",
            "ControlMaster=auto",
            "-o",
            &control,
            "-o",
            "ControlPersist=60",
        ])
        .status()
        .unwrap();
        assert!(status.success());
        master.push(started.elapsed());
    }
    let _ = base(&["-o", &control, "-O", "exit"]).status();
    eprintln!(
        "median per-command ms over {N} `true`: Transport::Ssh {:.2}, plain ssh {:.2}, ssh ControlMaster loop {:.2} (first ControlMaster run {:.2})",
        median_ms(multiplexed),
        median_ms(plain),
        median_ms(master.clone()),
        master[0].as_secs_f64() * 1000.0
    );
    transport.close().await.unwrap();
}
