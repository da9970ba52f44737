//! The one way the tests run the `etcdrill` binary without a terminal: a builder
//! (`Etcdrill::in_temp_dir().file(..).args([..]).run().success()`, in the style of just's tests)
//! and what a run printed and how it exited ([`Outcome`]), with the run's directory redacted for
//! snapshots. Tests at a terminal (`terminal.rs`) start the same [`binary`] on a pseudo-terminal.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use tempfile::TempDir;

/// The `etcdrill` binary under test.
pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_etcdrill"))
}

/// A command line for `etcdrill`, run without a terminal (standard input is empty).
pub struct Etcdrill {
    command: Command,
    /// Where [`Etcdrill::file`] writes and whose path [`Outcome::snapshot`] redacts.
    dir: PathBuf,
    /// The temp dir behind `dir` when the builder made it, kept until the outcome is dropped.
    temp: Option<TempDir>,
}

impl Etcdrill {
    /// `etcdrill`, run in `dir`.
    pub fn new(dir: &Path) -> Self {
        let mut command = Command::new(binary());
        command.current_dir(dir).stdin(Stdio::null());
        Self {
            command,
            dir: dir.to_owned(),
            temp: None,
        }
    }

    /// `etcdrill`, run in a temp dir of its own that lives as long as the [`Outcome`].
    pub fn in_temp_dir() -> Self {
        let temp = tempfile::tempdir().expect("a temp dir");
        let mut etcdrill = Self::new(temp.path());
        etcdrill.temp = Some(temp);
        etcdrill
    }

    /// Writes a file (and its parent directories) into the run's directory.
    pub fn file(self, name: &str, text: &str) -> Self {
        let path = self.dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("a test directory is created");
        }
        std::fs::write(path, text).expect("a test file writes");
        self
    }

    /// Runs in `dir` instead; files still go to the run's directory.
    pub fn current_dir(mut self, dir: &Path) -> Self {
        self.command.current_dir(dir);
        self
    }

    /// Adds an argument.
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.command.arg(arg);
        self
    }

    /// Adds arguments.
    pub fn args<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(mut self, args: I) -> Self {
        self.command.args(args);
        self
    }

    /// Sets an environment variable.
    pub fn env(mut self, name: &str, value: impl AsRef<OsStr>) -> Self {
        self.command.env(name, value);
        self
    }

    /// Runs to the end.
    pub fn run(mut self) -> Outcome {
        let output = self.command.output().expect("etcdrill runs");
        Outcome {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            dir: self.dir,
            _temp: self.temp,
        }
    }

    /// Starts it and returns the child, for tests that kill it; its standard error is piped.
    pub fn spawn(mut self) -> Child {
        assert!(
            self.temp.is_none(),
            "a spawned etcdrill would outlive its temp dir: use Etcdrill::new(dir)"
        );
        self.command.stdout(Stdio::null()).stderr(Stdio::piped());
        self.command.spawn().expect("etcdrill starts")
    }
}

/// What an `etcdrill` run printed and how it exited.
pub struct Outcome {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    dir: PathBuf,
    _temp: Option<TempDir>,
}

impl Outcome {
    /// What a spawned child (see [`Etcdrill::spawn`]) printed and how it exited.
    pub fn of_child(output: std::process::Output) -> Self {
        Outcome {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            dir: PathBuf::new(),
            _temp: None,
        }
    }

    /// The exit code; `None` when a signal ended the run.
    pub fn code(&self) -> Option<i32> {
        self.code
    }

    /// Standard output.
    pub fn stdout(&self) -> String {
        self.stdout.clone()
    }

    /// Standard error.
    pub fn stderr(&self) -> String {
        self.stderr.clone()
    }

    /// Everything printed, for assertion messages.
    pub fn shown(&self) -> String {
        format!(
            "exit: {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }

    /// Panics unless the run exited with `code`.
    #[track_caller]
    pub fn expect_code(self, code: i32) -> Self {
        assert_eq!(self.code, Some(code), "{}", self.shown());
        self
    }

    /// Panics unless the run succeeded (exit code 0).
    #[track_caller]
    pub fn success(self) -> Self {
        self.expect_code(0)
    }

    /// Panics unless the run failed with exit code 1.
    #[track_caller]
    pub fn failure(self) -> Self {
        self.expect_code(1)
    }

    /// The run's directory (where [`Etcdrill::file`] wrote).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A file the run wrote, relative to its directory.
    pub fn read(&self, name: &str) -> String {
        let path = self.dir.join(name);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// Exit code, stdout and stderr in one text, with the run's directory shown as `[TEMP]`.
    pub fn snapshot(&self) -> String {
        let text = format!(
            "status: {}\n--- stdout\n{}--- stderr\n{}",
            self.code.unwrap_or(-1),
            self.stdout,
            self.stderr
        );
        self.redact(&text)
    }

    /// `text` with the run's directory (as given and canonical) shown as `[TEMP]`.
    fn redact(&self, text: &str) -> String {
        let dir = self.dir.display().to_string();
        let canonical = std::fs::canonicalize(&self.dir)
            .map(|d| d.display().to_string())
            .unwrap_or_default();
        let text = if canonical.is_empty() {
            text.to_owned()
        } else {
            text.replace(&canonical, "[TEMP]")
        };
        text.replace(&dir, "[TEMP]")
    }
}
