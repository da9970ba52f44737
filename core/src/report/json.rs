//! The report as JSON: the [`Report`] value itself, for tools and dashboards.

use super::Report;

/// Renders `report` as pretty-printed JSON.
pub fn render(report: &Report) -> String {
    let mut json = serde_json::to_string_pretty(report).expect("a report serialises");
    json.push('\n');
    json
}
