//! The sandbox's processes as Linux sees them: a member is alive while a process with its own
//! name runs (a zombie counts as gone). `down` kills them; graceful stops are the service
//! script's.

use std::path::Path;
use std::time::{Duration, Instant};

/// How often process state is polled.
const POLL: Duration = Duration::from_millis(50);

/// The name (`comm`, at most 15 bytes) of process `pid`, if it exists.
pub(crate) fn comm(pid: u32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|s| s.trim_end_matches('\n').to_string())
}

/// Whether `pid` is a zombie: exited, not yet reaped by its parent.
fn zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.trim_start().chars().next())
        })
        .is_some_and(|state| state == 'Z' || state == 'X')
}

/// Whether `pid` is a live (not zombie) process named `name`.
pub(crate) fn alive(pid: u32, name: &str) -> bool {
    comm(pid).is_some_and(|c| c == name) && !zombie(pid)
}

/// The pid written in `pid_file`, if it holds one.
pub(crate) fn read_pid(pid_file: &Path) -> Option<u32> {
    std::fs::read_to_string(pid_file)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .filter(|&pid| pid > 1)
}

/// Every live process (pid, name) whose name is one of `names`.
pub(crate) fn find_by_name(names: &[String]) -> Vec<(u32, String)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut found: Vec<(u32, String)> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let name = comm(pid)?;
            (names.contains(&name) && !zombie(pid)).then_some((pid, name))
        })
        .collect();
    found.sort_unstable();
    found
}

fn signal(pid: u32, signo: i32) {
    let Ok(pid) = i32::try_from(pid) else {
        return;
    };
    if pid > 1 {
        // SAFETY: kill(2) takes plain integers and touches no memory of ours.
        unsafe {
            libc::kill(pid, signo);
        }
    }
}

/// Kills every (pid, name) with SIGKILL at once; returns those still alive after `within`.
pub(crate) fn kill(procs: &[(u32, String)], within: Duration) -> Vec<(u32, String)> {
    for (pid, name) in procs {
        if alive(*pid, name) {
            signal(*pid, libc::SIGKILL);
        }
    }
    wait_gone(procs, within)
}

/// Waits until none of `procs` is alive or `within` passes; returns those still alive.
pub(crate) fn wait_gone(procs: &[(u32, String)], within: Duration) -> Vec<(u32, String)> {
    let deadline = Instant::now() + within;
    loop {
        let left: Vec<(u32, String)> = procs
            .iter()
            .filter(|(pid, name)| alive(*pid, name))
            .cloned()
            .collect();
        if left.is_empty() || Instant::now() >= deadline {
            return left;
        }
        std::thread::sleep(POLL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn a_named_process_is_found_killed_and_unreaped_processes_count_as_gone() {
        let dir = tempfile::tempdir().unwrap();
        let name = format!("sbtest{}", std::process::id() % 100_000);
        let link = dir.path().join(&name);
        std::os::unix::fs::symlink("/bin/sleep", &link).unwrap();
        let mut child = Command::new(&link).arg("30").spawn().unwrap();
        let pid = child.id();
        let deadline = Instant::now() + Duration::from_secs(5);
        while !alive(pid, &name) && Instant::now() < deadline {
            std::thread::sleep(POLL);
        }
        assert!(alive(pid, &name), "comm is {:?}", comm(pid));
        assert!(!alive(pid, "other"));
        assert_eq!(
            find_by_name(std::slice::from_ref(&name)),
            vec![(pid, name.clone())]
        );
        // Our own child stays a zombie until we wait: it must already count as gone.
        let left = kill(&[(pid, name.clone())], Duration::from_secs(5));
        assert!(left.is_empty(), "{left:?}");
        child.wait().unwrap();
        assert!(find_by_name(&[name]).is_empty());
    }
}
