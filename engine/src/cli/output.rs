//! What `-o`/`--output` means on every command: the format of what the command prints on standard
//! output. Read commands print a table for people, or the same facts as one JSON or YAML document
//! for tools; etcdctl's `-w`/`--write-out` is accepted as well. (`plan` spells it `--format`, and
//! commands that run steps choose between progress for people and the journal's events as JSON
//! lines.) A file or directory to write is always `--out`.

use std::io::Write;

use clap::{Args, ValueEnum};

use super::CliError;

/// Table for people, or a document for tools.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Aligned columns.
    #[default]
    Table,
    /// One JSON document.
    Json,
    /// One YAML document (the JSON document's content).
    Yaml,
}

/// The `-o` option of a read command.
#[derive(Debug, Clone, Copy, Default, Args)]
pub struct OutputArgs {
    /// Output format.
    #[arg(
        short = 'o',
        long = "output",
        visible_short_alias = 'w',
        visible_alias = "write-out",
        value_enum,
        value_name = "FORMAT",
        default_value_t
    )]
    pub format: OutputFormat,
}

impl OutputArgs {
    /// Whether a document for tools was asked for, rather than a table.
    pub(crate) fn is_document(&self) -> bool {
        self.format != OutputFormat::Table
    }

    /// `value` as the document asked for: JSON or YAML (a table asks for JSON, for callers that
    /// have no table of their own).
    pub(crate) fn document(&self, value: &serde_json::Value) -> String {
        match self.format {
            OutputFormat::Yaml => serde_yaml::to_string(value).expect("a JSON value is YAML"),
            OutputFormat::Json | OutputFormat::Table => {
                let mut text = serde_json::to_string_pretty(value).expect("JSON serialises");
                text.push('\n');
                text
            }
        }
    }
}

/// Writes `text` as it is.
pub(super) fn print(out: &mut dyn Write, text: &str) -> Result<(), CliError> {
    out.write_all(text.as_bytes()).map_err(CliError::Output)
}

/// Writes `value` as the document `output` asks for ([`OutputArgs::document`]).
pub(super) fn print_document(
    out: &mut dyn Write,
    output: OutputArgs,
    value: &serde_json::Value,
) -> Result<(), CliError> {
    print(out, &output.document(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_are_json_or_yaml_of_the_same_value() {
        let value = serde_json::json!({"endpoints": [{"url": "https://a:2379", "healthy": true}]});
        let render = |format| {
            let mut out = Vec::new();
            print_document(&mut out, OutputArgs { format }, &value).unwrap();
            String::from_utf8(out).unwrap()
        };
        let json: serde_json::Value = serde_json::from_str(&render(OutputFormat::Json)).unwrap();
        let yaml: serde_json::Value = serde_yaml::from_str(&render(OutputFormat::Yaml)).unwrap();
        assert_eq!(json, value);
        assert_eq!(yaml, value);
        assert!(render(OutputFormat::Yaml).starts_with("endpoints:\n- "));
    }
}
