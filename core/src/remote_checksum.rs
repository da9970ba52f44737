//! The one shell script that checks a snapshot's sha256 trailer where the file lies (a node, a
//! backup host), so the check covers the bytes on that disk without bringing them back. It needs
//! POSIX `sh` and coreutils (`stat`, `head`, `tail`, `od`, `sha256sum`) only.
//!
//! An etcd snapshot is the bbolt database followed by the 32-byte sha256 of it; bbolt pages are
//! a multiple of 512 bytes, so a whole snapshot is `512 * k + 32` bytes long. The plan's
//! `etcd.snapshot.verify` step runs the script as it is; the SSH backup store reads its report
//! back with [`reported`].

use crate::render::shell_quote;

/// The script checking the snapshot at `path` (shell-quoted into it). It prints
/// `etcdrill-output size=N` once the file's size is known, then exits 0 after printing
/// `etcdrill-output sha256=HEX` when the trailer matches the data, or exits 1 with the reason on
/// standard error (`... has no sha256 trailer ...`, `... is corrupt ...`, or why the file
/// could not be read).
pub fn script(path: &str) -> String {
    format!(
        "set -eu\n\
         f={}\n\
         size=$(stat -c %s -- \"$f\")\n\
         echo \"etcdrill-output size=$size\"\n\
         [ $((size % 512)) -eq 32 ] || {{ echo \"$f has no sha256 trailer: its size $size is not a multiple of 512 plus 32\" >&2; exit 1; }}\n\
         want=$(tail -c 32 -- \"$f\" | od -An -v -tx1 | tr -d ' \\n')\n\
         got=$(head -c $((size - 32)) -- \"$f\" | sha256sum | cut -d' ' -f1)\n\
         [ \"$want\" = \"$got\" ] || {{ echo \"$f is corrupt: trailer says $want, content hashes to $got\" >&2; exit 1; }}\n\
         echo \"etcdrill-output sha256=$got\"",
        shell_quote(path)
    )
}

/// What a run of [`script`] printed on its standard output.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reported {
    /// The file's size in bytes, once the script could read it.
    pub size: Option<u64>,
    /// The sha256 of the data, printed only when the trailer matches it.
    pub sha256: Option<String>,
}

/// Reads the `etcdrill-output` lines of [`script`]'s standard output.
pub fn reported(stdout: &str) -> Reported {
    let value = |key: &str| {
        stdout.lines().find_map(|line| {
            line.trim()
                .strip_prefix("etcdrill-output ")?
                .strip_prefix(key)?
                .strip_prefix('=')
                .map(str::to_string)
        })
    };
    Reported {
        size: value("size").and_then(|size| size.parse().ok()),
        sha256: value("sha256").filter(|sha256| sha256.len() == 64),
    }
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use sha2::{Digest, Sha256};

    use super::*;

    /// Runs the check with `sh`: whether it exited 0, what it reported, and its standard error.
    fn check(path: &std::path::Path) -> (bool, Reported, String) {
        let out = Command::new("sh")
            .arg("-c")
            .arg(script(path.to_str().unwrap()))
            .output()
            .unwrap();
        (
            out.status.success(),
            reported(&String::from_utf8_lossy(&out.stdout)),
            String::from_utf8_lossy(&out.stderr).into(),
        )
    }

    #[test]
    fn a_good_trailer_passes_and_a_flipped_bit_or_a_cut_does_not() {
        let dir = tempfile::tempdir().unwrap();
        // Quotes, spaces and `$` in the path stay one quoted word.
        let path = dir.path().join("it's a $snap.db");
        let mut bytes = vec![7u8; 4096];
        let digest = crate::humanize::hex(&Sha256::digest(&bytes));
        bytes.extend_from_slice(&Sha256::digest(&bytes));
        std::fs::write(&path, &bytes).unwrap();
        let (ok, report, stderr) = check(&path);
        assert!(ok, "{stderr}");
        assert_eq!(
            report,
            Reported {
                size: Some(4128),
                sha256: Some(digest)
            }
        );

        bytes[100] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        let (ok, report, stderr) = check(&path);
        assert!(!ok);
        assert_eq!((report.size, report.sha256), (Some(4128), None));
        assert!(stderr.contains("is corrupt"), "{stderr}");

        std::fs::write(&path, &bytes[..4000]).unwrap();
        let (ok, report, stderr) = check(&path);
        assert!(!ok);
        assert_eq!((report.size, report.sha256), (Some(4000), None));
        assert!(stderr.contains("has no sha256 trailer"), "{stderr}");
    }

    #[test]
    fn a_missing_file_fails_without_a_size() {
        let dir = tempfile::tempdir().unwrap();
        let (ok, report, stderr) = check(&dir.path().join("absent.db"));
        assert!(!ok);
        assert_eq!(report, Reported::default());
        assert!(!stderr.is_empty());
    }

    #[test]
    fn reported_reads_only_its_own_lines() {
        let sha = "ab".repeat(32);
        let text = format!("noise\netcdrill-output size=12\netcdrill-output sha256={sha}\n");
        assert_eq!(
            reported(&text),
            Reported {
                size: Some(12),
                sha256: Some(sha)
            }
        );
        assert_eq!(
            reported("etcdrill-output sizes=3\netcdrill-output sha256=short"),
            Reported::default()
        );
    }
}
