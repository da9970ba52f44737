//! The catalog of typed actions a step can take, and their arguments.
//!
//! Each action knows whether it is a probe (read-only) or changes state, where it runs, whether it
//! is destructive, and which outputs it produces. The table in [`actions!`] is the one place these
//! facts are written down.

use indexmap::IndexMap;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};

use crate::source::PathSegment;

/// Whether a step only reads (a probe) or changes state (an action).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Nature {
    /// Read-only: safe in check mode and in dry reviews.
    Probe,
    /// Changes state.
    Action,
}

/// Where an action runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// A command on a node, over the node's transport.
    Node,
    /// A call to the etcd API from the controller: one node's endpoint, or the whole cluster's.
    EtcdApi,
    /// On the controller when targeted there, otherwise on the node.
    ControllerOrNode,
    /// On the controller only (`on: controller`).
    Controller,
}

/// Static facts about one kind of action.
#[derive(Debug, Clone, Copy)]
pub struct ActionInfo {
    /// The name used in runbooks, e.g. `etcd.defrag`.
    pub name: &'static str,
    /// Probe or action.
    pub nature: Nature,
    /// Where it runs.
    pub placement: Placement,
    /// Whether it destroys data or membership that a rollback cannot bring back by itself.
    pub destructive: bool,
    /// Outputs later steps may use as `steps.<id>.outputs.<name>`.
    pub outputs: &'static [&'static str],
    /// One line for documentation and plans.
    pub summary: &'static str,
}

macro_rules! actions {
    ($(
        $(#[$doc:meta])*
        $variant:ident = $name:literal ($args:ty) {
            $nature:ident, $placement:ident, destructive: $destructive:expr,
            outputs: [$($output:literal),*], summary: $summary:literal
        }
    )*) => {
        /// The kind of action a step takes.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
        pub enum ActionKind {
            $( $(#[$doc])* #[serde(rename = $name)] $variant, )*
        }

        /// A typed action with its arguments.
        #[derive(Debug, Clone, PartialEq, Serialize)]
        #[serde(tag = "action", content = "with")]
        pub enum Action {
            $( $(#[$doc])* #[serde(rename = $name)] $variant($args), )*
        }

        impl ActionKind {
            /// Every kind, in catalog order.
            pub const ALL: &'static [ActionKind] = &[$(ActionKind::$variant),*];

            /// Static facts about this kind.
            pub fn info(self) -> ActionInfo {
                match self {
                    $(ActionKind::$variant => ActionInfo {
                        name: $name,
                        nature: Nature::$nature,
                        placement: Placement::$placement,
                        destructive: $destructive,
                        outputs: &[$($output),*],
                        summary: $summary,
                    },)*
                }
            }

            /// Parses this kind's `with:` arguments.
            pub fn parse_args(self, with: serde_yaml::Value) -> Result<Action, ArgsError> {
                match self {
                    $(ActionKind::$variant => serde_path_to_error::deserialize(with)
                        .map(Action::$variant)
                        .map_err(ArgsError::from),)*
                }
            }

            /// The JSON Schema of this kind's `with:` arguments.
            pub fn args_schema(self, generator: &mut SchemaGenerator) -> Schema {
                match self {
                    $(ActionKind::$variant => generator.subschema_for::<$args>(),)*
                }
            }
        }

        impl Action {
            /// The kind of this action.
            pub fn kind(&self) -> ActionKind {
                match self {
                    $(Action::$variant(_) => ActionKind::$variant,)*
                }
            }
        }
    };
}

actions! {
    /// A shell script on a node or on the controller.
    Shell = "shell" (ShellArgs) {
        Action, ControllerOrNode, destructive: false, outputs: [],
        summary: "run a shell script"
    }
    /// Health of every endpoint (or one node's).
    EtcdHealth = "etcd.health" (NoArgs) {
        Probe, EtcdApi, destructive: false, outputs: ["healthy", "total"],
        summary: "check endpoint health"
    }
    /// Endpoint status: leader, term, raft index, DB size, version.
    EtcdStatus = "etcd.status" (NoArgs) {
        Probe, EtcdApi, destructive: false,
        outputs: ["leader", "revision", "raft_term", "db_size", "member_count"],
        summary: "read endpoint status"
    }
    /// The member list.
    EtcdMemberList = "etcd.member.list" (NoArgs) {
        Probe, EtcdApi, destructive: false, outputs: ["count", "names", "learners"],
        summary: "list members"
    }
    /// Adds a member, as a learner by default.
    EtcdMemberAdd = "etcd.member.add" (MemberAddArgs) {
        Action, EtcdApi, destructive: false, outputs: ["member_id", "initial_cluster"],
        summary: "add a member"
    }
    /// Promotes a learner to a voting member once it has caught up.
    EtcdMemberPromote = "etcd.member.promote" (MemberNameArgs) {
        Action, EtcdApi, destructive: false, outputs: [],
        summary: "promote a learner"
    }
    /// Removes a member from the cluster.
    EtcdMemberRemove = "etcd.member.remove" (MemberNameArgs) {
        Action, EtcdApi, destructive: true, outputs: [],
        summary: "remove a member"
    }
    /// Streams a snapshot from a member to a file on the controller.
    EtcdSnapshotSave = "etcd.snapshot.save" (SnapshotSaveArgs) {
        Action, EtcdApi, destructive: false, outputs: ["path", "revision", "size", "sha256", "member", "time"],
        summary: "save a snapshot"
    }
    /// Checks a snapshot file's sha256 trailer (and, on the controller, its bbolt structure).
    EtcdSnapshotVerify = "etcd.snapshot.verify" (SnapshotVerifyArgs) {
        Probe, ControllerOrNode, destructive: false, outputs: ["size", "sha256"],
        summary: "verify a snapshot file"
    }
    /// Streams a snapshot file on the controller to the node, read once for every node the step
    /// runs on, hashed on both ends, renamed into place only when the hashes and the sha256
    /// trailer agree.
    EtcdSnapshotDistribute = "etcd.snapshot.distribute" (SnapshotDistributeArgs) {
        Action, Node, destructive: false, outputs: ["path", "size", "sha256"],
        summary: "put a snapshot on every node in one pass"
    }
    /// Restores a snapshot into a new data directory with etcdutl.
    EtcdSnapshotRestore = "etcd.snapshot.restore" (SnapshotRestoreArgs) {
        Action, Node, destructive: true, outputs: [],
        summary: "restore a snapshot into a data dir"
    }
    /// Defragments one member's backend.
    EtcdDefrag = "etcd.defrag" (NoArgs) {
        Action, EtcdApi, destructive: false, outputs: [],
        summary: "defragment"
    }
    /// Compacts the key-value history, keeping a window of recent revisions.
    EtcdCompact = "etcd.compact" (CompactArgs) {
        Action, EtcdApi, destructive: true, outputs: ["revision"],
        summary: "compact history"
    }
    /// Lists active alarms.
    EtcdAlarmList = "etcd.alarm.list" (NoArgs) {
        Probe, EtcdApi, destructive: false, outputs: ["alarms"],
        summary: "list alarms"
    }
    /// Disarms every active alarm.
    EtcdAlarmDisarm = "etcd.alarm.disarm" (NoArgs) {
        Action, EtcdApi, destructive: false, outputs: [],
        summary: "disarm alarms"
    }
    /// Moves leadership to another member; sent to the current leader.
    EtcdMoveLeader = "etcd.move_leader" (MoveLeaderArgs) {
        Action, EtcdApi, destructive: false, outputs: [],
        summary: "move leadership"
    }
    /// Writes a key (canaries, markers).
    EtcdKvPut = "etcd.kv.put" (KvPutArgs) {
        Action, EtcdApi, destructive: false, outputs: ["revision"],
        summary: "put a key"
    }
    /// Reads a key.
    EtcdKvGet = "etcd.kv.get" (KvGetArgs) {
        Probe, EtcdApi, destructive: false, outputs: ["value", "revision"],
        summary: "get a key"
    }
    /// Hash of the key-value store at a revision, per member.
    EtcdHashKv = "etcd.hashkv" (NoArgs) {
        Probe, EtcdApi, destructive: false, outputs: ["hash", "revision"],
        summary: "hash the key-value store"
    }
    /// Stops the etcd member on a node and waits for its process to be gone.
    EtcdStopMember = "etcd.stop_member" (NoArgs) {
        Action, Node, destructive: false, outputs: [],
        summary: "stop the member"
    }
    /// Starts the etcd member on a node.
    EtcdStartMember = "etcd.start_member" (StartMemberArgs) {
        Action, Node, destructive: false, outputs: [],
        summary: "start the member"
    }
    /// Sets etcd flags in the member's manifest or environment file, keeping a copy aside.
    EtcdConfigureMember = "etcd.configure_member" (ConfigureMemberArgs) {
        Action, Node, destructive: false, outputs: [],
        summary: "set member flags"
    }
    /// Puts prepared member data in place of the member's, keeping the old data aside.
    EtcdDataDirReplace = "etcd.data_dir.replace" (DataDirReplaceArgs) {
        Action, Node, destructive: false, outputs: ["swapped_at"],
        summary: "swap in a data dir"
    }
    /// Points a static pod's data volume (the hostPath mounted at `--data-dir`) at another host
    /// directory while the member is stopped, keeping the old manifest for rollback.
    EtcdDataDirRepoint = "etcd.data_dir.repoint" (DataDirRepointArgs) {
        Action, Node, destructive: false, outputs: ["repointed_at"],
        summary: "repoint the data dir's hostPath"
    }
    /// Sets the member's data aside inside its data dir, leaving it without member data.
    EtcdDataDirSetAside = "etcd.data_dir.set_aside" (DataDirSetAsideArgs) {
        Action, Node, destructive: false, outputs: [],
        summary: "set member data aside"
    }
    /// Waits until every endpoint (or a number of members) is healthy, within the step timeout.
    WaitHealthy = "wait.healthy" (WaitHealthyArgs) {
        Probe, EtcdApi, destructive: false, outputs: [],
        summary: "wait until healthy"
    }
    /// Copies a file between the controller and a node.
    FileCopy = "file.copy" (FileCopyArgs) {
        Action, Node, destructive: false, outputs: [],
        summary: "copy a file"
    }
    /// Every endpoint (or at least `min_healthy`) answers health checks.
    VerifyHealthy = "verify.healthy" (VerifyHealthyArgs) {
        Probe, EtcdApi, destructive: false, outputs: [],
        summary: "verify health"
    }
    /// The member list has exactly this many voting members (and learners).
    VerifyMemberCount = "verify.member_count" (VerifyMemberCountArgs) {
        Probe, EtcdApi, destructive: false, outputs: [],
        summary: "verify member count"
    }
    /// A key is present (with a value) or absent.
    VerifyKey = "verify.key" (VerifyKeyArgs) {
        Probe, EtcdApi, destructive: false, outputs: [],
        summary: "verify a key"
    }
    /// Every member reports the same hash-kv at the same revision.
    VerifyHashKv = "verify.hashkv" (NoArgs) {
        Probe, EtcdApi, destructive: false, outputs: [],
        summary: "verify members agree"
    }
    /// No alarm is active.
    VerifyNoAlarms = "verify.no_alarms" (NoArgs) {
        Probe, EtcdApi, destructive: false, outputs: [],
        summary: "verify no alarms"
    }
    /// A leader is elected (optionally a given node).
    VerifyLeader = "verify.leader" (VerifyLeaderArgs) {
        Probe, EtcdApi, destructive: false, outputs: [],
        summary: "verify the leader"
    }
    /// Copies a snapshot on the controller to every destination and reads each copy back.
    BackupShip = "backup.ship" (BackupShipArgs) {
        Action, Controller, destructive: false, outputs: ["copies", "locations"],
        summary: "ship a snapshot off the host"
    }
    /// Deletes the copies a retention policy does not keep, in every destination.
    BackupPrune = "backup.prune" (BackupPruneArgs) {
        Action, Controller, destructive: false, outputs: ["deleted", "kept"],
        summary: "prune old snapshot copies"
    }
}

/// Why `with:` arguments do not fit an action, and at which field.
#[derive(Debug)]
pub struct ArgsError {
    /// Where inside `with:` the problem is; empty for `with:` itself.
    pub field: Vec<PathSegment>,
    /// What is wrong.
    pub error: serde_yaml::Error,
}

impl From<serde_path_to_error::Error<serde_yaml::Error>> for ArgsError {
    fn from(err: serde_path_to_error::Error<serde_yaml::Error>) -> Self {
        use serde_path_to_error::Segment;
        let field = err
            .path()
            .iter()
            .filter_map(|segment| match segment {
                Segment::Map { key } => Some(PathSegment::Key(key.clone())),
                Segment::Seq { index } => Some(PathSegment::Index(*index)),
                Segment::Enum { .. } | Segment::Unknown => None,
            })
            .collect();
        Self {
            field,
            error: err.into_inner(),
        }
    }
}

impl ActionKind {
    /// The name used in runbooks.
    pub fn name(self) -> &'static str {
        self.info().name
    }
}

impl std::fmt::Display for ActionKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// No arguments.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoArgs {}

/// Arguments of `shell`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ShellArgs {
    /// The script, a template: `{{x}}` is shell-quoted, `{{{x}}}` is inserted raw.
    pub run: String,
}

/// Arguments of `etcd.member.add`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberAddArgs {
    /// Member name.
    pub name: String,
    /// Peer URL of the new member.
    pub peer_url: String,
    /// Add as a learner (non-voting until promoted). Default true.
    #[serde(default = "yes")]
    pub learner: bool,
}

/// Arguments naming one member.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberNameArgs {
    /// Member name.
    pub name: String,
}

/// Arguments of `etcd.snapshot.save`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SnapshotSaveArgs {
    /// Where to write the snapshot on the controller.
    pub path: String,
}

/// Arguments of `etcd.snapshot.verify`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SnapshotVerifyArgs {
    /// The snapshot file, on the controller or on the node the step targets.
    pub path: String,
}

/// Arguments of `etcd.snapshot.distribute`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SnapshotDistributeArgs {
    /// The snapshot file on the controller: bbolt data followed by its sha256, as
    /// `etcd.snapshot.save` and `etcdctl snapshot save` write it.
    pub from: String,
    /// Where the copy goes on the node; its directory is created when missing.
    pub to: String,
    /// When `from` does not exist yet, take a new snapshot from a member (the first voting
    /// follower that answers) and write it to `from` while it streams to the nodes: save, copy
    /// and verify in one transfer. A retry or a resumed run finds `from` and reads it, so every
    /// node gets the same snapshot. Give `from` a name no earlier run used (`{{run.dir}}/...`).
    #[serde(default)]
    pub save: bool,
}

/// Arguments of `backup.ship`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BackupShipArgs {
    /// The snapshot file on the controller; its `PATH.meta.json` must be beside it (the
    /// `etcd.snapshot.save` step writes it).
    pub snapshot: String,
    /// Destinations separated by whitespace: absolute directories, `ssh://[USER@]HOST[:PORT]/DIR`
    /// and `s3://BUCKET[/PREFIX]` (credentials from the `AWS_*` environment variables).
    pub to: String,
}

/// Arguments of `backup.prune`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BackupPruneArgs {
    /// Destinations separated by whitespace, as for `backup.ship`.
    #[serde(rename = "in")]
    pub destinations: String,
    /// Keep the newest N copies.
    #[serde(default)]
    pub keep_last: u32,
    /// Keep the newest copy of each of the last N days that have one (UTC).
    #[serde(default)]
    pub keep_daily: u32,
    /// Keep the newest copy of each of the last N weeks that have one (Monday to Sunday, UTC).
    #[serde(default)]
    pub keep_weekly: u32,
}

impl BackupPruneArgs {
    /// The retention policy these arguments give.
    pub fn policy(&self) -> crate::backup::retention::RetentionPolicy {
        crate::backup::retention::RetentionPolicy {
            keep_last: self.keep_last,
            keep_daily: self.keep_daily,
            keep_weekly: self.keep_weekly,
        }
    }
}

/// A problem with an argument's value that its type cannot catch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueProblem {
    /// The field of `with:`.
    pub field: &'static str,
    /// What is wrong.
    pub message: String,
    /// What to write instead.
    pub hint: String,
}

impl Action {
    /// Checks argument values that are known now (not run-time placeholders): destinations and
    /// retention policies, so a bad one stops the run before its first step.
    pub fn check_values(&self) -> Result<(), ValueProblem> {
        let destinations = |field: &'static str, text: &str| {
            if crate::render::has_placeholder(text) {
                return Ok(());
            }
            crate::backup::destination::Destination::parse_list(text)
                .map(drop)
                .map_err(|err| ValueProblem {
                    field,
                    message: err.to_string(),
                    hint: err.hint.to_string(),
                })
        };
        self.check_operands()?;
        match self {
            Action::BackupShip(args) => destinations("to", &args.to),
            Action::BackupPrune(args) => {
                destinations("in", &args.destinations)?;
                args.policy().validate().map_err(|err| ValueProblem {
                    field: "keep_last",
                    message: err.to_string(),
                    hint: "set keep_last, keep_daily or keep_weekly to 1 or more".into(),
                })
            }
            _ => Ok(()),
        }
    }
}

impl Action {
    /// The arguments that commands take as file operands, by field.
    fn operands(&self) -> Vec<(&'static str, &str)> {
        match self {
            Action::EtcdSnapshotSave(args) => vec![("path", &args.path)],
            Action::EtcdSnapshotVerify(args) => vec![("path", &args.path)],
            Action::EtcdSnapshotRestore(args) => {
                vec![("snapshot", &args.snapshot), ("data_dir", &args.data_dir)]
            }
            Action::EtcdDataDirReplace(args) => {
                vec![("with", &args.with), ("keep_old_at", &args.keep_old_at)]
            }
            Action::EtcdDataDirRepoint(args) => vec![("to", &args.to)],
            Action::FileCopy(args) => vec![("from", &args.from), ("to", &args.to)],
            Action::EtcdSnapshotDistribute(args) => vec![("from", &args.from), ("to", &args.to)],
            Action::BackupShip(args) => vec![("snapshot", &args.snapshot)],
            _ => Vec::new(),
        }
    }

    /// Refuses a file operand that begins with `-`: `etcdutl`, `mv`, `cp` would take it as an
    /// option (`--skip-hash-check`, `-rf`). Checked on rendered values, so whatever a parameter,
    /// the inventory or an earlier step's output put there is checked too.
    fn check_operands(&self) -> Result<(), ValueProblem> {
        match self.operands().into_iter().find(|(_, v)| v.starts_with('-')) {
            None => Ok(()),
            Some((field, value)) => Err(ValueProblem {
                field,
                message: format!(
                    "`{field}` is `{value}`, which begins with `-`: a command would take it as an option"
                ),
                hint: "give an absolute path; check the parameter (-p) or inventory value this field is made from".into(),
            }),
        }
    }
}

/// Arguments of `etcd.snapshot.restore`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SnapshotRestoreArgs {
    /// The snapshot file on the node.
    pub snapshot: String,
    /// The new data directory; etcdutl refuses a non-empty one.
    pub data_dir: String,
    /// The new `--initial-cluster-token`: a restore makes a new logical cluster.
    pub cluster_token: String,
    /// Add this many revisions, so watchers never see revisions go backwards (Kubernetes).
    #[serde(default)]
    pub bump_revision: Option<u64>,
    /// Mark the bumped revisions compacted, so watchers re-list (needs `bump_revision`).
    #[serde(default)]
    pub mark_compacted: bool,
    /// Skip the sha256 check, for a raw `member/snap/db` copy that has no trailer.
    #[serde(default)]
    pub skip_hash_check: bool,
}

/// Arguments of `etcd.compact`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CompactArgs {
    /// Revisions of history to keep below the current revision.
    pub keep_revisions: u64,
    /// Compact to this revision; refused when it would drop the kept window.
    #[serde(default)]
    pub revision: Option<u64>,
    /// Wait until the compaction is physically applied to the backend.
    #[serde(default)]
    pub physical: bool,
}

/// Arguments of `etcd.move_leader`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MoveLeaderArgs {
    /// The node to hand leadership to.
    pub to: String,
}

/// Arguments of `etcd.kv.put`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KvPutArgs {
    /// Key.
    pub key: String,
    /// Value.
    pub value: String,
}

/// Arguments of `etcd.kv.get`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KvGetArgs {
    /// Key.
    pub key: String,
}

/// Arguments of `etcd.start_member`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StartMemberArgs {
    /// Start once with `--force-new-cluster`: keeps this member's data and drops every other
    /// member from the membership. Destructive.
    #[serde(default)]
    pub force_new_cluster: bool,
}

/// Arguments of `etcd.configure_member`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfigureMemberArgs {
    /// Flags to set, without the leading dashes, e.g. `initial-cluster-state: existing`.
    #[serde(default)]
    pub set: IndexMap<String, String>,
    /// Flags to remove, without the leading dashes, e.g. `force-new-cluster`.
    #[serde(default)]
    pub remove: Vec<String>,
}

/// Arguments of `etcd.data_dir.replace`. Both are directories directly inside the data dir, so
/// that the swap renames `member/` inside one filesystem (the data dir may be a mount point).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DataDirReplaceArgs {
    /// The prepared directory whose `member/` becomes the member's data.
    pub with: String,
    /// Where the old `member/` is kept (as `KEEP_OLD_AT/member`), for rollback.
    pub keep_old_at: String,
}

/// Arguments of `etcd.data_dir.repoint`: the Kubernetes documentation's restore, which leaves
/// `--data-dir` as it is and points the volume mounted there at a new host directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DataDirRepointArgs {
    /// The host directory holding the restored `member/` that the data volume's hostPath will
    /// name: absolute, outside the data dir. Empty means there is nothing to repoint on this node
    /// (a runbook that offers the repoint to static pods only renders it empty elsewhere).
    pub to: String,
}

/// Arguments of `etcd.data_dir.set_aside`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DataDirSetAsideArgs {
    /// A directory directly inside the data dir that receives `member/` (as `AT/member`).
    pub at: String,
}

/// Arguments of `wait.healthy`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WaitHealthyArgs {
    /// How many members must be healthy; all targeted endpoints by default.
    #[serde(default)]
    pub members: Option<u32>,
}

/// Which way `file.copy` copies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CopyDirection {
    /// From the controller to the node.
    #[default]
    Push,
    /// From the node to the controller.
    Pull,
}

/// Arguments of `file.copy`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileCopyArgs {
    /// Source path (on the controller for a push).
    pub from: String,
    /// Destination path (on the node for a push).
    pub to: String,
    /// `push` (default) or `pull`.
    #[serde(default)]
    pub direction: CopyDirection,
}

/// Arguments of `verify.healthy`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyHealthyArgs {
    /// At least this many healthy endpoints; all by default.
    #[serde(default)]
    pub min_healthy: Option<u32>,
}

/// Arguments of `verify.member_count`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyMemberCountArgs {
    /// Voting members expected.
    pub voting: u32,
    /// Learners expected. Default 0.
    #[serde(default)]
    pub learners: u32,
}

/// Arguments of `verify.key`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyKeyArgs {
    /// Key.
    pub key: String,
    /// Expected value, when present.
    #[serde(default)]
    pub value: Option<String>,
    /// Whether the key must exist. Default true.
    #[serde(default = "yes")]
    pub present: bool,
}

/// Arguments of `verify.leader`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyLeaderArgs {
    /// The node expected to lead; any elected leader by default.
    #[serde(default)]
    pub node: Option<String>,
}

fn yes() -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_serde() {
        for kind in ActionKind::ALL {
            let yaml = serde_yaml::to_string(kind).unwrap();
            assert_eq!(yaml.trim(), kind.name());
            let back: ActionKind = serde_yaml::from_str(&yaml).unwrap();
            assert_eq!(back, *kind);
        }
    }

    #[test]
    fn destructive_actions_are_the_ones_admins_fear() {
        let destructive: Vec<_> = ActionKind::ALL
            .iter()
            .filter(|k| k.info().destructive)
            .map(|k| k.name())
            .collect();
        assert_eq!(
            destructive,
            [
                "etcd.member.remove",
                "etcd.snapshot.restore",
                "etcd.compact"
            ]
        );
    }

    #[test]
    fn probes_produce_no_side_effects_by_catalog() {
        for kind in ActionKind::ALL {
            let info = kind.info();
            if info.nature == Nature::Probe {
                assert!(!info.destructive, "{}", info.name);
            }
        }
    }

    #[test]
    fn args_reject_unknown_fields() {
        let with = serde_yaml::from_str("{key: a, valu: b}").unwrap();
        let err = ActionKind::EtcdKvPut.parse_args(with).unwrap_err();
        assert!(
            err.error.to_string().contains("unknown field `valu`"),
            "{}",
            err.error
        );
        assert_eq!(err.field, [PathSegment::Key("valu".into())]);
    }
}
