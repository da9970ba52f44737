//! Plan output formats: pure functions from a [`Plan`] to text, one module per format.
//!
//! `text` is for a terminal, `markdown` for a pull-request review, `json` for tools, `dot` and
//! `mermaid` for pictures of the graph. None of them does I/O.

pub mod describe;
pub mod dot;
pub mod json;
pub mod markdown;
pub mod mermaid;
pub mod text;

use crate::plan::{Host, Operation, Plan};

/// A plan output format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Format {
    /// Plain text for a terminal: the plan in waves, every operation rendered.
    #[default]
    Text,
    /// Markdown for a pull-request review.
    Markdown,
    /// The JSON plan document.
    Json,
    /// A Graphviz digraph.
    Dot,
    /// A Mermaid flowchart.
    Mermaid,
}

impl Format {
    /// Renders `plan` in this format.
    pub fn render(self, plan: &Plan) -> String {
        match self {
            Format::Text => text::render(plan),
            Format::Markdown => markdown::render(plan),
            // serde_json escapes control characters; bidirectional and zero-width ones too here.
            Format::Json => crate::shown::escape_json(&json::render(plan)).into_owned(),
            Format::Dot => dot::render(plan),
            Format::Mermaid => mermaid::render(plan),
        }
    }
}

/// An operation in the words the plan formats use, for the run report: a headline, `name: value`
/// arguments and the script. Nothing is escaped: each report format escapes it its own way.
pub(crate) fn operation_words(
    operation: &Operation,
    host: &Host,
) -> (String, Vec<(String, String)>, Option<String>) {
    const RAW: describe::Style = describe::Style {
        code: |text| text.to_string(),
        plain: |text| text.to_string(),
    };
    let view = describe::operation(&RAW, operation, host);
    (view.headline, view.args, view.script)
}

#[cfg(test)]
mod tests;
