//! The one way etcdrill replaces a file on this machine: the new content goes to a `.part` file
//! beside the target, is fsync'd, renamed over the target, and the directory is fsync'd. A reader
//! sees the old file or the new one, never half of one, and a crash after [`write`] returns
//! cannot lose the new file.
//!
//! Callers that stream into the part file themselves take a name from [`part_path`] and finish
//! with [`commit`]; async callers call these from a blocking task.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Counts the part files this process has named, so that two writers never share one.
static PARTS: AtomicU64 = AtomicU64::new(0);

/// A fresh temporary path beside `dest` for its new content: `.NAME.PID.N.part` in the same
/// directory (so the rename stays on one filesystem), unique to this writer, hidden, and ending
/// in `.part` so that no reader of the directory takes it for a finished file.
pub fn part_path(dest: &Path) -> PathBuf {
    let name = dest.file_name().unwrap_or(dest.as_os_str());
    let mut part = std::ffi::OsString::from(".");
    part.push(name);
    part.push(format!(
        ".{}.{}.part",
        std::process::id(),
        PARTS.fetch_add(1, Ordering::Relaxed)
    ));
    dest.with_file_name(part)
}

/// Replaces the file at `dest` with `bytes` atomically and durably.
pub fn write(dest: &Path, bytes: &[u8]) -> io::Result<()> {
    let part = part_path(dest);
    let result = File::create(&part)
        .and_then(|mut file| file.write_all(bytes))
        .and_then(|()| commit(&part, dest));
    if result.is_err() {
        // Best effort: the error that matters is the one being returned.
        let _ = std::fs::remove_file(&part);
    }
    result
}

/// Makes the filled part file `part` the file at `dest`: fsyncs it, renames it over `dest` and
/// fsyncs the directory. On failure the part file is left for the caller to remove.
pub fn commit(part: &Path, dest: &Path) -> io::Result<()> {
    File::open(part)?.sync_all()?;
    std::fs::rename(part, dest)?;
    sync_dir_of(dest)
}

/// Fsyncs the directory holding `path`, so that a file created or renamed there survives a crash.
pub fn sync_dir_of(path: &Path) -> io::Result<()> {
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names in `dir`, sorted.
    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn write_replaces_the_file_and_leaves_no_part_behind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.md");
        write(&path, b"first").unwrap();
        write(&path, b"second").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        assert_eq!(names(dir.path()), ["report.md"]);
    }

    #[test]
    fn part_paths_are_hidden_beside_the_target_and_never_shared() {
        let dest = Path::new("/backups/a.db");
        let (one, two) = (part_path(dest), part_path(dest));
        assert_ne!(one, two);
        for part in [one, two] {
            assert_eq!(part.parent(), dest.parent());
            let name = part.file_name().unwrap().to_str().unwrap();
            assert!(
                name.starts_with(".a.db.") && name.ends_with(".part"),
                "{name}"
            );
        }
        let bare = part_path(Path::new("run.json"));
        assert!(bare.to_str().unwrap().starts_with(".run.json."), "{bare:?}");
    }

    #[test]
    fn commit_moves_a_streamed_part_into_place() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("snap.db");
        let part = part_path(&dest);
        std::fs::write(&part, b"streamed").unwrap();
        commit(&part, &dest).unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"streamed");
        assert_eq!(names(dir.path()), ["snap.db"]);
    }

    #[test]
    fn a_failed_write_leaves_the_old_file_and_no_part() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.json");
        write(&path, b"old").unwrap();
        // A directory where the file should be: the rename fails.
        let blocked = dir.path().join("blocked");
        std::fs::create_dir(&blocked).unwrap();
        std::fs::write(blocked.join("inside"), b"x").unwrap();
        assert!(write(&blocked, b"new").is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        assert_eq!(names(dir.path()), ["blocked", "run.json"]);
    }

    #[test]
    fn a_missing_directory_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = write(&dir.path().join("absent/run.json"), b"x").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }
}
