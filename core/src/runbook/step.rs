//! A runbook step and the small values it is made of: targets, needs, retries, outputs, rollback.

use std::borrow::Cow;
use std::fmt;

use indexmap::IndexMap;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{self, Deserializer, MapAccess, value::MapAccessDeserializer};
use serde::{Deserialize, Serialize, Serializer};

use super::action::ActionKind;
use crate::human_duration::HumanDuration;

/// One step of a runbook.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Unique id, used by `needs` and in `steps.<id>.outputs.<name>`.
    pub id: String,
    /// What the step does, for people.
    pub title: String,
    /// Longer explanation shown in plans and reports.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Where it runs: `controller`, `cluster`, `each`, `leader`, `followers`, `node:NAME`, `group:NAME`.
    pub on: Target,
    /// The typed action.
    pub action: ActionKind,
    /// The action's arguments; string values are templates.
    #[serde(default, skip_serializing_if = "serde_yaml::Mapping::is_empty")]
    #[schemars(with = "IndexMap<String, serde_json::Value>")]
    pub with: serde_yaml::Mapping,
    /// Steps this one waits for: an id, or `{step, outcome, pairing}`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub needs: Vec<Need>,
    /// Runs only when this expression is true, e.g. `params.rehearse` or `(eq params.mode "snapshot")`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<String>,
    /// Longest time one attempt may take.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<HumanDuration>,
    /// Attempts and backoff on failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<Retries>,
    /// Values captured from a `shell` step's output, for later steps.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub outputs: IndexMap<String, OutputCapture>,
    /// What undoes this step: `natural` (the action's own, the default), `none`, or a step body.
    #[serde(default, skip_serializing_if = "RollbackSpec::is_natural")]
    pub rollback: RollbackSpec,
    /// A question a person must answer yes to before the step runs (guided recovery).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirm: Option<String>,
    /// Declares a `shell` step destructive; typed actions infer it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destructive: Option<bool>,
    /// Declares that running the step twice is harmless (resume may re-run it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotent: Option<bool>,
    /// Declares a `shell` step read-only (a probe); typed actions infer it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe: Option<bool>,
    /// Per-node steps run one node at a time, in inventory order, instead of in parallel.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub serial: bool,
}

/// Where a step runs.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    /// Once, on the machine running etcdrill.
    Controller,
    /// Once, for the cluster as a whole (etcd API calls to every endpoint).
    Cluster,
    /// Once per inventory node.
    Each,
    /// On one named node.
    Node(String),
    /// Once per node of a named group.
    Group(String),
    /// On the current leader, resolved at run time.
    Leader,
    /// Once per follower, resolved at run time.
    Followers,
}

impl Target {
    /// Whether this target yields one step instance per node.
    pub fn is_per_node(&self) -> bool {
        !matches!(self, Target::Controller | Target::Cluster)
    }

    /// Whether this target can yield more than one instance (`each`, `group:`, `leader`,
    /// `followers`): the targets whose instances pair node to node by default.
    pub fn is_multi_node(&self) -> bool {
        self.is_per_node() && !matches!(self, Target::Node(_))
    }

    /// Whether the nodes are only known at run time.
    pub fn is_runtime_role(&self) -> bool {
        matches!(self, Target::Leader | Target::Followers)
    }

    const FORMS: &'static str =
        "`controller`, `cluster`, `each`, `leader`, `followers`, `node:NAME` or `group:NAME`";
}

impl std::str::FromStr for Target {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let named = |kind: &str, name: &str| {
            if name.is_empty() {
                Err(format!("`{kind}:` needs a name after the colon"))
            } else {
                Ok(name.to_owned())
            }
        };
        match text {
            "controller" => Ok(Target::Controller),
            "cluster" => Ok(Target::Cluster),
            "each" => Ok(Target::Each),
            "leader" => Ok(Target::Leader),
            "followers" => Ok(Target::Followers),
            _ => match text.split_once(':') {
                Some(("node", name)) => named("node", name).map(Target::Node),
                Some(("group", name)) => named("group", name).map(Target::Group),
                _ => Err(format!(
                    "unknown target `{text}`, expected {}",
                    Target::FORMS
                )),
            },
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Controller => f.write_str("controller"),
            Target::Cluster => f.write_str("cluster"),
            Target::Each => f.write_str("each"),
            Target::Node(name) => write!(f, "node:{name}"),
            Target::Group(name) => write!(f, "group:{name}"),
            Target::Leader => f.write_str("leader"),
            Target::Followers => f.write_str("followers"),
        }
    }
}

impl Serialize for Target {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Target {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl de::Visitor<'_> for Visitor {
            type Value = Target;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a target: {}", Target::FORMS)
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Target, E> {
                text.parse().map_err(E::custom)
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

impl JsonSchema for Target {
    fn schema_name() -> Cow<'static, str> {
        "Target".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "Where the step runs.",
            "pattern": "^(controller|cluster|each|leader|followers|node:.+|group:.+)$"
        })
    }
}

/// Which outcome of a dependency a step waits for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The dependency succeeded (the default).
    #[default]
    Success,
    /// The dependency failed: the step is the alternative path.
    Failure,
    /// The dependency finished, whichever way.
    Always,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Always => "always",
        })
    }
}

/// How instances of per-node steps match up along a `needs` edge.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Pairing {
    /// Node to node when both steps run on several nodes (`each`, `group:`, `leader`,
    /// `followers`), otherwise every instance (the default).
    #[default]
    Auto,
    /// Each instance waits for the dependency's instance on the same node.
    Node,
    /// Each instance waits for every instance of the dependency.
    All,
}

/// A dependency on another step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, remote = "Self")]
pub struct Need {
    /// The step waited for.
    pub step: String,
    /// The outcome waited for.
    #[serde(default)]
    pub outcome: Outcome,
    /// How per-node instances pair up.
    #[serde(default)]
    pub pairing: Pairing,
}

impl Serialize for Need {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.outcome == Outcome::Success && self.pairing == Pairing::Auto {
            serializer.serialize_str(&self.step)
        } else {
            Need::serialize(self, serializer)
        }
    }
}

impl<'de> Deserialize<'de> for Need {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> de::Visitor<'de> for Visitor {
            type Value = Need;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a step id, or a mapping `{step, outcome, pairing}`")
            }
            fn visit_str<E: de::Error>(self, step: &str) -> Result<Need, E> {
                Ok(Need {
                    step: step.to_owned(),
                    outcome: Outcome::Success,
                    pairing: Pairing::Auto,
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Need, A::Error> {
                Need::deserialize(MapAccessDeserializer::new(map))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

impl JsonSchema for Need {
    fn schema_name() -> Cow<'static, str> {
        "Need".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A step id, or `{step, outcome, pairing}`.",
            "anyOf": [
                {"type": "string"},
                {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["step"],
                    "properties": {
                        "step": {"type": "string", "description": "The step waited for."},
                        "outcome": {"enum": ["success", "failure", "always"], "description": "The outcome waited for (default success)."},
                        "pairing": {"enum": ["auto", "node", "all"], "description": "How per-node instances pair up (default auto)."}
                    }
                }
            ]
        })
    }
}

/// Attempts and backoff for a failing step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, remote = "Self")]
pub struct Retries {
    /// Attempts after the first one.
    pub attempts: u32,
    /// Wait before the first retry; doubles after each.
    #[serde(default = "Retries::default_backoff")]
    pub backoff: HumanDuration,
    /// The longest wait between attempts.
    #[serde(default = "Retries::default_max_backoff")]
    pub max_backoff: HumanDuration,
}

impl Retries {
    fn default_backoff() -> HumanDuration {
        HumanDuration::from_secs(1)
    }

    fn default_max_backoff() -> HumanDuration {
        HumanDuration::from_secs(30)
    }

    /// No retry.
    pub fn none() -> Self {
        Self::times(0)
    }

    /// `attempts` retries with the default backoff.
    pub fn times(attempts: u32) -> Self {
        Self {
            attempts,
            backoff: Self::default_backoff(),
            max_backoff: Self::default_max_backoff(),
        }
    }
}

impl Serialize for Retries {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        Retries::serialize(self, serializer)
    }
}

impl JsonSchema for Retries {
    fn schema_name() -> Cow<'static, str> {
        "Retries".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let duration = generator.subschema_for::<HumanDuration>();
        json_schema!({
            "description": "A number of retries, or `{attempts, backoff, max_backoff}`.",
            "anyOf": [
                {"type": "integer", "minimum": 0},
                {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["attempts"],
                    "properties": {
                        "attempts": {"type": "integer", "minimum": 0},
                        "backoff": duration,
                        "max_backoff": duration
                    }
                }
            ]
        })
    }
}

impl<'de> Deserialize<'de> for Retries {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> de::Visitor<'de> for Visitor {
            type Value = Retries;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number of retries, or a mapping `{attempts, backoff, max_backoff}`")
            }
            fn visit_u64<E: de::Error>(self, attempts: u64) -> Result<Retries, E> {
                u32::try_from(attempts)
                    .map(Retries::times)
                    .map_err(|_| E::custom("too many retries"))
            }
            fn visit_i64<E: de::Error>(self, attempts: i64) -> Result<Retries, E> {
                u64::try_from(attempts)
                    .map_err(|_| E::custom("retries cannot be negative"))
                    .and_then(|n| self.visit_u64(n))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Retries, A::Error> {
                Retries::deserialize(MapAccessDeserializer::new(map))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// How a value is captured from a `shell` step's standard output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputCapture {
    /// The whole output, trimmed.
    Stdout,
    /// The last non-empty line.
    LastLine,
    /// A JSON pointer into the output parsed as JSON, e.g. `json:/header/revision`.
    Json(String),
}

impl std::str::FromStr for OutputCapture {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "stdout" => Ok(Self::Stdout),
            "last_line" => Ok(Self::LastLine),
            _ => match text.strip_prefix("json:") {
                Some(pointer) if pointer.is_empty() || pointer.starts_with('/') => {
                    Ok(Self::Json(pointer.to_owned()))
                }
                _ => Err(format!(
                    "unknown output capture `{text}`, expected `stdout`, `last_line` or `json:/pointer`"
                )),
            },
        }
    }
}

impl fmt::Display for OutputCapture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Stdout => f.write_str("stdout"),
            Self::LastLine => f.write_str("last_line"),
            Self::Json(pointer) => write!(f, "json:{pointer}"),
        }
    }
}

impl Serialize for OutputCapture {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for OutputCapture {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(de::Error::custom)
    }
}

impl JsonSchema for OutputCapture {
    fn schema_name() -> Cow<'static, str> {
        "OutputCapture".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "`stdout`, `last_line` or `json:/pointer`.",
            "pattern": "^(stdout|last_line|json:(/.*)?)$"
        })
    }
}

/// What undoes a step when a run is rolled back.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum RollbackSpec {
    /// The action's own rollback (stop undoes start, a restore removes its data dir...).
    #[default]
    Natural,
    /// Nothing: the step is left as it is.
    None,
    /// A point of no return: once the step succeeded, a failure later in the run undoes nothing
    /// (e.g. a restored cluster that served clients).
    Irreversible,
    /// A step body of its own.
    Custom(Box<RollbackStep>),
}

impl RollbackSpec {
    fn is_natural(&self) -> bool {
        *self == RollbackSpec::Natural
    }
}

/// A rollback written out in the runbook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackStep {
    /// The typed action.
    pub action: ActionKind,
    /// Its arguments; string values are templates.
    #[serde(default, skip_serializing_if = "serde_yaml::Mapping::is_empty")]
    #[schemars(with = "IndexMap<String, serde_json::Value>")]
    pub with: serde_yaml::Mapping,
    /// Longest time it may take.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<HumanDuration>,
}

impl Serialize for RollbackSpec {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            RollbackSpec::Natural => serializer.serialize_str("natural"),
            RollbackSpec::None => serializer.serialize_str("none"),
            RollbackSpec::Irreversible => serializer.serialize_str("irreversible"),
            RollbackSpec::Custom(step) => step.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for RollbackSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> de::Visitor<'de> for Visitor {
            type Value = RollbackSpec;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("`natural`, `none`, `irreversible`, or a mapping `{action, with}`")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<RollbackSpec, E> {
                match text {
                    "natural" => Ok(RollbackSpec::Natural),
                    "none" => Ok(RollbackSpec::None),
                    "irreversible" => Ok(RollbackSpec::Irreversible),
                    _ => Err(E::custom(format_args!(
                        "unknown rollback `{text}`, expected `natural`, `none`, `irreversible`, or a mapping `{{action, with}}`"
                    ))),
                }
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RollbackSpec, A::Error> {
                RollbackStep::deserialize(MapAccessDeserializer::new(map))
                    .map(|step| RollbackSpec::Custom(Box::new(step)))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

impl JsonSchema for RollbackSpec {
    fn schema_name() -> Cow<'static, str> {
        "RollbackSpec".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let step = generator.subschema_for::<RollbackStep>();
        json_schema!({
            "description": "`natural` (the action's own rollback), `none`, `irreversible` (a point of no return: a later failure undoes nothing), or a step body.",
            "anyOf": [{"enum": ["natural", "none", "irreversible"]}, step]
        })
    }
}

/// A probe of the steady-state hypothesis, checked before the runbook starts and after it ends.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SteadyProbe {
    /// Unique id among probes.
    pub id: String,
    /// What must hold, for people.
    pub title: String,
    /// Where the probe runs; `cluster` by default.
    #[serde(default = "SteadyProbe::default_target")]
    pub on: Target,
    /// A probe action (read-only).
    pub action: ActionKind,
    /// Its arguments; string values are templates.
    #[serde(default, skip_serializing_if = "serde_yaml::Mapping::is_empty")]
    #[schemars(with = "IndexMap<String, serde_json::Value>")]
    pub with: serde_yaml::Mapping,
    /// When it is checked: `before`, `after` or `both` (the default).
    #[serde(default)]
    pub check: CheckPhase,
    /// Longest time one attempt may take.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<HumanDuration>,
    /// Attempts and backoff: tolerance for a cluster that is still settling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<Retries>,
}

impl SteadyProbe {
    fn default_target() -> Target {
        Target::Cluster
    }
}

/// When a steady-state probe is checked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CheckPhase {
    /// Before the first step only.
    Before,
    /// After the last step only.
    After,
    /// Both (the default).
    #[default]
    Both,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn needs_take_a_short_and_a_long_form() {
        let needs: Vec<Need> =
            serde_yaml::from_str("[stop, {step: check, outcome: failure, pairing: all}]").unwrap();
        assert_eq!(needs[0].step, "stop");
        assert_eq!(needs[0].outcome, Outcome::Success);
        assert_eq!(needs[1].outcome, Outcome::Failure);
        assert_eq!(needs[1].pairing, Pairing::All);
        let back = serde_yaml::to_string(&needs).unwrap();
        assert_eq!(serde_yaml::from_str::<Vec<Need>>(&back).unwrap(), needs);
    }

    #[test]
    fn need_mappings_reject_unknown_fields() {
        let err = serde_yaml::from_str::<Need>("{step: a, outcom: failure}").unwrap_err();
        assert!(err.to_string().contains("unknown field `outcom`"), "{err}");
    }

    #[test]
    fn targets_parse_and_print() {
        for text in [
            "controller",
            "cluster",
            "each",
            "leader",
            "followers",
            "node:cp1",
            "group:cp",
        ] {
            let target: Target = text.parse().unwrap();
            assert_eq!(target.to_string(), text);
        }
        assert!("node:".parse::<Target>().is_err());
        assert!(
            "everyone"
                .parse::<Target>()
                .unwrap_err()
                .contains("expected")
        );
    }

    #[test]
    fn retries_take_a_number_or_a_mapping() {
        assert_eq!(
            serde_yaml::from_str::<Retries>("3").unwrap(),
            Retries::times(3)
        );
        let long: Retries = serde_yaml::from_str("{attempts: 2, backoff: 5s}").unwrap();
        assert_eq!(long.backoff, HumanDuration::from_secs(5));
        assert!(serde_yaml::from_str::<Retries>("-1").is_err());
    }

    #[test]
    fn rollback_takes_a_word_or_a_step() {
        assert_eq!(
            serde_yaml::from_str::<RollbackSpec>("none").unwrap(),
            RollbackSpec::None
        );
        assert_eq!(
            serde_yaml::from_str::<RollbackSpec>("irreversible").unwrap(),
            RollbackSpec::Irreversible
        );
        let custom: RollbackSpec =
            serde_yaml::from_str("{action: shell, with: {run: 'true'}}").unwrap();
        assert!(matches!(custom, RollbackSpec::Custom(_)));
        assert!(serde_yaml::from_str::<RollbackSpec>("undo").is_err());
    }

    #[test]
    fn output_captures_parse() {
        assert_eq!("json:/a/b".parse(), Ok(OutputCapture::Json("/a/b".into())));
        assert!("json:a".parse::<OutputCapture>().is_err());
    }
}
