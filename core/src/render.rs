//! Template rendering: handlebars in strict mode, shell quoting by default.
//!
//! In shell scripts `{{x}}` inserts `x` shell-quoted as one word and `{{{x}}}` inserts it raw. In
//! plain values (action arguments the engine quotes itself) nothing is escaped. An unknown
//! variable is an error, never an empty string. Values known only at run time render as visible
//! placeholders such as `⟨steps.save.outputs.path⟩`.
//!
//! A plan renders the same few templates for thousands of step instances, so a [`Renderer`] parses
//! each distinct template once, and a [`TemplateContext`] is converted for handlebars once and then
//! shared by every template of its instance.

use std::collections::HashMap;

use handlebars::{
    Context, Handlebars, RenderContext, RenderError, RenderErrorReason, Renderable, StringOutput,
    Template, no_escape,
};

/// Opening mark of a run-time placeholder.
pub const PLACEHOLDER_OPEN: char = '⟨';
/// Closing mark of a run-time placeholder.
pub const PLACEHOLDER_CLOSE: char = '⟩';

/// The text shown in a plan for a value only known at run time.
pub fn placeholder(path: &str) -> String {
    format!("{PLACEHOLDER_OPEN}{path}{PLACEHOLDER_CLOSE}")
}

/// Whether rendered text still holds a run-time placeholder.
pub fn has_placeholder(text: &str) -> bool {
    text.contains(PLACEHOLDER_OPEN)
}

/// How rendered values are escaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escape {
    /// `{{x}}` is shell-quoted; `{{{x}}}` is raw.
    Shell,
    /// Nothing is escaped.
    Plain,
}

/// Quotes `word` for a POSIX shell so it stays one word whatever it contains.
pub fn shell_quote(word: &str) -> String {
    // Most words (names, paths, URLs, flags) need no quoting: shlex returns them as they are, and
    // so does this, without the copies and the scan shlex makes.
    if !word.is_empty() && word.bytes().all(unquoted_ok) {
        return word.to_owned();
    }
    // A NUL cannot be passed in a shell word at all; parameters refuse it, so this is defensive.
    let word = word.replace('\0', "");
    match shlex::try_quote(&word) {
        Ok(quoted) => quoted.into_owned(),
        Err(_) => format!("'{}'", word.replace('\'', r"'\''")),
    }
}

/// The bytes shlex leaves unquoted (its `unquoted_ok`): a word made only of them is its own quoting.
fn unquoted_ok(byte: u8) -> bool {
    byte.is_ascii_alphanumeric()
        || matches!(byte, b'+' | b'-' | b'.' | b'/' | b':' | b'@' | b']' | b'_')
}

/// Quotes each word and joins them with spaces.
pub fn shell_join<S: AsRef<str>>(words: impl IntoIterator<Item = S>) -> String {
    words
        .into_iter()
        .map(|w| shell_quote(w.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Why a template did not render.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// The template does not parse.
    #[error("template syntax: {message}")]
    Syntax {
        /// The parser's message.
        message: String,
        /// 1-based line and column inside the template, when known.
        position: Option<(usize, usize)>,
    },
    /// A variable the context does not have.
    #[error("unknown variable `{0}`")]
    MissingVariable(String),
    /// Any other rendering failure (a helper given wrong arguments...).
    #[error("{0}")]
    Other(String),
}

/// The values templates see, converted once for all the templates rendered with them.
#[derive(Debug, Clone)]
pub struct TemplateContext(Context);

impl TemplateContext {
    /// A context of `value` (an object: `params`, `node`, `steps`...).
    pub fn new(value: serde_json::Value) -> Self {
        Self(Context::from(value))
    }

    /// The values, as JSON.
    pub fn value(&self) -> &serde_json::Value {
        self.0.data()
    }
}

/// Renders templates against a [`TemplateContext`], parsing each distinct template once.
#[derive(Debug)]
pub struct Renderer {
    shell: Handlebars<'static>,
    plain: Handlebars<'static>,
    /// Templates parsed so far (or why they do not parse), by their text.
    parsed: HashMap<String, Result<Template, TemplateError>>,
}

impl Default for Renderer {
    fn default() -> Self {
        Self::new()
    }
}

impl Renderer {
    /// A renderer in strict mode.
    pub fn new() -> Self {
        let mut shell = Handlebars::new();
        shell.set_strict_mode(true);
        shell.register_escape_fn(shell_quote);
        let mut plain = Handlebars::new();
        plain.set_strict_mode(true);
        plain.register_escape_fn(no_escape);
        Self {
            shell,
            plain,
            parsed: HashMap::new(),
        }
    }

    /// Renders `template` with `context`.
    pub fn render(
        &mut self,
        escape: Escape,
        template: &str,
        context: &TemplateContext,
    ) -> Result<String, TemplateError> {
        if !template.contains("{{") {
            return Ok(template.to_owned());
        }
        if !self.parsed.contains_key(template) {
            // Parsed as `Handlebars::render_template` parses: no name, default options.
            let parsed = Template::compile(template).map_err(|err| syntax_error(&err));
            self.parsed.insert(template.to_owned(), parsed);
        }
        let parsed = self.parsed[template].as_ref().map_err(Clone::clone)?;
        let registry = match escape {
            Escape::Shell => &self.shell,
            Escape::Plain => &self.plain,
        };
        // What `Handlebars::render_template` does once it has the template and the context.
        let mut output = StringOutput::new();
        parsed
            .render(
                registry,
                &context.0,
                &mut RenderContext::new(None),
                &mut output,
            )
            .map_err(|err| render_error(&err))?;
        Ok(output
            .into_string()
            .expect("a string output holds a string"))
    }

    /// Evaluates a `when` expression such as `params.rehearse` or `(eq params.mode "x")`.
    pub fn condition(
        &mut self,
        expression: &str,
        context: &TemplateContext,
    ) -> Result<bool, TemplateError> {
        let template = format!("{{{{#if {expression}}}}}true{{{{else}}}}false{{{{/if}}}}");
        Ok(self.render(Escape::Plain, &template, context)? == "true")
    }
}

/// A template that does not parse.
fn syntax_error(template_error: &handlebars::TemplateError) -> TemplateError {
    // The parser lists every token it would have taken; that helps nobody.
    let reason = template_error.reason().to_string();
    let message = match reason.split_once(": expected ") {
        Some((head, _)) => format!("{head}: an unclosed `{{{{#block}}}}` or a stray `{{{{`"),
        None => reason,
    };
    TemplateError::Syntax {
        message,
        position: template_error.pos(),
    }
}

/// A template that parsed but did not render.
fn render_error(err: &RenderError) -> TemplateError {
    match err.reason() {
        RenderErrorReason::TemplateError(template_error) => syntax_error(template_error),
        RenderErrorReason::MissingVariable(Some(path)) => {
            TemplateError::MissingVariable(path.clone())
        }
        other => TemplateError::Other(other.to_string()),
    }
}

/// Whether an expression or template refers to values only known at run time.
pub fn refers_to_run_time(template: &str) -> bool {
    ["steps.", "run."].iter().any(|root| {
        template.match_indices(root).any(|(at, _)| {
            template[..at]
                .chars()
                .next_back()
                .is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == '.' || c == '-'))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn shell_values_are_one_quoted_word() {
        let hostile = [
            "n1; rm -rf /",
            "it's \"$(reboot)\" `id`",
            "a\nb",
            "*",
            "-x",
            "",
            "$HOME",
        ];
        let mut renderer = Renderer::new();
        for value in hostile {
            let script = renderer
                .render(
                    Escape::Shell,
                    "printf '%s|' {{v}}",
                    &TemplateContext::new(json!({"v": value})),
                )
                .unwrap();
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(&script)
                .output()
                .unwrap();
            assert_eq!(
                String::from_utf8_lossy(&out.stdout),
                format!("{value}|"),
                "{script}"
            );
        }
    }

    #[test]
    fn raw_insertion_is_explicit() {
        let mut renderer = Renderer::new();
        let context = TemplateContext::new(json!({"cmd": "etcdctl --endpoints=x"}));
        assert_eq!(
            renderer
                .render(Escape::Shell, "{{{cmd}}} get", &context)
                .unwrap(),
            "etcdctl --endpoints=x get"
        );
    }

    #[test]
    fn unknown_variables_are_errors() {
        let mut renderer = Renderer::new();
        let err = renderer
            .render(
                Escape::Plain,
                "{{params.missing}}",
                &TemplateContext::new(json!({"params": {}})),
            )
            .unwrap_err();
        assert_eq!(err, TemplateError::MissingVariable("params.missing".into()));
    }

    #[test]
    fn syntax_errors_have_a_position() {
        let err = Renderer::new()
            .render(
                Escape::Plain,
                "a {{#if x}} b",
                &TemplateContext::new(json!({"x": true})),
            )
            .unwrap_err();
        assert!(matches!(err, TemplateError::Syntax { .. }), "{err:?}");
    }

    #[test]
    fn conditions_evaluate_helpers() {
        let mut renderer = Renderer::new();
        let context = TemplateContext::new(json!({"params": {"mode": "snapshot", "on": false}}));
        assert!(
            renderer
                .condition(r#"(eq params.mode "snapshot")"#, &context)
                .unwrap()
        );
        assert!(!renderer.condition("params.on", &context).unwrap());
        assert!(renderer.condition("(not params.on)", &context).unwrap());
    }

    #[test]
    fn run_time_references_are_detected() {
        assert!(refers_to_run_time("(eq steps.check.outputs.ok \"true\")"));
        assert!(refers_to_run_time("{{run.id}}"));
        assert!(!refers_to_run_time("params.steps.x"));
        assert!(!refers_to_run_time("{{params.rerun.x}}"));
    }

    #[test]
    fn hyphenated_step_ids_resolve() {
        let context =
            TemplateContext::new(json!({"steps": {"save-snap": {"outputs": {"path": "/x"}}}}));
        assert_eq!(
            Renderer::new()
                .render(Escape::Plain, "{{steps.save-snap.outputs.path}}", &context)
                .unwrap(),
            "/x"
        );
    }

    #[test]
    fn words_that_need_no_quotes_are_left_as_shlex_leaves_them() {
        let mut words: Vec<String> = (0u8..=127).map(|b| char::from(b).to_string()).collect();
        words.extend(
            [
                "",
                "/var/lib/etcd",
                "https://10.0.0.1:2379",
                "--cacert=/etc/kubernetes/pki/etcd/ca.crt",
                "a,b",
                "x]y",
                "^x",
                "é",
                "a\0b",
                "it's",
            ]
            .map(String::from),
        );
        for word in &words {
            let shlex = shlex::try_quote(&word.replace('\0', "")).map(|q| q.into_owned());
            assert_eq!(shell_quote(word), shlex.unwrap(), "{word:?}");
        }
    }

    #[test]
    fn a_template_parsed_once_renders_with_each_context_and_fails_the_same_way_again() {
        let mut renderer = Renderer::new();
        for name in ["a", "b c"] {
            let context = TemplateContext::new(json!({"node": {"name": name}}));
            assert_eq!(
                renderer
                    .render(Escape::Shell, "echo {{node.name}}", &context)
                    .unwrap(),
                format!("echo {}", shell_quote(name))
            );
        }
        let context = TemplateContext::new(json!({}));
        let first = renderer.render(Escape::Plain, "{{#if x}}", &context);
        assert!(
            matches!(first, Err(TemplateError::Syntax { .. })),
            "{first:?}"
        );
        assert_eq!(renderer.render(Escape::Plain, "{{#if x}}", &context), first);
    }
}
