//! Running programs: on the host, and inside a node's namespaces.

use std::io::Write;
use std::process::{Command, ExitStatus, Stdio};

use crate::BedError;

/// PATH given to everything the bed runs on a node (the node's `/usr/local/bin` holds etcd's binaries).
pub(crate) const NODE_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What a finished command printed and how it ended.
#[derive(Debug, Clone)]
pub struct ExecOutput {
    /// The command as a readable string (for messages).
    pub command: String,
    /// How the command ended.
    pub status: ExitStatus,
    /// Its standard output (lossy UTF-8).
    pub stdout: String,
    /// Its standard error (lossy UTF-8).
    pub stderr: String,
}

impl ExecOutput {
    /// True when the command exited with status 0.
    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// The standard output when the command succeeded, otherwise a [`BedError::Command`].
    pub fn into_stdout(self) -> Result<String, BedError> {
        if self.success() {
            Ok(self.stdout)
        } else {
            Err(BedError::Command {
                command: self.command,
                status: self.status.to_string(),
                stderr: self.stderr.trim().to_owned(),
            })
        }
    }
}

/// Runs `command` to completion, feeding it `stdin`, and captures its output.
pub(crate) fn run(mut command: Command, stdin: Option<&[u8]>) -> Result<ExecOutput, BedError> {
    let display = describe(&command);
    command
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().map_err(|source| BedError::Spawn {
        command: display.clone(),
        source,
    })?;
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        // A command that exits without reading all of its input is reported by its status.
        let _ = pipe.write_all(input);
    }
    let output = child.wait_with_output().map_err(|source| BedError::Spawn {
        command: display.clone(),
        source,
    })?;
    Ok(ExecOutput {
        command: display,
        status: output.status,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    })
}

/// Runs a host program with `args` and returns its standard output, failing on a non-zero exit.
pub(crate) fn host(program: &str, args: &[&str]) -> Result<String, BedError> {
    let mut command = Command::new(program);
    command.args(args);
    run(command, None)?.into_stdout()
}

/// A command line as one readable string.
pub(crate) fn describe(command: &Command) -> String {
    std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|part| shell_quote(&part.to_string_lossy()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Quotes `text` for a POSIX shell, leaving plain words alone.
pub fn shell_quote(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@+%".contains(c));
    if plain {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::shell_quote;

    #[test]
    fn quotes_only_what_needs_it() {
        for (input, expected) in [
            ("etcdctl", "etcdctl"),
            (
                "--endpoints=https://10.0.0.1:2379",
                "--endpoints=https://10.0.0.1:2379",
            ),
            ("", "''"),
            ("a b", "'a b'"),
            ("it's", r"'it'\''s'"),
            ("$HOME", "'$HOME'"),
        ] {
            assert_eq!(shell_quote(input), expected, "input {input:?}");
        }
    }
}
