//! The metadata file written beside a snapshot by `etcdrill snapshot save`: `PATH.meta.json`,
//! saying which cluster and member it came from, at which revision and time, its size and
//! sha256, and the host it was written on (so `diagnose` can tell whether backups ever leave the
//! etcd hosts).
//!
//! A versioned, persisted format: a reader checks `format` and `version` before trusting a file.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::journal::Timestamp;

/// The `format` of every metadata file.
pub const META_FORMAT: &str = "etcdrill-snapshot-meta";
/// The version written by this etcdrill.
pub const META_VERSION: u32 = 1;
/// The suffix added to the snapshot's path.
pub const META_SUFFIX: &str = ".meta.json";

/// What is known about a saved snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotMeta {
    /// Always [`META_FORMAT`].
    pub format: String,
    /// [`META_VERSION`].
    pub version: u32,
    /// The inventory's cluster name, or the cluster id when there was no inventory.
    pub cluster: String,
    /// The cluster id, hex.
    pub cluster_id: String,
    /// The member streamed from (name).
    pub member: String,
    /// Its member id, hex.
    pub member_id: String,
    /// The endpoint streamed from.
    pub endpoint: String,
    /// That member's etcd version.
    pub etcd_version: String,
    /// The revision the snapshot holds (a lower bound when writes raced the save on etcd < 3.6).
    pub revision: i64,
    /// When the save finished.
    pub time: Timestamp,
    /// Size of the snapshot file, trailer included.
    pub size: u64,
    /// The sha256 of the database (the file's trailer), lowercase hex.
    pub sha256: String,
    /// The host name of the machine that wrote the file.
    pub written_on: String,
}

/// Why a metadata file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    /// It could not be read or written.
    #[error("cannot {what} {}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// It is not a metadata file this etcdrill understands.
    #[error("{} is not an etcdrill snapshot metadata file: {reason}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

impl SnapshotMeta {
    /// The metadata file of the snapshot at `snapshot`: `snapshot` + `.meta.json`.
    pub fn path_for(snapshot: &Path) -> PathBuf {
        let mut path = snapshot.as_os_str().to_owned();
        path.push(META_SUFFIX);
        PathBuf::from(path)
    }

    /// The snapshot a metadata file describes, if `meta` ends with `.meta.json`.
    pub fn snapshot_for(meta: &Path) -> Option<PathBuf> {
        let text = meta.to_str()?;
        text.strip_suffix(META_SUFFIX)
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
    }

    /// Reads and checks a metadata file.
    pub fn read(path: &Path) -> Result<SnapshotMeta, MetaError> {
        let text = std::fs::read_to_string(path).map_err(|source| MetaError::Io {
            what: "read",
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text).map_err(|reason| MetaError::Invalid {
            path: path.to_path_buf(),
            reason,
        })
    }

    /// Parses the JSON text of a metadata file, checking its format and version first.
    pub fn parse(text: &str) -> Result<SnapshotMeta, String> {
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        match value.get("format").and_then(|f| f.as_str()) {
            Some(META_FORMAT) => {}
            other => return Err(format!("format is {other:?}, expected {META_FORMAT:?}")),
        }
        match value.get("version").and_then(|v| v.as_u64()) {
            Some(v) if v == META_VERSION as u64 => {}
            other => {
                return Err(format!(
                    "version {other:?} is not {META_VERSION}, the one this etcdrill reads"
                ));
            }
        }
        serde_json::from_value(value).map_err(|e| e.to_string())
    }

    /// Writes the file (pretty JSON, then a newline) atomically and durably (see
    /// [`crate::atomic_file`]).
    pub fn write(&self, path: &Path) -> Result<(), MetaError> {
        let mut text = serde_json::to_string_pretty(self).expect("metadata serialises");
        text.push('\n');
        crate::atomic_file::write(path, text.as_bytes()).map_err(|source| MetaError::Io {
            what: "write",
            path: path.to_path_buf(),
            source,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A plausible metadata value.
    pub(crate) fn sample() -> SnapshotMeta {
        SnapshotMeta {
            format: META_FORMAT.into(),
            version: META_VERSION,
            cluster: "prod-east".into(),
            cluster_id: "cdf818194e3a8c32".into(),
            member: "cp1".into(),
            member_id: "8e9e05c52164694d".into(),
            endpoint: "https://10.0.0.1:2379".into(),
            etcd_version: "3.5.1".into(),
            revision: 42,
            time: Timestamp(humantime::parse_rfc3339("2024-05-01T10:00:00.000Z").unwrap()),
            size: 20512,
            sha256: "ab".repeat(32),
            written_on: "backup-host".into(),
        }
    }

    #[test]
    fn metadata_round_trips_through_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let snapshot = dir.path().join("etcd.db");
        let path = SnapshotMeta::path_for(&snapshot);
        assert_eq!(path, dir.path().join("etcd.db.meta.json"));
        assert_eq!(SnapshotMeta::snapshot_for(&path), Some(snapshot));
        sample().write(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("\"time\": \"2024-05-01T10:00:00.000Z\""),
            "{text}"
        );
        assert_eq!(SnapshotMeta::read(&path).unwrap(), sample());
    }

    #[test]
    fn foreign_or_newer_files_are_refused() {
        let mut value = serde_json::to_value(sample()).unwrap();
        value["version"] = 2.into();
        let err = SnapshotMeta::parse(&value.to_string()).unwrap_err();
        assert!(err.contains("version Some(2)"), "{err}");
        value["format"] = "something-else".into();
        let err = SnapshotMeta::parse(&value.to_string()).unwrap_err();
        assert!(err.contains("format"), "{err}");
        assert!(SnapshotMeta::parse("{").is_err());
    }
}
