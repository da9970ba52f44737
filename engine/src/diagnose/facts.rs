//! What `diagnose` (and `health`, `status`, `members`) learned about a cluster: each endpoint's
//! status, health and metrics, the member list, the alarms, the backups and the drill reports.
//!
//! Plain data: `collect` fills it from the cluster and the disk, `rules` judges it. Member ids
//! are lowercase hex strings, as etcdctl shows them.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::metrics::MemberMetrics;
use crate::snapshot::meta::SnapshotMeta;

/// Everything `diagnose` judges.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Facts {
    /// The inventory's cluster name, when an inventory was given.
    pub cluster: Option<String>,
    /// The inventory file as given, for the runbook commands the findings suggest.
    pub inventory: Option<String>,
    /// The inventory marks the cluster as production.
    pub production: bool,
    /// The inventory's nodes (empty without an inventory).
    pub nodes: Vec<NodeFacts>,
    /// Every endpoint asked: those given, then members' client URLs found in the member list.
    pub endpoints: Vec<EndpointFacts>,
    /// The member list, from any endpoint that answered; `None` when none did.
    pub members: Option<Vec<MemberFacts>>,
    /// Why the member list could not be read.
    pub member_list_error: Option<String>,
    /// Active alarms.
    pub alarms: Vec<AlarmFacts>,
    /// Why the alarms could not be read.
    pub alarm_error: Option<String>,
    /// The backups found with `--backups`.
    pub backups: BackupFacts,
    /// The drill reports found with `--runs`.
    pub drills: DrillFacts,
    /// When the facts were gathered, Unix seconds.
    pub now: u64,
}

/// An inventory node, as far as diagnosis cares.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeFacts {
    /// Node name.
    pub name: String,
    /// Its address.
    pub address: String,
    /// Its etcd member name.
    pub member: String,
    /// Its client URL.
    pub client_url: String,
}

/// One endpoint.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EndpointFacts {
    /// The client URL.
    pub endpoint: String,
    /// The inventory node with this client URL.
    pub node: Option<String>,
    /// Found in the member list rather than given.
    pub discovered: bool,
    /// Its maintenance status.
    pub status: Option<StatusFacts>,
    /// Why the status could not be read.
    pub status_error: Option<String>,
    /// Whether `endpoint health` would pass (a linearizable read and no alarm).
    pub healthy: Option<bool>,
    /// Why not.
    pub health_error: Option<String>,
    /// How long the health check took, milliseconds.
    pub health_took_ms: Option<u64>,
    /// Figures from its `/metrics`.
    pub metrics: Option<MemberMetrics>,
    /// Why `/metrics` could not be read.
    pub metrics_error: Option<String>,
}

/// `etcdctl endpoint status`, for one endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusFacts {
    /// The member answering, hex.
    pub member_id: String,
    /// The cluster id, hex.
    pub cluster_id: String,
    /// etcd version.
    pub version: String,
    /// Database file size, bytes (what the quota is checked against).
    pub db_size: i64,
    /// Bytes in use in it; the rest is free pages a defrag gives back.
    pub db_size_in_use: i64,
    /// The leader this member knows, hex; `None` when it knows none.
    pub leader: Option<String>,
    /// Raft term.
    pub raft_term: u64,
    /// Raft (committed) index.
    pub raft_index: u64,
    /// Applied index.
    pub raft_applied_index: u64,
    /// The member is a learner.
    pub is_learner: bool,
    /// Errors the member reports, e.g. `alarm:NOSPACE`.
    pub errors: Vec<String>,
    /// The store revision.
    pub revision: i64,
}

/// One member of the member list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberFacts {
    /// Member id, hex.
    pub id: String,
    /// Member name; empty while unstarted.
    pub name: String,
    /// Peer URLs.
    pub peer_urls: Vec<String>,
    /// Client URLs; empty while unstarted.
    pub client_urls: Vec<String>,
    /// A learner (non-voting).
    pub is_learner: bool,
    /// The inventory node it runs on.
    pub node: Option<String>,
}

impl MemberFacts {
    /// How the member is shown: its node, else its name, else `unstarted <id>`.
    pub fn label(&self) -> String {
        match (&self.node, self.name.is_empty()) {
            (Some(node), _) => node.clone(),
            (None, false) => self.name.clone(),
            (None, true) => format!("unstarted {}", self.id),
        }
    }
}

/// An active alarm.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlarmFacts {
    /// The member that raised it, hex.
    pub member_id: String,
    /// How that member is shown.
    pub member: String,
    /// `NOSPACE`, `CORRUPT`.
    pub alarm: String,
}

/// Backups found in the `--backups` destinations.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BackupFacts {
    /// The destinations searched, in the order given; empty when none was given.
    pub destinations: Vec<BackupDestinationFacts>,
    /// Every copy found in any of them, newest first.
    pub backups: Vec<BackupRecord>,
    /// Metadata files that could not be used, and why.
    pub unreadable: Vec<String>,
    /// Copies of other clusters found in the same places, not counted (locations).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub other_clusters: Vec<String>,
    /// IDs this cluster had before snapshot restores, newest first, as etcdrill runs journaled
    /// them: copies taken under them are of the same cluster's earlier incarnation, and count.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub earlier_ids: Vec<ClusterIdChange>,
}

/// A snapshot restore that gave the cluster a new ID, from a run's journal.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterIdChange {
    /// The ID before, hex.
    pub from: String,
    /// The ID after, hex.
    pub to: String,
    /// The run directory of the restore.
    pub run: PathBuf,
}

/// One `--backups` destination.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupDestinationFacts {
    /// The destination as shown, without options: `/DIR`, `ssh://HOST/DIR`, `s3://BUCKET/PREFIX`.
    pub destination: String,
    /// Copies there outlive this machine and the etcd hosts (SSH, S3; not a directory).
    pub off_host: bool,
    /// Why it could not be read.
    pub error: Option<String>,
}

/// One snapshot and its metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackupRecord {
    /// The snapshot: its path in a directory, else its `ssh://` or `s3://` location.
    pub location: String,
    /// The destination it was found in, as shown.
    pub destination: String,
    /// That destination is off-host (SSH, S3).
    pub off_host: bool,
    /// What its metadata says.
    pub meta: SnapshotMeta,
    /// In a directory: the file is there with the recorded size and sha256 trailer. Off-host:
    /// the copy is there with the recorded size (its content is not read back).
    pub good: bool,
    /// Why it is not good.
    pub problem: Option<String>,
    /// When it was taken, Unix seconds.
    pub taken_at: u64,
}

/// Drill reports found in the `--runs` directory.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrillFacts {
    /// The directory searched.
    pub dir: PathBuf,
    /// The newest passing restore drill.
    pub newest_pass: Option<DrillPass>,
    /// Drill reports found, passing or not.
    pub drills_seen: usize,
}

/// A passing restore drill.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrillPass {
    /// The run directory.
    pub run: PathBuf,
    /// The runbook it exercised.
    pub runbook: String,
    /// The inventory it ran on.
    pub inventory: String,
    /// When it ended, Unix seconds.
    pub ended_at: u64,
}
