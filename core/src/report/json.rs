//! The report as JSON: the [`Report`] value itself, for tools and dashboards.

use super::Report;

/// Renders `report` as pretty-printed JSON, bidirectional and zero-width characters as `\u`
/// escapes (the same JSON value).
pub fn render(report: &Report) -> String {
    let json = serde_json::to_string_pretty(report).expect("a report serialises");
    let mut json = crate::shown::escape_json(&json).into_owned();
    json.push('\n');
    json
}
