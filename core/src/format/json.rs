//! The plan as JSON: the versioned plan document, for tools and for review bots.

use crate::plan::Plan;

/// Renders `plan` as its pretty-printed JSON document, with a trailing newline.
pub fn render(plan: &Plan) -> String {
    let mut json =
        serde_json::to_string_pretty(&plan.document()).expect("a plan document serialises");
    json.push('\n');
    json
}
