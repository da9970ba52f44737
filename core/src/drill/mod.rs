//! A drill file: which runbook to rehearse on which inventory, what disaster to stage first, and
//! what must hold afterwards.

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::diagnostic::{DiagnosticSink, Diagnostics};
use crate::document::Document;
use crate::human_duration::HumanDuration;
use crate::source::{SourceFile, YamlPath};

/// A drill as written.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Drill {
    /// Short name, e.g. `staging-restore`.
    pub name: String,
    /// One line saying what the drill proves.
    pub summary: String,
    /// The inventory file, relative to the drill file.
    pub inventory: String,
    /// The runbook file, relative to the drill file.
    pub runbook: String,
    /// Parameters for the runbook (as in `-p`), by name.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    #[schemars(with = "IndexMap<String, serde_json::Value>")]
    pub params: IndexMap<String, serde_yaml::Value>,
    /// The disaster staged before the runbook runs.
    pub disaster: Disaster,
    /// Data written before the disaster, so that the restore has something to bring back.
    #[serde(default)]
    pub seed: Seed,
    /// What must hold after the runbook.
    #[serde(default)]
    pub expect: Expectations,
}

/// The disaster a drill stages. Exactly one form is given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Disaster {
    /// The data must go back to a snapshot: the drill saves one, writes keys after it (which the
    /// restore must make vanish) and passes its path to the runbook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore: Option<RestoreDisaster>,
    /// A member is lost for good: its etcd is stopped and its data dir deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lose_member: Option<LoseMember>,
    /// The majority is lost for good: every member but the survivor is stopped and wiped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lose_majority: Option<LoseMajority>,
}

/// A restore disaster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RestoreDisaster {
    /// The runbook parameter that receives the snapshot's path. Default `snapshot`.
    #[serde(default = "default_snapshot_param")]
    pub snapshot_param: String,
    /// The node whose member the snapshot is taken from; the first node by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
}

fn default_snapshot_param() -> String {
    "snapshot".into()
}

/// A lost member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LoseMember {
    /// The node whose member is lost.
    pub node: String,
}

/// A lost majority.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LoseMajority {
    /// The node that keeps its member and data.
    pub survivor: String,
}

/// Data the drill writes before the disaster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Seed {
    /// How many keys. Default 100.
    #[serde(default = "default_seed_keys")]
    pub keys: u32,
    /// Bytes per value. Default 256.
    #[serde(default = "default_seed_bytes")]
    pub value_bytes: u32,
}

impl Default for Seed {
    fn default() -> Self {
        Self {
            keys: default_seed_keys(),
            value_bytes: default_seed_bytes(),
        }
    }
}

fn default_seed_keys() -> u32 {
    100
}

fn default_seed_bytes() -> u32 {
    256
}

/// What must hold after the runbook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Expectations {
    /// Voting members expected; the inventory's node count by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub members: Option<u32>,
    /// The node expected to lead; any elected leader by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader: Option<String>,
    /// How long the cluster may take to pass every check after the runbook ends. Default 2m.
    #[serde(default = "default_settle")]
    pub settle: HumanDuration,
}

impl Default for Expectations {
    fn default() -> Self {
        Self {
            members: None,
            leader: None,
            settle: default_settle(),
        }
    }
}

fn default_settle() -> HumanDuration {
    HumanDuration::from_secs(120)
}

/// The disaster of a drill, once checked: exactly one form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DisasterKind {
    /// Back to a snapshot.
    Restore(RestoreDisaster),
    /// A member lost for good.
    LoseMember(LoseMember),
    /// The majority lost for good.
    LoseMajority(LoseMajority),
}

impl DisasterKind {
    /// The disaster's key in a drill file: `restore`, `lose_member`, `lose_majority`.
    pub fn name(&self) -> &'static str {
        match self {
            DisasterKind::Restore(_) => "restore",
            DisasterKind::LoseMember(_) => "lose_member",
            DisasterKind::LoseMajority(_) => "lose_majority",
        }
    }
}

impl Drill {
    /// Parses and checks a drill file on its own (its inventory and runbook are checked when the
    /// drill is compiled).
    pub fn load(source: SourceFile) -> Result<Document<Drill>, Diagnostics> {
        let document = Document::<Drill>::parse(source)?;
        let mut sink = DiagnosticSink::default();
        if let Err(problem) = document.value.disaster_kind(&document) {
            problem.iter().cloned().for_each(|d| sink.push(d));
        }
        if document.value.seed.keys == 0 {
            sink.push(
                document
                    .error_at(
                        &YamlPath::root().key("seed").key("keys"),
                        "a drill needs at least one seeded key",
                    )
                    .hint("the seeded keys are what the verification counts"),
            );
        }
        sink.finish(document)
    }

    /// The disaster's one form.
    pub fn disaster_kind(&self, document: &Document<Drill>) -> Result<DisasterKind, Diagnostics> {
        let disaster = &self.disaster;
        let given: Vec<DisasterKind> = [
            disaster.restore.clone().map(DisasterKind::Restore),
            disaster.lose_member.clone().map(DisasterKind::LoseMember),
            disaster
                .lose_majority
                .clone()
                .map(DisasterKind::LoseMajority),
        ]
        .into_iter()
        .flatten()
        .collect();
        match <[DisasterKind; 1]>::try_from(given) {
            Ok([kind]) => Ok(kind),
            Err(given) => Err(document
                .error_at(
                    &YamlPath::root().key("disaster"),
                    format!("`disaster` names {} forms", given.len()),
                )
                .expected("exactly one of `restore: {}`, `lose_member: {node}` or `lose_majority: {survivor}`")
                .into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Document<Drill>, String> {
        Drill::load(SourceFile::new("drill.yaml", text)).map_err(|e| e.to_string())
    }

    const HEAD: &str = "name: d\nsummary: s\ninventory: inv.yaml\nrunbook: rb.yaml\n";

    #[test]
    fn a_drill_names_exactly_one_disaster() {
        let drill = load(&format!("{HEAD}disaster: {{restore: {{}}}}\n")).unwrap();
        assert_eq!(
            drill.value.disaster_kind(&drill).unwrap(),
            DisasterKind::Restore(RestoreDisaster {
                snapshot_param: "snapshot".into(),
                from: None
            })
        );
        let err = load(&format!("{HEAD}disaster: {{}}\n")).unwrap_err();
        assert!(err.contains("`disaster` names 0 forms"), "{err}");
        let err = load(&format!(
            "{HEAD}disaster: {{restore: {{}}, lose_member: {{node: a}}}}\n"
        ))
        .unwrap_err();
        assert!(err.contains("names 2 forms"), "{err}");
    }

    #[test]
    fn defaults_are_sensible() {
        let drill = load(&format!(
            "{HEAD}disaster: {{lose_majority: {{survivor: cp1}}}}\n"
        ))
        .unwrap();
        assert_eq!(
            drill.value.seed,
            Seed {
                keys: 100,
                value_bytes: 256
            }
        );
        assert_eq!(drill.value.expect.settle, HumanDuration::from_secs(120));
    }

    #[test]
    fn unknown_fields_are_located() {
        let err = load(&format!(
            "{HEAD}disaster: {{restore: {{}}}}\nexpect: {{memebrs: 3}}\n"
        ))
        .unwrap_err();
        assert!(err.contains("unknown field `memebrs`"), "{err}");
        assert!(err.contains("drill.yaml:6:"), "{err}");
    }
}
