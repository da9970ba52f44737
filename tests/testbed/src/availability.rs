//! Whether this machine can host a bed, and skipping or failing tests that need one.

use std::process::Command;

use crate::binaries::{EtcdBinaries, HelperBinaries, on_path};
use crate::exec::run;
use crate::{BedConfig, BedError};

/// Set to `1` to make a missing test bed a test failure instead of a skip (`.ci/test` sets it on CI).
pub const REQUIRED_ENV: &str = "ETCDRILL_TESTBED_REQUIRED";

/// Host programs a bed runs.
const TOOLS: [&str; 11] = [
    "ip",
    "unshare",
    "nsenter",
    "mount",
    "openssl",
    "ssh",
    "ssh-keygen",
    "pgrep",
    "setsid",
    "hostname",
    "/usr/sbin/sshd",
];

/// Checks that a bed for `config` can start here: root, the tools, namespaces, etcd's and the bed's
/// own binaries. The error says what is missing.
pub fn check(config: &BedConfig) -> Result<(), BedError> {
    let unavailable = |reason: String| Err(BedError::Unavailable { reason });
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid = status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1));
    if euid != Some("0") {
        return unavailable(
            "the test bed needs root (network, mount and PID namespaces, sshd on port 22)"
                .to_owned(),
        );
    }
    let missing: Vec<&str> = TOOLS
        .into_iter()
        .filter(|tool| on_path(tool).is_none())
        .collect();
    if !missing.is_empty() {
        return unavailable(format!(
            "missing programs: {} (run .ci/setup)",
            missing.join(", ")
        ));
    }
    let mut probe = Command::new("unshare");
    probe.args(["--net", "--mount", "--uts", "--pid", "--fork", "true"]);
    let output = run(probe, None)?;
    if !output.success() {
        return unavailable(format!(
            "cannot create namespaces: {}",
            output.stderr.trim()
        ));
    }
    EtcdBinaries::locate(config.version)?;
    HelperBinaries::locate()?;
    Ok(())
}

/// True when a bed for `config` can start here. Otherwise prints why and returns false, so the test can
/// return early (a clean skip), unless `CI` or `ETCDRILL_TESTBED_REQUIRED=1` is set: then it panics,
/// because on CI a skipped bed test is a failure.
///
/// ```no_run
/// # use etcdrill_testbed::{require, Bed, BedConfig};
/// let config = BedConfig::new(3);
/// if !require(&config) {
///     return;
/// }
/// let bed = Bed::start(config).unwrap();
/// ```
#[track_caller]
pub fn require(config: &BedConfig) -> bool {
    match check(config) {
        Ok(()) => true,
        Err(error) if required() => {
            panic!("{error}\n({REQUIRED_ENV}=1 or CI is set, so the test bed is required)")
        }
        Err(error) => {
            eprintln!("SKIPPED: {error}\n(set {REQUIRED_ENV}=1 to make this a failure)");
            false
        }
    }
}

/// Whether the environment demands the bed (`ETCDRILL_TESTBED_REQUIRED=1`, or `CI` set and not `false`).
fn required() -> bool {
    let var = |name| std::env::var(name).unwrap_or_default();
    var(REQUIRED_ENV) == "1" || !matches!(var("CI").as_str(), "" | "0" | "false")
}
