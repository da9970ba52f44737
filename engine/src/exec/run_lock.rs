//! One owner per run: an advisory lock (`flock`) on `<run dir>/run.lock`, held by `run`, `resume`
//! and `rollback` for as long as they work on the run. The file names its holder (pid, host and
//! since when) so that a refused command can say who has the run.
//!
//! `flock` locks belong to the open file: the kernel drops them when the holder exits, however it
//! exits, so a killed controller never leaves a stale lock behind. The file itself stays; its
//! content only describes the last holder.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// The lock file's name in a run directory.
pub const LOCK_FILE: &str = "run.lock";

/// Why a run's lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum RunLockError {
    /// Another process holds the run.
    #[error(
        "run {run} is in use by {holder}; one command at a time works on a run (wait for it to end, or stop it)"
    )]
    Held {
        /// The run's directory.
        run: PathBuf,
        /// `pid 123 on host ctl-1 since ...`, as the holder wrote it.
        holder: String,
    },
    /// The lock file could not be opened or locked.
    #[error("failed to lock {path}")]
    Io {
        /// The lock file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// The held lock of a run directory; dropping it releases the run.
#[derive(Debug)]
pub struct RunLock {
    // Closing the file releases the flock.
    _file: File,
}

impl RunLock {
    /// Takes the run in `dir` without waiting, or says who holds it.
    pub fn acquire(dir: &Path) -> Result<Self, RunLockError> {
        let path = dir.join(LOCK_FILE);
        let io = |source| RunLockError::Io {
            path: path.clone(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        // SAFETY: flock only reads the descriptor, which `file` keeps open for the call.
        let locked = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if locked != 0 {
            let error = std::io::Error::last_os_error();
            if error.kind() != std::io::ErrorKind::WouldBlock {
                return Err(io(error));
            }
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            return Err(RunLockError::Held {
                run: dir.to_owned(),
                holder: if holder.is_empty() {
                    "another process (it has not said which yet)".into()
                } else {
                    crate::shown::escape(holder).into_owned()
                },
            });
        }
        let since = humantime::format_rfc3339_seconds(std::time::SystemTime::now());
        let holder = format!(
            "pid {} on host {} since {since}",
            std::process::id(),
            host()
        );
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| file.write_all(format!("{holder}\n").as_bytes()))
            .and_then(|()| file.sync_data())
            .map_err(io)?;
        Ok(Self { _file: file })
    }
}

/// This machine's host name, or `unknown`.
fn host() -> String {
    let mut buffer = [0u8; 256];
    // SAFETY: the buffer is valid for its whole length; gethostname writes at most that much.
    let done = unsafe { libc::gethostname(buffer.as_mut_ptr().cast(), buffer.len()) };
    let end = buffer.iter().position(|&b| b == 0).unwrap_or(buffer.len());
    match std::str::from_utf8(&buffer[..end]) {
        Ok(name) if done == 0 && !name.is_empty() => name.to_owned(),
        _ => "unknown".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_owner_is_refused_with_the_holder_named_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let first = RunLock::acquire(dir.path()).unwrap();
        // A second open file description conflicts even within one process, as another
        // process's would.
        let err = RunLock::acquire(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains(&format!("pid {} on host {}", std::process::id(), host())),
            "{err}"
        );
        assert!(err.contains("in use by"), "{err}");
        drop(first);
        RunLock::acquire(dir.path()).expect("a released run can be taken again");
    }
}
