//! Plan output formats: pure functions from a [`Plan`] to text, one module per format.
//!
//! `text` is for a terminal, `markdown` for a pull-request review, `json` for tools, `dot` and
//! `mermaid` for pictures of the graph. None of them does I/O.

mod describe;
pub mod dot;
pub mod json;
pub mod markdown;
pub mod mermaid;
pub mod text;

use crate::plan::Plan;

/// A plan output format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
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
            Format::Json => json::render(plan),
            Format::Dot => dot::render(plan),
            Format::Mermaid => mermaid::render(plan),
        }
    }
}

#[cfg(test)]
mod tests;
