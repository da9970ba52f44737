//! A run's directory: `run.json` (what was run, to resume it), `plan.json` (the reviewed plan) and
//! `journal.jsonl` (what happened), under `<work_dir>/runs/<run id>/`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::plan::Plan;

/// The `format` of `run.json`.
const RECORD_FORMAT: &str = "etcdrill-run";
/// The version of `run.json` this build writes and reads.
const RECORD_VERSION: u32 = 1;

/// Why a run directory could not be made or read.
#[derive(Debug, thiserror::Error)]
pub enum RunDirError {
    /// A file system operation failed.
    #[error("failed to {what} {path}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// `run.json` is not a run record this build understands.
    #[error("{path} is not an etcdrill run record of version {RECORD_VERSION}")]
    Format {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// No run directory by that name.
    #[error("no run `{0}`: give a run directory, or a run id under the work dir's `runs/`")]
    NotFound(String),
}

/// A parameter as given to a run: its value, or for a secret only a slow salted hash of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedParam {
    /// Name.
    pub name: String,
    /// The value as given, unless secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<serde_yaml::Value>,
    /// An Argon2id hash of the secret (PHC string, random salt), to tell whether the same secret
    /// is given again. Slow and salted per run, so that run.json does not let anyone check
    /// guesses of a weak secret quickly offline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_hash: Option<String>,
    /// What runs recorded before secret_hash: sha256 of the run id and the secret. Read, to
    /// resume those runs; never written.
    #[serde(default, skip_serializing)]
    pub secret_digest: Option<String>,
}

/// What a run was started with: enough to compile the same plan again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Always `etcdrill-run`.
    pub format: String,
    /// Record version.
    pub version: u32,
    /// The run.
    pub run_id: String,
    /// Runbook file, absolute (or `builtin:NAME`), to read it again from any directory.
    pub runbook: PathBuf,
    /// Inventory file, absolute.
    pub inventory: PathBuf,
    /// The runbook's path as given, when it differs: the plan names its files so, and a resumed
    /// run must compile to the same plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runbook_as_given: Option<PathBuf>,
    /// The inventory's path as given, when it differs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inventory_as_given: Option<PathBuf>,
    /// Parameters given with `-p` (defaults are not recorded: they are in the runbook).
    pub params: Vec<RecordedParam>,
    /// Check mode.
    pub check: bool,
}

impl RunRecord {
    /// A record for a new run. Files are recorded by absolute path, so that `resume` and
    /// `rollback` find them from any directory; names that are not files (`builtin:NAME`) as given.
    pub fn new(run_id: &str, runbook: &Path, inventory: &Path, check: bool) -> Self {
        Self {
            format: RECORD_FORMAT.into(),
            version: RECORD_VERSION,
            run_id: run_id.into(),
            runbook: absolute_file(runbook),
            inventory: absolute_file(inventory),
            runbook_as_given: as_given(runbook),
            inventory_as_given: as_given(inventory),
            params: Vec::new(),
            check,
        }
    }

    /// A record for a new run of `runbook` with these parameter values; secret ones are kept
    /// only as salted digests.
    pub fn with_params(
        run_id: &str,
        paths: (&Path, &Path),
        check: bool,
        runbook: &crate::runbook::Runbook,
        params: &[crate::plan::ParamInput],
    ) -> Self {
        let mut record = Self::new(run_id, paths.0, paths.1, check);
        for input in params {
            let secret = runbook.params.get(&input.name).is_some_and(|p| p.secret);
            record.add_param(&input.name, &input.value, secret);
        }
        record
    }

    /// Records a parameter; a secret one only as a slow salted hash.
    pub fn add_param(&mut self, name: &str, value: &serde_yaml::Value, secret: bool) {
        self.params.push(if secret {
            RecordedParam {
                name: name.into(),
                value: None,
                secret_hash: Some(secret_hash(value)),
                secret_digest: None,
            }
        } else {
            RecordedParam {
                name: name.into(),
                value: Some(value.clone()),
                secret_hash: None,
                secret_digest: None,
            }
        });
    }

    /// The runbook's path as the plan names it.
    pub fn runbook_shown(&self) -> &Path {
        self.runbook_as_given.as_deref().unwrap_or(&self.runbook)
    }

    /// The inventory's path as the plan names it.
    pub fn inventory_shown(&self) -> &Path {
        self.inventory_as_given
            .as_deref()
            .unwrap_or(&self.inventory)
    }

    /// Whether `value` is the secret recorded for `name`.
    pub fn secret_matches(&self, name: &str, value: &serde_yaml::Value) -> bool {
        use argon2::password_hash::{PasswordHash, PasswordVerifier};
        let text = secret_text(value);
        self.params.iter().any(|p| {
            p.name == name
                && match (&p.secret_hash, &p.secret_digest) {
                    (Some(hash), _) => PasswordHash::new(hash).is_ok_and(|hash| {
                        argon2::Argon2::default()
                            .verify_password(text.as_bytes(), &hash)
                            .is_ok()
                    }),
                    (None, Some(digest)) => *digest == legacy_digest(&self.run_id, &text),
                    (None, None) => false,
                }
        })
    }
}

/// `path` made absolute when it names a file; anything else as it is.
fn absolute_file(path: &Path) -> PathBuf {
    if path.is_file() {
        std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
    } else {
        path.to_owned()
    }
}

/// `path` when recording it absolute changes it.
fn as_given(path: &Path) -> Option<PathBuf> {
    (absolute_file(path) != path).then(|| path.to_owned())
}

/// The text a secret is hashed as.
fn secret_text(value: &serde_yaml::Value) -> String {
    serde_yaml::to_string(value).unwrap_or_default()
}

/// Argon2id with its default costs (19 MiB, 2 passes: OWASP's minimum for passwords) and a
/// random salt, as a PHC string.
fn secret_hash(value: &serde_yaml::Value) -> String {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let mut salt = [0u8; 16];
    fill_random(&mut salt);
    let salt = SaltString::encode_b64(&salt).expect("16 bytes make a valid salt");
    argon2::Argon2::default()
        .hash_password(secret_text(value).as_bytes(), &salt)
        .expect("argon2 hashes any input with its default parameters")
        .to_string()
}

/// Random bytes from the kernel; a time-and-pid mix if /dev/urandom cannot be read (a salt
/// needs to be unique, not secret).
fn fill_random(bytes: &mut [u8]) {
    use std::io::Read;
    let read = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(bytes));
    if read.is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let mixed = Sha256::digest(format!("{nanos}{}", std::process::id()).as_bytes());
        for (byte, from) in bytes.iter_mut().zip(mixed.iter()) {
            *byte = *from;
        }
    }
}

fn legacy_digest(run_id: &str, text: &str) -> String {
    let digest = Sha256::digest(format!("{run_id}\0{text}").as_bytes());
    crate::humanize::hex(&digest)
}

/// A run's directory.
#[derive(Debug, Clone)]
pub struct RunDir {
    /// The run id (the directory's name).
    pub id: String,
    /// The directory.
    pub path: PathBuf,
}

impl RunDir {
    /// Makes the directory of a new run of `runbook` under `<work_dir>/runs/`.
    pub fn create(work_dir: &Path, runbook: &str) -> Result<Self, RunDirError> {
        let id = new_run_id(runbook);
        let path = work_dir.join("runs").join(&id);
        std::fs::create_dir_all(&path).map_err(|source| RunDirError::Io {
            what: "create run directory",
            path: path.clone(),
            source,
        })?;
        Ok(Self { id, path })
    }

    /// Finds an existing run by directory path or by id under `<work_dir>/runs/`.
    pub fn open(run: &str, work_dir: &Path) -> Result<Self, RunDirError> {
        let candidates = [PathBuf::from(run), work_dir.join("runs").join(run)];
        let path = candidates
            .into_iter()
            .find(|p| p.join("run.json").is_file())
            .ok_or_else(|| RunDirError::NotFound(run.into()))?;
        let id = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| run.into());
        Ok(Self { id, path })
    }

    /// The journal file.
    pub fn journal(&self) -> PathBuf {
        self.path.join("journal.jsonl")
    }

    /// Writes `run.json`.
    pub fn write_record(&self, record: &RunRecord) -> Result<(), RunDirError> {
        let json = serde_json::to_string_pretty(record).expect("a run record serialises");
        self.write("run.json", &json)
    }

    /// Reads `run.json`.
    pub fn read_record(&self) -> Result<RunRecord, RunDirError> {
        let path = self.path.join("run.json");
        let text = std::fs::read_to_string(&path).map_err(|source| RunDirError::Io {
            what: "read",
            path: path.clone(),
            source,
        })?;
        let record: RunRecord =
            serde_json::from_str(&text).map_err(|source| RunDirError::Format {
                path: path.clone(),
                source,
            })?;
        if record.format != RECORD_FORMAT || record.version != RECORD_VERSION {
            let source = serde::de::Error::custom(format!(
                "format `{}` version {}",
                record.format, record.version
            ));
            return Err(RunDirError::Format { path, source });
        }
        Ok(record)
    }

    /// Writes the reviewed plan as `plan.json` (secrets masked, as in every plan document).
    pub fn write_plan(&self, plan: &Plan) -> Result<(), RunDirError> {
        let json = serde_json::to_string_pretty(&plan.document()).expect("a plan serialises");
        self.write("plan.json", &json)
    }

    /// Replaces the file `name` atomically and durably: a crash never leaves half a record.
    fn write(&self, name: &str, text: &str) -> Result<(), RunDirError> {
        let path = self.path.join(name);
        let text = format!("{text}\n");
        crate::atomic_file::write(&path, text.as_bytes()).map_err(|source| RunDirError::Io {
            what: "write",
            path,
            source,
        })
    }
}

/// `20261126T001500Z-restore-3-node-1a2b3c`: sortable by time, readable, unique.
fn new_run_id(runbook: &str) -> String {
    let now = std::time::SystemTime::now();
    let stamp: String = humantime::format_rfc3339_seconds(now)
        .to_string()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    let nanos = now
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let salt = Sha256::digest(format!("{nanos}{}{runbook}", std::process::id()).as_bytes());
    let name: String = runbook
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(40)
        .collect();
    format!(
        "{stamp}-{name}-{:02x}{:02x}{:02x}",
        salt[0], salt[1], salt[2]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_keep_secrets_out() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::create(dir.path(), "restore-3-node").unwrap();
        let mut record =
            RunRecord::new(&run.id, Path::new("rb.yaml"), Path::new("inv.yaml"), false);
        record.add_param("snapshot", &"/b/s.db".into(), false);
        record.add_param("token", &"hunter2".into(), true);
        run.write_record(&record).unwrap();
        let text = std::fs::read_to_string(run.path.join("run.json")).unwrap();
        assert!(!text.contains("hunter2"), "{text}");
        let back = RunDir::open(&run.id, dir.path())
            .unwrap()
            .read_record()
            .unwrap();
        assert_eq!(back, record);
        assert!(back.secret_matches("token", &"hunter2".into()));
        assert!(!back.secret_matches("token", &"hunter3".into()));
        // Nothing in the record checks a guess quickly: no unsalted or fast digest of it.
        let fast = legacy_digest(&run.id, &secret_text(&"hunter2".into()));
        assert!(!text.contains(&fast), "{text}");
        assert!(text.contains("$argon2id$"), "{text}");
    }

    #[test]
    fn runs_recorded_with_the_old_digest_still_check_their_secret() {
        let mut record = RunRecord::new("r1", Path::new("rb.yaml"), Path::new("i.yaml"), false);
        record.params.push(RecordedParam {
            name: "token".into(),
            value: None,
            secret_hash: None,
            secret_digest: Some(legacy_digest("r1", &secret_text(&"hunter2".into()))),
        });
        assert!(record.secret_matches("token", &"hunter2".into()));
        assert!(!record.secret_matches("token", &"hunter3".into()));
    }

    #[test]
    fn files_are_recorded_absolute_with_the_path_as_given_beside() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("rb.yaml"), "").unwrap();
        let relative = Path::new("rb.yaml");
        let absolute = dir.path().join("rb.yaml");
        let record = RunRecord::new("r", &absolute, Path::new("builtin:defrag"), false);
        assert_eq!(record.runbook, absolute);
        assert_eq!(record.runbook_as_given, None);
        assert_eq!(record.inventory, Path::new("builtin:defrag"));
        // A relative path is resolved against the working directory, and kept as given.
        let cwd = std::env::current_dir().unwrap();
        let here = cwd.join("Cargo.toml");
        let record = RunRecord::new("r", Path::new("Cargo.toml"), relative, false);
        assert_eq!(record.runbook, here);
        assert_eq!(record.runbook_shown(), Path::new("Cargo.toml"));
    }

    #[test]
    fn run_ids_sort_by_time_and_name_the_runbook() {
        let id = new_run_id("restore 3/node");
        assert!(id.contains("-restore_3_node-"), "{id}");
        assert!(id.starts_with("20"), "{id}");
        assert_ne!(new_run_id("a"), new_run_id("a"));
    }

    #[test]
    fn unknown_runs_are_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = RunDir::open("nope", dir.path()).unwrap_err().to_string();
        assert!(err.contains("no run `nope`"), "{err}");
    }
}
