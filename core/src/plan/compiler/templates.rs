//! Templates rendered strictly (an unknown variable is an error with a hint), and `with:`
//! mappings rendered and parsed into typed actions.

use serde_json::Value;

use super::Compiler;
use crate::diagnostic::{Diagnostic, closest};
use crate::document::yaml_diagnostic;
use crate::render::{Escape, Renderer, TemplateContext, TemplateError};
use crate::runbook::action::{Action, ActionKind};
use crate::source::YamlPath;

impl<'a> Compiler<'a> {
    /// Runs a template operation, turning its error into a located diagnostic.
    pub(super) fn template<T>(
        &mut self,
        path: &YamlPath,
        render: impl FnOnce(&mut Renderer) -> Result<T, TemplateError>,
    ) -> Option<T> {
        match render(&mut self.renderer) {
            Ok(value) => Some(value),
            Err(err) => {
                let diagnostic = self.template_diagnostic(path, &err);
                self.sink.push(diagnostic);
                None
            }
        }
    }

    fn template_diagnostic(&self, path: &YamlPath, err: &TemplateError) -> Diagnostic {
        let diagnostic = self.error(path, err.to_string());
        match err {
            TemplateError::MissingVariable(variable) => {
                let mut parts = variable.split('.');
                match (parts.next(), parts.next(), parts.next(), parts.next()) {
                    (Some("steps"), Some(step), _, name) => {
                        let known = self.runbook.value.step(step);
                        match known {
                            None => diagnostic
                                .hint("`steps.<id>.outputs.<name>` names a step of this runbook")
                                .suggest(step, self.runbook.value.steps.iter().map(|s| s.id.as_str())),
                            Some(s) => {
                                let declared: Vec<String> = if s.action == ActionKind::Shell {
                                    s.outputs.keys().cloned().collect()
                                } else {
                                    s.action.info().outputs.iter().map(|o| o.to_string()).collect()
                                };
                                if name.is_some_and(|n| declared.iter().any(|d| d == n)) {
                                    diagnostic.hint(format!(
                                        "step `{step}` is not a dependency of this step, so its outputs do not exist yet; add it to `needs`"
                                    ))
                                } else {
                                    diagnostic.hint(format!(
                                        "step `{step}` has outputs: {}",
                                        if declared.is_empty() { "none".into() } else { declared.join(", ") }
                                    ))
                                }
                            }
                        }
                    }
                    (Some(root), Some(name), _, _) => {
                        let candidates: Vec<String> = self.base.get(root)
                            .and_then(Value::as_object)
                            .map(|o| o.keys().cloned().collect())
                            .or_else(|| (root == "node").then(|| {
                                ["name", "member", "address", "groups", "client_url", "peer_url", "data_dir", "backup_dir", "management", "manifest", "etcdctl", "etcdutl"].map(String::from).to_vec()
                            }))
                            .unwrap_or_default();
                        let hint = if root == "node" && candidates.iter().any(|c| c == name) {
                            "`node` exists only in steps that run per node (`each`, `leader`, `followers`, `node:`, `group:`)".to_string()
                        } else if let Some(best) = closest(name, candidates.iter().map(String::as_str)) {
                            format!("did you mean `{root}.{best}`?")
                        } else {
                            format!("templates see `params`, `inventory`, `cluster`, `nodes`, `node`, `steps` and `run`; `{root}` has: {}", candidates.join(", "))
                        };
                        diagnostic.hint(hint)
                    }
                    _ => diagnostic.hint("templates see `params`, `inventory`, `cluster`, `nodes`, `node`, `steps` and `run`"),
                }
            }
            TemplateError::Syntax { .. } => {
                diagnostic.hint("check the `{{ }}` pairs and block helpers (`{{#if}}…{{/if}}`)")
            }
            TemplateError::Other(_) => diagnostic,
        }
    }

    /// Renders a `with:` mapping and parses it into the typed action.
    pub(super) fn action(
        &mut self,
        kind: ActionKind,
        with: &serde_yaml::Mapping,
        path: &YamlPath,
        context: &TemplateContext,
    ) -> Option<Action> {
        let with_path = path.key("with");
        let mut rendered = serde_yaml::Mapping::new();
        let mut ok = true;
        for (key, value) in with {
            let field = key.as_str().unwrap_or_default();
            let escape = if kind == ActionKind::Shell && field == "run" {
                Escape::Shell
            } else {
                Escape::Plain
            };
            match self.render_value(value, escape, &with_path.key(field), context) {
                Some(value) => {
                    rendered.insert(key.clone(), value);
                }
                None => ok = false,
            }
        }
        if !ok {
            return None;
        }
        match kind.parse_args(serde_yaml::Value::Mapping(rendered)) {
            Ok(action) => match action.check_values() {
                Ok(()) => Some(action),
                Err(problem) => {
                    let diagnostic = self
                        .error(&with_path.key(problem.field), problem.message)
                        .hint(problem.hint);
                    self.sink.push(diagnostic);
                    None
                }
            },
            Err(err) => {
                // With no `with:` at all, the action line is where the arguments are missing.
                let at = if with.is_empty() {
                    path.key("action")
                } else {
                    err.field
                        .iter()
                        .fold(with_path, |p, segment| p.join(segment))
                };
                let mut diagnostic =
                    yaml_diagnostic(&self.runbook.source, &self.runbook.map, &at, &err.error);
                diagnostic.message = format!("`{kind}` arguments: {}", diagnostic.message);
                self.sink.push(diagnostic.hint(format!("see the arguments of `{kind}` in docs/runbook-language.md or the runbook schema")));
                None
            }
        }
    }

    fn render_value(
        &mut self,
        value: &serde_yaml::Value,
        escape: Escape,
        path: &YamlPath,
        context: &TemplateContext,
    ) -> Option<serde_yaml::Value> {
        use serde_yaml::Value as Y;
        match value {
            Y::String(template) => {
                // A scalar that is exactly one `{{path}}` takes the type of the value it names.
                if let Some(typed) =
                    single_expression(template).and_then(|p| lookup(context.value(), p))
                {
                    if !typed.is_string() && !typed.is_object() && !typed.is_array() {
                        return serde_yaml::to_value(typed).ok();
                    }
                }
                self.template(path, |r| r.render(escape, template, context))
                    .map(Y::String)
            }
            Y::Sequence(items) => {
                let mut out = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    out.push(self.render_value(item, escape, &path.index(i), context)?);
                }
                Some(Y::Sequence(out))
            }
            Y::Mapping(map) => {
                let mut out = serde_yaml::Mapping::new();
                for (key, item) in map {
                    let field = key.as_str().unwrap_or_default();
                    out.insert(
                        key.clone(),
                        self.render_value(item, escape, &path.key(field), context)?,
                    );
                }
                Some(Y::Mapping(out))
            }
            other => Some(other.clone()),
        }
    }
}

/// The path of a scalar that is exactly one `{{path}}`, if it is one.
fn single_expression(template: &str) -> Option<&str> {
    let inner = template
        .trim()
        .strip_prefix("{{")?
        .strip_suffix("}}")?
        .trim();
    let simple = !inner.is_empty()
        && inner
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-'));
    simple.then_some(inner)
}

fn lookup<'v>(context: &'v Value, path: &str) -> Option<&'v Value> {
    path.split('.')
        .try_fold(context, |value, part| value.get(part))
}
