//! Durations written the way people write them in YAML: `30s`, `2m`, `1h 30m`.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

/// A duration parsed from and printed as human text such as `90s` or `2m 30s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HumanDuration(pub Duration);

impl HumanDuration {
    /// A duration of whole seconds.
    pub const fn from_secs(secs: u64) -> Self {
        Self(Duration::from_secs(secs))
    }
}

impl std::str::FromStr for HumanDuration {
    type Err = humantime::DurationError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        humantime::parse_duration(text).map(Self)
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::humanize::limit(self.0))
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl de::Visitor<'_> for Visitor {
            type Value = HumanDuration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as `30s`, `2m` or `1h 30m`")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<HumanDuration, E> {
                text.parse().map_err(|err| {
                    E::custom(format_args!(
                        "invalid duration `{text}` ({err}), expected a duration such as `30s`, `2m` or `1h 30m`"
                    ))
                })
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

impl JsonSchema for HumanDuration {
    fn schema_name() -> Cow<'static, str> {
        "HumanDuration".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "A duration such as `30s`, `2m` or `1h 30m`.",
            "pattern": "^[0-9]+ ?[a-z]+( ?[0-9]+ ?[a-z]+)*$"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_text() {
        let parsed: HumanDuration = serde_yaml::from_str("2m 30s").unwrap();
        assert_eq!(parsed, HumanDuration::from_secs(150));
        assert_eq!(serde_yaml::to_string(&parsed).unwrap(), "2m 30s\n");
    }

    #[test]
    fn rejects_numbers_without_units() {
        let err = serde_yaml::from_str::<HumanDuration>("30").unwrap_err();
        assert!(err.to_string().contains("expected a duration"), "{err}");
    }
}
