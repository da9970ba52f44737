//! Where a parameter's value comes from besides the text after `-p NAME=`: a file
//! (`-p NAME=@FILE`), standard input (`-p NAME=@-`) or the environment (`ETCDRILL_PARAM_NAME`).
//! Secrets given these ways stay out of the process list and the shell history.
//!
//! A value read from a file or standard input loses one trailing newline (editors and `echo`
//! add one; it is never part of a token). `-p NAME=@@TEXT` gives the literal value `@TEXT`.

use std::io::Read;
use std::path::Path;

use crate::plan::ParamInput;
use crate::source::{Location, SourceFile};

/// The largest value read from a file or standard input.
const MAX_VALUE_BYTES: u64 = 1 << 20;

/// The prefix of the environment variables that give parameter values.
pub(crate) const ENV_PREFIX: &str = "ETCDRILL_PARAM_";

/// What `-p NAME=VALUE`'s VALUE stands for.
pub(super) enum ValueSource<'a> {
    /// The text itself.
    Literal(&'a str),
    /// The content of this file.
    File(&'a Path),
    /// Standard input.
    Stdin,
}

impl<'a> ValueSource<'a> {
    /// Reads the `@` conventions of a `-p` value.
    pub(super) fn of(value: &'a str) -> Self {
        match value.strip_prefix('@') {
            None => Self::Literal(value),
            Some("-") => Self::Stdin,
            Some(rest) if rest.starts_with('@') => Self::Literal(rest),
            Some(path) => Self::File(Path::new(path)),
        }
    }

    /// The value, read if it comes from a file or standard input.
    pub(super) fn read(&self, stdin: &mut dyn Read) -> Result<String, String> {
        let text = match self {
            Self::Literal(text) => return Ok((*text).to_owned()),
            Self::File(path) => crate::source::read_bounded(path, MAX_VALUE_BYTES)
                .map_err(|err| format!("cannot read `{}`: {err}", path.display()))?,
            Self::Stdin => {
                let mut bytes = Vec::new();
                stdin
                    .take(MAX_VALUE_BYTES + 1)
                    .read_to_end(&mut bytes)
                    .map_err(|err| format!("cannot read standard input: {err}"))?;
                if bytes.len() as u64 > MAX_VALUE_BYTES {
                    return Err(format!(
                        "standard input holds more than {}",
                        crate::humanize::bytes(MAX_VALUE_BYTES as f64)
                    ));
                }
                String::from_utf8(bytes)
                    .map_err(|_| "standard input is not UTF-8 text".to_string())?
            }
        };
        let text = text
            .strip_suffix("\r\n")
            .or_else(|| text.strip_suffix('\n'))
            .unwrap_or(&text);
        Ok(text.to_owned())
    }
}

/// The environment variable that gives parameter `name`: `ETCDRILL_PARAM_` and the name in
/// upper case, with every character other than a letter or a digit as `_`.
pub(crate) fn env_name(name: &str) -> String {
    let name: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("{ENV_PREFIX}{name}")
}

/// `given` and, for each of `names` not given, its value from the environment, if set. A value
/// given with `-p` wins over the environment.
pub(crate) fn with_environment<'n>(
    names: impl IntoIterator<Item = &'n str>,
    mut given: Vec<ParamInput>,
    env: impl Fn(&str) -> Option<String>,
) -> Vec<ParamInput> {
    for name in names {
        if given.iter().any(|g| g.name == name) {
            continue;
        }
        let variable = env_name(name);
        if let Some(value) = env(&variable) {
            given.push(ParamInput {
                name: name.to_owned(),
                value: serde_yaml::Value::String(value),
                // The variable's name locates it; its value is never shown.
                source: SourceFile::new("environment", variable),
                location: Some(Location { line: 1, column: 1 }),
            });
        }
    }
    given
}

/// The process's environment, as [`with_environment`] wants it.
pub(crate) fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_come_from_text_files_or_stdin_without_their_last_newline() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "s3cret\n").unwrap();
        let at_file = format!("@{}", file.display());
        let cases = [
            ("plain", "plain"),
            ("@@literal", "@literal"),
            ("@-", "from stdin"),
            (at_file.as_str(), "s3cret"),
        ];
        for (given, value) in cases {
            let mut stdin = "from stdin\r\n".as_bytes();
            assert_eq!(
                ValueSource::of(given).read(&mut stdin).unwrap(),
                value,
                "{given}"
            );
        }
        let err = ValueSource::of("@/nonexistent/token")
            .read(&mut "".as_bytes())
            .unwrap_err();
        assert!(err.contains("cannot read `/nonexistent/token`"), "{err}");
    }

    #[test]
    fn the_environment_fills_what_the_command_line_did_not_give() {
        let given = vec![ParamInput {
            name: "a".into(),
            value: "from -p".into(),
            source: SourceFile::new("command line", "-p a=from -p"),
            location: None,
        }];
        let env = |name: &str| match name {
            "ETCDRILL_PARAM_A" => Some("from env".into()),
            "ETCDRILL_PARAM_CLUSTER_TOKEN" => Some("t0ken".into()),
            _ => None,
        };
        let inputs = with_environment(["a", "cluster-token", "unset"], given, env);
        let values: Vec<(&str, &str)> = inputs
            .iter()
            .map(|i| (i.name.as_str(), i.value.as_str().unwrap()))
            .collect();
        assert_eq!(values, [("a", "from -p"), ("cluster-token", "t0ken")]);
        assert_eq!(inputs[1].source.text(), "ETCDRILL_PARAM_CLUSTER_TOKEN");
    }
}
