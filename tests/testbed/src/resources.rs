//! What a bed leaves on the host: the names of its namespaces, links, state directory and processes,
//! and checking that none of them survived a teardown.

use std::fs;
use std::path::{Path, PathBuf};

use crate::network;

/// Names of everything a bed creates on the host, to check after teardown that nothing is left.
#[derive(Debug, Clone)]
pub struct Resources {
    /// Network namespaces.
    pub netns: Vec<String>,
    /// Links in the host's network namespace (bridge, veths).
    pub links: Vec<String>,
    /// The bed's state directory.
    pub state_dir: PathBuf,
    /// Processes of the nodes: host PID, start time (to tell a reused PID apart), name.
    pub processes: Vec<(u32, u64, String)>,
}

impl Resources {
    /// Everything of the bed still present on the host, one description per item; empty after a
    /// complete teardown.
    pub fn remaining(&self) -> Vec<String> {
        let mut left = Vec::new();
        let netns = network::list_netns().unwrap_or_default();
        for name in &self.netns {
            if netns.contains(name) || Path::new("/run/netns").join(name).exists() {
                left.push(format!("network namespace {name}"));
            }
        }
        let links = network::list_links().unwrap_or_default();
        left.extend(
            self.links
                .iter()
                .filter(|l| links.contains(l))
                .map(|l| format!("link {l}")),
        );
        if self.state_dir.exists() {
            left.push(format!("state directory {}", self.state_dir.display()));
        }
        for (pid, start, name) in &self.processes {
            if process_start_time(*pid) == Some(*start) {
                left.push(format!("process {pid} ({name})"));
            }
        }
        let state_dir = format!("{}/", self.state_dir.display());
        let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        left.extend(
            mounts
                .lines()
                .filter(|line| {
                    line.contains(&state_dir)
                        || self
                            .netns
                            .iter()
                            .any(|n| line.contains(&format!("/netns/{n} ")))
                })
                .map(|line| format!("mount {line}")),
        );
        left
    }
}

/// The parent PID of process `pid` (field 4 of `/proc/<pid>/stat`).
pub(crate) fn parent_of(pid: u32) -> Option<u32> {
    stat_field(pid, 1)
}

/// Start time of process `pid` in clock ticks since boot (field 22 of `/proc/<pid>/stat`).
pub(crate) fn process_start_time(pid: u32) -> Option<u64> {
    stat_field(pid, 19)
}

/// Field `3 + index` of `/proc/<pid>/stat`.
fn stat_field<T: std::str::FromStr>(pid: u32, index: usize) -> Option<T> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parentheses; fields resume after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_whitespace().nth(index)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_process_start_time() {
        let own = process_start_time(std::process::id());
        assert!(own.is_some_and(|t| t > 0));
        assert_eq!(process_start_time(u32::MAX), None);
        assert_eq!(
            parent_of(std::process::id()),
            Some(std::os::unix::process::parent_id())
        );
    }
}
