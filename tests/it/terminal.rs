//! etcdrill as a person uses it: at a real terminal. Each test runs the binary on a pseudo-terminal
//! (standard input, output and error all on it, as in an interactive shell) against a local
//! sandbox cluster, types answers and keys, sends signals, and waits for what a person would see,
//! every wait bounded by a deadline, so a hang fails the test instead of hanging CI.
//!
//! The sandbox needs etcd 3.5's binaries (`ETCDRILL_ETCD35_DIR`, installed by `.ci/setup`); without
//! them the tests skip, except on CI or with `ETCDRILL_TESTBED_REQUIRED=1`, where they fail.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use portable_pty::{Child, CommandBuilder, PtySize, native_pty_system};
use tempfile::TempDir;

use crate::support::{Etcdrill, binary, repo};

/// Longest a whole command may take before the test calls it a hang.
const HANG: Duration = Duration::from_secs(90);

fn required() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false" && v != "0")
        || std::env::var("ETCDRILL_TESTBED_REQUIRED").is_ok_and(|v| v == "1")
}

/// Whether the sandbox can start here; says why not when it cannot.
fn etcd_available() -> bool {
    let found = std::env::var_os("ETCDRILL_ETCD35_DIR")
        .is_some_and(|dir| Path::new(&dir).join("etcd").exists());
    if !found {
        assert!(
            !required(),
            "ETCDRILL_ETCD35_DIR does not name etcd 3.5's binaries (required on CI)"
        );
        eprintln!("skipping: set ETCDRILL_ETCD35_DIR (run .ci/setup)");
    }
    found
}

/// A program running on a pseudo-terminal, with everything it printed so far.
struct Pty {
    child: Box<dyn Child + Send + Sync>,
    writer: Box<dyn Write + Send>,
    screen: Arc<(Mutex<Screen>, Condvar)>,
}

/// What the terminal received, and whether its output has ended (every writer closed it).
#[derive(Default)]
struct Screen {
    bytes: Vec<u8>,
    ended: bool,
}

/// How a program on a pty is started.
struct PtyCommand {
    args: Vec<String>,
    dir: PathBuf,
    env: Vec<(String, String)>,
    cols: u16,
}

impl PtyCommand {
    fn new(dir: &Path, args: &[&str]) -> Self {
        Self {
            args: args.iter().map(|a| a.to_string()).collect(),
            dir: dir.to_owned(),
            env: Vec::new(),
            cols: 120,
        }
    }

    fn env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }

    fn cols(mut self, cols: u16) -> Self {
        self.cols = cols;
        self
    }

    fn spawn(self) -> Pty {
        let pair = native_pty_system()
            .openpty(PtySize {
                rows: 40,
                cols: self.cols,
                pixel_width: 0,
                pixel_height: 0,
            })
            .expect("a pty");
        let mut command = CommandBuilder::new(binary());
        command.args(&self.args);
        command.cwd(&self.dir);
        command.env_remove("NO_COLOR");
        command.env("TERM", "xterm-256color");
        for (name, value) in &self.env {
            command.env(name, value);
        }
        let child = pair.slave.spawn_command(command).expect("etcdrill starts");
        // The child has its own copy; ours would keep the terminal open after it exits.
        drop(pair.slave);
        let mut reader = pair.master.try_clone_reader().expect("a pty reader");
        let writer = pair.master.take_writer().expect("a pty writer");
        let screen = Arc::new((Mutex::new(Screen::default()), Condvar::new()));
        let sink = Arc::clone(&screen);
        std::thread::spawn(move || {
            // Keeps the master (and so the terminal) alive as long as the program may print.
            let _master = pair.master;
            let mut buffer = [0u8; 4096];
            let (screen, changed) = &*sink;
            // The read fails (EIO) or ends once no process holds the terminal any more.
            while let Ok(n @ 1..) = reader.read(&mut buffer) {
                screen.lock().unwrap().bytes.extend_from_slice(&buffer[..n]);
                changed.notify_all();
            }
            screen.lock().unwrap().ended = true;
            changed.notify_all();
        });
        Pty {
            child,
            writer,
            screen,
        }
    }
}

impl Pty {
    /// Everything printed so far, as bytes.
    fn raw(&self) -> Vec<u8> {
        self.screen.0.lock().unwrap().bytes.clone()
    }

    /// Everything printed so far, without escape sequences.
    fn text(&self) -> String {
        String::from_utf8_lossy(&strip_ansi_escapes::strip(self.raw())).into_owned()
    }

    /// Waits until `needle` has been printed; fails with the screen after `within`.
    #[track_caller]
    fn expect(&mut self, needle: &str, within: Duration) {
        let deadline = Instant::now() + within;
        let (screen, changed) = &*self.screen;
        let mut guard = screen.lock().unwrap();
        loop {
            let text =
                String::from_utf8_lossy(&strip_ansi_escapes::strip(&guard.bytes)).into_owned();
            if text.contains(needle) {
                return;
            }
            let now = Instant::now();
            if now >= deadline {
                drop(guard);
                let _ = self.child.kill();
                panic!("`{needle}` did not appear within {within:?}; the terminal shows:\n{text}");
            }
            guard = changed.wait_timeout(guard, deadline - now).unwrap().0;
        }
    }

    /// Types `keys`.
    fn send(&mut self, keys: &str) {
        self.writer.write_all(keys.as_bytes()).unwrap();
        self.writer.flush().unwrap();
    }

    /// Sends a signal to the program itself (not through the terminal).
    fn signal(&self, signal: i32) {
        let pid = self.child.process_id().expect("a pid") as i32;
        // SAFETY: kill(2) with a pid this test started and a valid signal number.
        assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
    }

    /// Waits for the program to exit; a program still running after `within` is a hang: it is
    /// killed and the test fails with the screen.
    #[track_caller]
    fn exit_code(&mut self, within: Duration) -> u32 {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait works") {
                self.drained(deadline);
                return status.exit_code();
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                panic!(
                    "still running after {within:?} (a hang); the terminal shows:\n{}",
                    self.text()
                );
            }
            // Polling a child's exit: there is no condition to wait on across a pty.
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Pty {
    /// Waits, until `deadline` at the most, for everything the program printed to be read: its
    /// exit can come before the last bytes are through the terminal.
    fn drained(&self, deadline: Instant) {
        let (screen, changed) = &*self.screen;
        let mut guard = screen.lock().unwrap();
        while !guard.ended {
            let now = Instant::now();
            if now >= deadline {
                return;
            }
            guard = changed.wait_timeout(guard, deadline - now).unwrap().0;
        }
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

/// A local sandbox cluster (three members, mutual TLS, loopback), taken down on drop.
struct Sandbox {
    tmp: TempDir,
}

impl Sandbox {
    fn up() -> Option<Self> {
        if !etcd_available() {
            return None;
        }
        let tmp = tempfile::Builder::new()
            .prefix("etcdrill-terminal-")
            .tempdir()
            .unwrap();
        let sandbox = Self { tmp };
        Etcdrill::new(sandbox.tmp.path())
            .args(["sandbox", "up", "--dir"])
            .arg(sandbox.dir())
            .run()
            .success();
        Some(sandbox)
    }

    fn dir(&self) -> PathBuf {
        self.tmp.path().join("sandbox")
    }

    fn work(&self) -> PathBuf {
        self.tmp.path().to_owned()
    }

    fn inventory(&self) -> String {
        self.dir().join("inventory.yaml").display().to_string()
    }

    /// Writes a file into the test's directory and returns its path.
    fn file(&self, name: &str, text: &str) -> String {
        let path = self.tmp.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    }

    /// `etcdrill ARGS` on a terminal, in the test's directory, with runs kept there.
    fn pty(&self, args: &[&str]) -> PtyCommand {
        PtyCommand::new(&self.work(), args)
    }

    /// `etcdrill run` of the gated runbook (its slow step sleeping `seconds`) on a terminal, with
    /// `extra` arguments.
    fn gated_run(&self, seconds: u32, extra: &[&str]) -> PtyCommand {
        let runbook = self.file("gated.yaml", &gated_runbook(seconds));
        let inventory = self.inventory();
        let mut args = vec!["run", runbook.as_str(), "-i", inventory.as_str()];
        args.extend_from_slice(extra);
        self.pty(&args)
    }

    /// The journal of the only run so far.
    fn journal(&self) -> String {
        let runs: Vec<_> = std::fs::read_dir(self.work().join(".etcdrill/runs"))
            .expect("a run directory")
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(runs.len(), 1, "{runs:?}");
        std::fs::read_to_string(runs[0].join("journal.jsonl")).unwrap()
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        Etcdrill::new(self.tmp.path())
            .args(["sandbox", "down", "--dir"])
            .arg(self.dir())
            .run();
    }
}

/// A runbook of shell steps on the sandbox's first member: a gate, a slow step, and one after it.
fn gated_runbook(seconds: u32) -> String {
    format!(
        r#"name: terminal
summary: A gate, a slow step and one after it, for terminal tests
steps:
  - id: gated
    title: Asks first
    on: node:m1
    action: shell
    confirm: Really write the marker?
    with:
      run: echo gated-ran
  - id: slow
    title: Takes a while, as copying a large snapshot to every node would
    on: node:m1
    action: shell
    needs: [gated]
    with:
      run: sleep {seconds}
  - id: after
    title: Runs after the slow step
    on: node:m1
    action: shell
    needs: [slow]
    with:
      run: echo after-ran
"#
    )
}

#[test]
fn check_run_on_a_terminal_finishes() {
    let Some(sandbox) = Sandbox::up() else { return };
    let runbook = repo().join("runbooks/compact.yaml");
    let inventory = sandbox.inventory();
    let mut pty = sandbox
        .pty(&[
            "run",
            runbook.to_str().unwrap(),
            "-i",
            &inventory,
            "--check",
        ])
        .spawn();
    assert_eq!(pty.exit_code(HANG), 0, "{}", pty.text());
    let text = pty.text();
    assert!(text.contains("result: SUCCEEDED"), "{text}");
    assert!(text.contains("SHOWN   compact"), "{text}");
}

#[test]
fn sandbox_commands_on_a_terminal() {
    if !etcd_available() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("sb");
    let dir = dir.to_str().unwrap();
    let mut up = PtyCommand::new(tmp.path(), &["sandbox", "up", "--dir", dir]).spawn();
    assert_eq!(up.exit_code(HANG), 0, "{}", up.text());
    assert!(up.text().contains("inventory:"), "{}", up.text());
    let mut status = PtyCommand::new(tmp.path(), &["sandbox", "status", "--dir", dir]).spawn();
    assert_eq!(status.exit_code(HANG), 0, "{}", status.text());
    assert!(status.text().contains("m3"), "{}", status.text());
    let mut down = PtyCommand::new(tmp.path(), &["sandbox", "down", "--dir", dir]).spawn();
    assert_eq!(down.exit_code(HANG), 0, "{}", down.text());
    assert!(!Path::new(dir).exists());
}

#[test]
fn a_gate_answered_y_runs_the_step() {
    let Some(sandbox) = Sandbox::up() else { return };
    let mut pty = sandbox.gated_run(0, &[]).spawn();
    // First the run's consent (it has a gate), then the gate itself.
    pty.expect("Go on? [y/N]", HANG);
    pty.send("y\r");
    pty.expect("Really write the marker?", HANG);
    pty.send("yes\r");
    assert_eq!(pty.exit_code(HANG), 0, "{}", pty.text());
    let journal = sandbox.journal();
    assert!(journal.contains(r#""answer":true"#), "{journal}");
    assert!(pty.text().contains("ok      after@m1"), "{}", pty.text());
}

#[test]
fn a_gate_answered_n_skips_the_step_and_what_needs_it() {
    let Some(sandbox) = Sandbox::up() else { return };
    let mut pty = sandbox.gated_run(0, &[]).spawn();
    pty.expect("Go on? [y/N]", HANG);
    pty.send("y\r");
    pty.expect("Really write the marker?", HANG);
    pty.send("n\r");
    // A declined gate is a path not taken (docs/runbook-language.md §6), not a failure.
    assert_eq!(pty.exit_code(HANG), 0, "{}", pty.text());
    let text = pty.text();
    assert!(text.contains("DECLINED gated@m1"), "{text}");
    assert!(text.contains("skipped slow@m1"), "{text}");
    assert!(!sandbox.journal().contains("gated-ran"));
}

#[test]
fn end_of_input_at_the_first_question_runs_nothing() {
    let Some(sandbox) = Sandbox::up() else { return };
    let mut pty = sandbox.gated_run(0, &[]).spawn();
    pty.expect("Go on? [y/N]", HANG);
    // Ctrl-D on an empty line: the terminal's end of input.
    pty.send("\x04");
    let code = pty.exit_code(HANG);
    let text = pty.text();
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("end of input: taken as no"), "{text}");
    assert!(text.contains("declined at the terminal"), "{text}");
}

#[test]
fn ctrl_c_at_a_question_stops_the_run() {
    let Some(sandbox) = Sandbox::up() else { return };
    let mut pty = sandbox.gated_run(0, &[]).spawn();
    pty.expect("Go on? [y/N]", HANG);
    pty.send("y\r");
    pty.expect("Really write the marker?", HANG);
    pty.send("\x03");
    let code = pty.exit_code(HANG);
    let text = pty.text();
    assert_ne!(code, 0, "{text}");
    assert!(
        text.contains("interrupted: nothing more starts; resume asks again"),
        "{text}"
    );
    assert!(
        text.contains("skipped gated@m1: the run was stopped"),
        "{text}"
    );
    assert!(text.contains("result: INTERRUPTED"), "{text}");
    assert!(!sandbox.journal().contains("gated-ran"));
}

#[test]
fn ctrl_c_once_lets_the_running_step_finish_and_starts_no_other() {
    let Some(sandbox) = Sandbox::up() else { return };
    let mut pty = sandbox.gated_run(3, &["--yes"]).spawn();
    pty.expect("slow@m1: Takes a while", HANG);
    pty.send("\x03");
    let code = pty.exit_code(HANG);
    let text = pty.text();
    assert_ne!(code, 0, "{text}");
    assert!(text.contains("no new step starts"), "{text}");
    assert!(text.contains("ok      slow@m1"), "{text}");
    assert!(
        text.contains("skipped after@m1: the run was stopped"),
        "{text}"
    );
    assert!(text.contains("etcdrill resume"), "{text}");
    // And resuming does what it says: the step the stop skipped runs, nothing runs twice.
    let runs = sandbox.work().join(".etcdrill/runs");
    let run = std::fs::read_dir(&runs)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let resumed = Etcdrill::new(&sandbox.work())
        .args(["resume", run.to_str().unwrap(), "--yes", "--work-dir"])
        .arg(sandbox.work().join(".etcdrill"))
        .run()
        .success();
    let shown = resumed.stderr();
    assert!(shown.contains("ok      after@m1"), "{shown}");
    assert!(!shown.contains("slow@m1"), "{shown}");
}

#[test]
fn ctrl_c_twice_abandons_the_running_step() {
    let Some(sandbox) = Sandbox::up() else { return };
    // Far longer than HANG: only abandoning it lets the run end in time.
    let mut pty = sandbox.gated_run(600, &["--yes"]).spawn();
    pty.expect("slow@m1: Takes a while", HANG);
    pty.send("\x03");
    pty.expect("no new step starts", HANG);
    pty.send("\x03");
    let code = pty.exit_code(HANG);
    let text = pty.text();
    assert_ne!(code, 0, "{text}");
    assert!(text.contains("running steps abandoned"), "{text}");
    assert!(text.contains("result: INTERRUPTED"), "{text}");
}

#[test]
fn sigterm_stops_a_run_like_ctrl_c() {
    let Some(sandbox) = Sandbox::up() else { return };
    let mut pty = sandbox.gated_run(3, &["--yes"]).spawn();
    pty.expect("slow@m1: Takes a while", HANG);
    pty.signal(libc::SIGTERM);
    let code = pty.exit_code(HANG);
    let text = pty.text();
    assert_ne!(code, 0, "{text}");
    assert!(
        text.contains("skipped after@m1: the run was stopped"),
        "{text}"
    );
}

#[test]
fn a_narrow_terminal_ends_with_a_clean_screen() {
    let Some(sandbox) = Sandbox::up() else { return };
    let cols = 30;
    let mut pty = sandbox.gated_run(1, &["--yes"]).cols(cols).spawn();
    assert_eq!(pty.exit_code(HANG), 0, "{}", pty.text());
    // What a person sees at the end, as a terminal of that width draws it: every finished step's
    // line intact and no live line left behind (a live line wider than the terminal wraps, and its
    // redraw then leaves pieces of it on the screen).
    // The terminal was 40 rows high; drawn 200 high, nothing the run printed scrolls away.
    let size = |n: u16| std::num::NonZeroU16::new(n).expect("not zero");
    let mut screen = vt100::Parser::new(size(200), size(cols), 0);
    screen.process(&pty.raw());
    let shown = screen.screen().contents();
    for line in [
        "ok      gated@m1",
        "ok      slow@m1",
        "ok      after@m1",
        "result: SUCCEEDED",
    ] {
        assert!(
            shown.contains(line),
            "`{line}` is not on the screen:\n{shown}"
        );
    }
    let spinner = |c: char| ('\u{2800}'..='\u{28ff}').contains(&c);
    assert!(
        !shown.contains(spinner),
        "a live line was left on the screen:\n{shown}"
    );
}

#[test]
fn no_color_means_no_colour() {
    if !etcd_available() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let colour = |env: Option<&str>| {
        let mut command = PtyCommand::new(tmp.path(), &["run", "--no-such-flag"]);
        if let Some(value) = env {
            command = command.env("NO_COLOR", value);
        }
        let mut pty = command.spawn();
        assert_eq!(pty.exit_code(HANG), 2, "{}", pty.text());
        let raw = String::from_utf8_lossy(&pty.raw()).into_owned();
        // An SGR sequence: ESC [ digits and semicolons, then `m`.
        raw.split("\x1b[").skip(1).any(|rest| {
            let end = rest.find(|c: char| !(c.is_ascii_digit() || c == ';'));
            end.is_some_and(|i| rest[i..].starts_with('m'))
        })
    };
    assert!(
        colour(None),
        "without NO_COLOR a usage error is coloured on a terminal"
    );
    assert!(!colour(Some("1")), "NO_COLOR=1 still printed colour");
}

#[test]
fn a_drill_on_a_terminal_asks_and_finishes_with_its_verdict() {
    let Some(sandbox) = Sandbox::up() else { return };
    let drill = sandbox.file(
        "drill.yaml",
        &format!(
            "name: terminal-restore\nsummary: Restore drill at a terminal\ninventory: {}\nrunbook: {}\nparams:\n  bump_revision: 0\n  mark_compacted: false\ndisaster:\n  restore: {{}}\nseed: {{keys: 200, value_bytes: 64}}\n",
            sandbox.inventory(),
            repo().join("runbooks/restore-3-node.yaml").display()
        ),
    );
    let mut pty = sandbox.pty(&["drill", "run", &drill]).spawn();
    // The run's consent, then each confirmation gate of the stock restore as it is reached.
    let deadline = Instant::now() + HANG;
    let mut answered = 0;
    let code = loop {
        if let Some(status) = pty.child.try_wait().unwrap() {
            pty.drained(deadline);
            break status.exit_code();
        }
        let asked = pty.text().matches("Go on? [y/N]").count();
        if asked > answered {
            pty.send("y\r");
            answered = asked;
        }
        assert!(Instant::now() < deadline, "a hang:\n{}", pty.text());
        // Polling both a question and an exit: neither is a condition one thread can wait on.
        std::thread::sleep(Duration::from_millis(20));
    };
    let text = pty.text();
    assert_eq!(code, 0, "{text}");
    assert!(answered >= 2, "only {answered} question(s):\n{text}");
    assert!(text.contains("PASSED"), "{text}");
}

#[test]
fn questions_and_live_lines_show_bidirectional_and_control_characters_escaped() {
    let tmp = tempfile::tempdir().unwrap();
    let inventory = tmp.path().join("inventory.yaml");
    std::fs::write(
        &inventory,
        "name: local\ndefaults:\n  transport: local\n  etcd:\n    management: {external: {start: 'true', stop: 'true'}}\nnodes:\n  - {name: n1, address: 127.0.0.1}\n",
    )
    .unwrap();
    // A gate whose question reads differently from what it says, and a title that drives the
    // terminal; YAML's double-quoted escapes write them.
    let runbook = tmp.path().join("runbook.yaml");
    std::fs::write(
        &runbook,
        "name: hidden\nsummary: s\nsteps:\n  - id: gated\n    title: \"Asks \\e]0;owned\\a first\"\n    on: each\n    action: shell\n    confirm: \"Really remove \\u202Egol.tset\\u2066\\u200B?\"\n    with: {run: 'true'}\n",
    )
    .unwrap();
    let mut pty = PtyCommand::new(
        tmp.path(),
        &[
            "run",
            runbook.to_str().unwrap(),
            "-i",
            inventory.to_str().unwrap(),
            "--work-dir",
            tmp.path().to_str().unwrap(),
        ],
    )
    .spawn();
    pty.expect("Go on? [y/N]", HANG);
    pty.send("y\r");
    pty.expect("Really remove", HANG);
    pty.send("yes\r");
    assert_eq!(pty.exit_code(HANG), 0, "{}", pty.text());
    let raw = String::from_utf8_lossy(&pty.raw()).into_owned();
    for hidden in ['\u{202e}', '\u{2066}', '\u{200b}', '\u{7}'] {
        assert!(
            !raw.contains(hidden),
            "{hidden:?} reached the terminal: {raw:?}"
        );
    }
    assert!(
        !raw.contains("\u{1b}]0;owned"),
        "a title reached the terminal: {raw:?}"
    );
    assert!(pty.text().contains("\\u{202e}gol.tset"), "{}", pty.text());
}

#[test]
fn a_refused_command_line_shows_no_raw_control_or_bidirectional_characters() {
    let tmp = tempfile::tempdir().unwrap();
    // clap quotes the argument it refuses; at a terminal it used to print it raw, styled.
    let hostile = "x\u{1b}]0;owned\u{7}\u{202e}gol\u{200b}";
    let mut pty = PtyCommand::new(tmp.path(), &[hostile]).spawn();
    assert_eq!(pty.exit_code(HANG), 2, "{}", pty.text());
    let raw = String::from_utf8_lossy(&pty.raw()).into_owned();
    // clap's own colours may be there; the input's sequence and characters may not.
    assert!(
        !raw.contains("\u{1b}]"),
        "an OSC sequence reached the terminal: {raw:?}"
    );
    for hidden in ['\u{7}', '\u{202e}', '\u{200b}'] {
        assert!(
            !raw.contains(hidden),
            "{hidden:?} reached the terminal: {raw:?}"
        );
    }
    let text = pty.text();
    assert!(text.contains("unrecognized subcommand"), "{text:?}");
    assert!(
        text.contains(r"x\u{1b}]0;owned\u{7}\u{202e}gol\u{200b}"),
        "{text:?}"
    );
}
