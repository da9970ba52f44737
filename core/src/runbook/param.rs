//! Typed runbook parameters: declarations, and values checked against them.

use std::fmt;

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::human_duration::HumanDuration;

/// The declaration of one parameter.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ParamSpec {
    /// The value's type.
    #[serde(rename = "type")]
    pub kind: ParamType,
    /// What the parameter means.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// The value used when none is given; a parameter without one is required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<serde_json::Value>")]
    pub default: Option<serde_yaml::Value>,
    /// The allowed values of a `choice`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub choices: Vec<String>,
    /// Smallest allowed `int`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<i64>,
    /// Largest allowed `int`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<i64>,
    /// Masked in logs, journals and reports.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub secret: bool,
}

/// The type of a parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ParamType {
    /// Any text.
    String,
    /// A whole number, optionally within `min`..=`max`.
    Int,
    /// `true` or `false`.
    Bool,
    /// A duration such as `30s`.
    Duration,
    /// A file system path (non-empty).
    Path,
    /// The name of a node in the inventory.
    Node,
    /// One of `choices`.
    Choice,
}

impl fmt::Display for ParamType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ParamType::String => "string",
            ParamType::Int => "int",
            ParamType::Bool => "bool",
            ParamType::Duration => "duration",
            ParamType::Path => "path",
            ParamType::Node => "node",
            ParamType::Choice => "choice",
        })
    }
}

/// Why a value does not fit its parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamValueError {
    /// What is wrong.
    pub message: String,
    /// What would fit.
    pub expected: String,
}

impl ParamSpec {
    /// Checks `value` against this declaration and returns it in canonical form (a JSON string,
    /// number or boolean), ready for templates. Text is accepted for every type, as it comes
    /// from `-p key=value`.
    pub fn check(&self, value: &serde_yaml::Value) -> Result<serde_json::Value, ParamValueError> {
        use serde_yaml::Value as Y;
        let text = match value {
            Y::String(text) => Some(text.as_str()),
            _ => None,
        };
        let fail = |message: String| ParamValueError {
            message,
            expected: self.expected(),
        };
        // A secret's value is never shown, not even when it is wrong.
        let shown = || match value {
            _ if self.secret => "the secret value".to_string(),
            Y::String(text) => format!("`{text}`"),
            other => format!(
                "`{}`",
                serde_yaml::to_string(other).unwrap_or_default().trim_end()
            ),
        };
        if text.is_some_and(|t| t.contains('\0')) {
            return Err(fail("a value cannot contain a NUL character".into()));
        }
        match self.kind {
            ParamType::String => match (value, text) {
                (_, Some(text)) => Ok(text.into()),
                (Y::Number(n), _) => Ok(n.to_string().into()),
                (Y::Bool(b), _) => Ok(b.to_string().into()),
                _ => Err(fail(format!("{} is not text", shown()))),
            },
            ParamType::Path | ParamType::Node => match text {
                Some("") => Err(fail("an empty value".into())),
                // A command would take it as an option (`--skip-hash-check`, `-rf`).
                Some(text) if text.starts_with('-') => Err(fail(format!(
                    "{} begins with `-`, so a command would take it as an option",
                    shown()
                ))),
                Some(text) => Ok(text.into()),
                None => Err(fail(format!("{} is not text", shown()))),
            },
            ParamType::Int => {
                let number = match (value, text) {
                    (Y::Number(n), _) => n.as_i64(),
                    (_, Some(text)) => text.trim().parse().ok(),
                    _ => None,
                }
                .ok_or_else(|| fail(format!("{} is not a whole number", shown())))?;
                if self.min.is_some_and(|min| number < min)
                    || self.max.is_some_and(|max| number > max)
                {
                    let number = if self.secret {
                        "the secret value".to_string()
                    } else {
                        number.to_string()
                    };
                    return Err(fail(format!("{number} is out of range")));
                }
                Ok(number.into())
            }
            ParamType::Bool => match (value, text) {
                (Y::Bool(b), _) => Ok((*b).into()),
                (_, Some("true")) => Ok(true.into()),
                (_, Some("false")) => Ok(false.into()),
                _ => Err(fail(format!("{} is not a boolean", shown()))),
            },
            ParamType::Duration => text
                .and_then(|t| t.parse::<HumanDuration>().ok())
                .map(|d| d.to_string().into())
                .ok_or_else(|| fail(format!("{} is not a duration", shown()))),
            ParamType::Choice => match text {
                Some(text) if self.choices.iter().any(|c| c == text) => Ok(text.into()),
                _ => Err(fail(format!("{} is not one of the choices", shown()))),
            },
        }
    }

    /// What a value of this parameter looks like, for error messages.
    pub fn expected(&self) -> String {
        match self.kind {
            ParamType::Int => match (self.min, self.max) {
                (Some(min), Some(max)) => format!("a whole number from {min} to {max}"),
                (Some(min), None) => format!("a whole number of at least {min}"),
                (None, Some(max)) => format!("a whole number of at most {max}"),
                (None, None) => "a whole number".into(),
            },
            ParamType::Bool => "`true` or `false`".into(),
            ParamType::Duration => "a duration such as `30s` or `5m`".into(),
            ParamType::Path => "a non-empty path".into(),
            ParamType::Node => "the name of a node in the inventory".into(),
            ParamType::String => "text".into(),
            ParamType::Choice => crate::diagnostic::one_of(&self.choices),
        }
    }
}

/// Checked parameter values by name, in declaration order.
pub type ParamValues = IndexMap<String, serde_json::Value>;

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(yaml: &str) -> ParamSpec {
        serde_yaml::from_str(yaml).unwrap()
    }

    fn text(t: &str) -> serde_yaml::Value {
        serde_yaml::Value::String(t.into())
    }

    #[test]
    fn values_are_checked_against_their_type() {
        let cases: &[(&str, serde_yaml::Value, Result<serde_json::Value, &str>)] = &[
            ("{type: int}", text("42"), Ok(42.into())),
            ("{type: int}", 7.into(), Ok(7.into())),
            ("{type: int}", text("4x"), Err("`4x` is not a whole number")),
            (
                "{type: int, min: 1, max: 9}",
                text("10"),
                Err("10 is out of range"),
            ),
            ("{type: bool}", text("true"), Ok(true.into())),
            ("{type: bool}", text("yes"), Err("`yes` is not a boolean")),
            ("{type: duration}", text("90s"), Ok("1m 30s".into())),
            (
                "{type: duration}",
                text("soon"),
                Err("`soon` is not a duration"),
            ),
            ("{type: choice, choices: [a, b]}", text("b"), Ok("b".into())),
            (
                "{type: choice, choices: [a, b]}",
                text("c"),
                Err("`c` is not one of the choices"),
            ),
            ("{type: path}", text(""), Err("an empty value")),
            (
                "{type: path}",
                text("--skip-hash-check"),
                Err("`--skip-hash-check` begins with `-`, so a command would take it as an option"),
            ),
            ("{type: path}", text("./-rf"), Ok("./-rf".into())),
            (
                "{type: string}",
                text("n1; rm -rf /"),
                Ok("n1; rm -rf /".into()),
            ),
            (
                "{type: string}",
                text("a\0b"),
                Err("a value cannot contain a NUL character"),
            ),
            (
                "{type: int, secret: true}",
                text("12x34"),
                Err("the secret value is not a whole number"),
            ),
            (
                "{type: int, max: 9, secret: true}",
                text("1234"),
                Err("the secret value is out of range"),
            ),
            (
                "{type: path, secret: true}",
                text("-hunter2"),
                Err("the secret value begins with `-`, so a command would take it as an option"),
            ),
        ];
        for (declaration, value, want) in cases {
            let got = spec(declaration).check(value).map_err(|e| e.message);
            assert_eq!(
                got,
                want.clone().map_err(String::from),
                "{declaration} {value:?}"
            );
        }
    }

    #[test]
    fn expected_text_names_choices_and_ranges() {
        assert_eq!(
            spec("{type: choice, choices: [x, y]}").expected(),
            "one of `x`, `y`"
        );
        assert_eq!(
            spec("{type: int, min: 1}").expected(),
            "a whole number of at least 1"
        );
    }
}
