//! Which earlier steps' outputs an entry's templates refer to (`steps.<id>.outputs.<name>`), so
//! that only those go into its template context.

use std::collections::BTreeSet;

use super::{Compiler, Entry, Origin};
use crate::runbook::action::ActionKind;
use crate::runbook::step::RollbackSpec;

impl<'a> Compiler<'a> {
    /// Output names of the steps `origin`'s templates refer to, among the steps it depends on
    /// (transitively). Only referenced steps go into the context: a long chain of steps must not
    /// make every context as long as the chain. A reference to a step that is not a dependency is
    /// left out, so strict rendering reports it.
    pub(super) fn referenced_outputs(
        &self,
        origin: Origin,
        entry: &Entry<'_>,
    ) -> Vec<(&'a str, Vec<String>)> {
        let Origin::Step(start) = origin else {
            return Vec::new();
        };
        let steps = &self.runbook.value.steps;
        let mut text = serde_yaml::to_string(entry.with).unwrap_or_default();
        text.extend(entry.when);
        if let RollbackSpec::Custom(rollback) = entry.rollback {
            text.push_str(&serde_yaml::to_string(&rollback.with).unwrap_or_default());
        }
        let referenced = referenced_step_ids(&text);
        if referenced.is_empty() {
            return Vec::new();
        }
        let mut seen = vec![false; steps.len()];
        let mut stack = vec![start];
        while let Some(i) = stack.pop() {
            for need in &steps[i].needs {
                if let Some(&j) = self.step_index.get(need.step.as_str()) {
                    if !seen[j] {
                        seen[j] = true;
                        stack.push(j);
                    }
                }
            }
        }
        // In runbook order.
        let mut found: Vec<usize> = referenced
            .iter()
            .filter_map(|id| self.step_index.get(id).copied())
            .filter(|&j| seen[j])
            .collect();
        found.sort_unstable();
        found.dedup();
        found
            .into_iter()
            .map(|j| {
                let step = &steps[j];
                let names = if step.action == ActionKind::Shell {
                    step.outputs.keys().cloned().collect()
                } else {
                    step.action
                        .info()
                        .outputs
                        .iter()
                        .map(|s| s.to_string())
                        .collect()
                };
                (step.id.as_str(), names)
            })
            .collect()
    }
}

/// The step ids a template text refers to as `steps.<id>`.
pub fn referenced_step_ids(text: &str) -> BTreeSet<&str> {
    text.match_indices("steps.")
        .filter(|(at, _)| {
            text[..*at]
                .chars()
                .next_back()
                .is_none_or(|c| !(c.is_alphanumeric() || matches!(c, '_' | '.' | '-')))
        })
        .filter_map(|(at, prefix)| {
            let rest = &text[at + prefix.len()..];
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
                .unwrap_or(rest.len());
            (end > 0).then(|| &rest[..end])
        })
        .collect()
}
