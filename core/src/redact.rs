//! Masks secrets in anything that leaves the executor: terminal, journal, reports, logs.
//!
//! Secrets are the values of secret parameters and any value an inventory registers as secret,
//! plus key material recognised by its shape (PEM private keys, etcd passwords on command lines).
//! A secret is masked in every form a tool may print it in: whole, trimmed, shell-quoted, and
//! each of its lines, trimmed or not. [`secret_values`] is the one place that says which values
//! are secret; every path (run, resume, rollback, report, drill) takes its redactor from it.
//!
//! Masking is for what people and files see. Values passed between steps are never masked.

use std::borrow::Cow;

use crate::plan::ParamInput;
use crate::runbook::Runbook;

/// What a masked secret is replaced with.
pub const MASK: &str = "********";

/// Replaces known secret values and recognisable key material with [`MASK`].
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    /// Secret values, longest first so that a secret containing another is masked whole.
    secrets: Vec<String>,
}

impl Redactor {
    /// A redactor for these secret values. Values shorter than 3 characters are not masked as
    /// text (masking every `a` would destroy the output) but still never printed by etcdrill.
    /// Each secret is masked whole and in every form a tool may print it in (see the module doc).
    pub fn new(secrets: impl IntoIterator<Item = String>) -> Self {
        let mut forms: Vec<String> = secrets.into_iter().flat_map(printed_forms).collect();
        forms.retain(|s| s.chars().count() >= 3);
        forms.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        forms.dedup();
        Self { secrets: forms }
    }

    /// `text` with every secret masked.
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut text = Cow::Borrowed(text);
        for secret in &self.secrets {
            if text.contains(secret.as_str()) {
                text = Cow::Owned(text.replace(secret.as_str(), MASK));
            }
        }
        let text = mask_pem_private_keys(text);
        mask_flag_values(text)
    }
}

/// The forms `secret` can be printed in: whole, trimmed, shell-quoted, and each line of it,
/// as it is and trimmed (a tool that prints a multi-line secret line by line, or trims it, must
/// not reveal any part of it).
fn printed_forms(secret: String) -> Vec<String> {
    let mut forms = vec![
        secret.trim().to_owned(),
        crate::render::shell_quote(&secret),
    ];
    for line in secret.lines() {
        forms.push(line.to_owned());
        forms.push(line.trim().to_owned());
    }
    forms.push(secret);
    forms
}

/// The values of the secret parameters of a run of `runbook` with `inputs`: given, or the
/// default when none is given, of any type (a number is masked as it is written).
pub fn secret_values(runbook: &Runbook, inputs: &[ParamInput]) -> Vec<String> {
    runbook
        .params
        .iter()
        .filter(|(_, spec)| spec.secret)
        .filter_map(|(name, spec)| {
            inputs
                .iter()
                .rev()
                .find(|i| &i.name == name)
                .map(|i| i.value.clone())
                .or_else(|| spec.default.clone())
        })
        .filter_map(|value| match value {
            serde_yaml::Value::String(text) => Some(text),
            serde_yaml::Value::Null => None,
            other => serde_yaml::to_string(&other)
                .ok()
                .map(|t| t.trim().to_owned()),
        })
        .collect()
}

/// Masks the body of every `-----BEGIN ... PRIVATE KEY-----` block, including an unterminated one.
fn mask_pem_private_keys(text: Cow<'_, str>) -> Cow<'_, str> {
    const BEGIN: &str = "-----BEGIN ";
    if !text.contains("PRIVATE KEY-----") {
        return text;
    }
    let mut out = String::with_capacity(text.len());
    let mut rest: &str = &text;
    while let Some(start) = rest.find(BEGIN) {
        let header_end = rest[start..].find("-----\n").map(|i| start + i + 6);
        let is_private = rest[start..]
            .lines()
            .next()
            .is_some_and(|line| line.contains("PRIVATE KEY-----"));
        match header_end {
            Some(body) if is_private => {
                out.push_str(&rest[..body]);
                out.push_str(MASK);
                out.push('\n');
                match rest[body..].find("-----END ") {
                    Some(end) => rest = &rest[body + end..],
                    None => {
                        rest = "";
                    }
                }
            }
            _ => {
                out.push_str(&rest[..start + BEGIN.len()]);
                rest = &rest[start + BEGIN.len()..];
            }
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// Masks the values of flags and variables that carry etcd credentials on command lines.
fn mask_flag_values(text: Cow<'_, str>) -> Cow<'_, str> {
    const KEYS: &[&str] = &[
        "--password=",
        "--user=",
        "ETCDCTL_PASSWORD=",
        "ETCDCTL_USER=",
        "ETCD_PASSWORD=",
    ];
    if !KEYS.iter().any(|k| text.contains(k)) {
        return text;
    }
    let mut out = text.into_owned();
    for key in KEYS {
        let mut from = 0;
        while let Some(found) = out[from..].find(key) {
            let mut value_start = from + found + key.len();
            let value_end = match out[value_start..].chars().next() {
                // A quoted value ends at its closing quote, whatever it holds.
                Some(quote @ ('\'' | '"')) => {
                    value_start += 1;
                    out[value_start..]
                        .find(quote)
                        .map_or(out.len(), |i| value_start + i)
                }
                _ => out[value_start..]
                    .find(|c: char| c.is_whitespace() || c == ';')
                    .map_or(out.len(), |i| value_start + i),
            };
            out.replace_range(value_start..value_end, MASK);
            from = value_start + MASK.len();
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_secrets_are_masked_longest_first() {
        let redactor = Redactor::new(["hunter2".into(), "hunter2-extra".into(), "ab".into()]);
        assert_eq!(
            redactor.redact("pw=hunter2-extra or hunter2, ab"),
            "pw=******** or ********, ab"
        );
    }

    #[test]
    fn every_line_and_every_trimmed_form_of_a_secret_is_masked() {
        let redactor = Redactor::new(["alpha-first\nbravo-second".into(), "  padded  ".into()]);
        let printed = "whole=alpha-first\nbravo-second\nlast line: bravo-second\nfirst: alpha-first\ntrimmed=padded|\nquoted='alpha-first\nbravo-second'";
        let out = redactor.redact(printed);
        for part in ["alpha", "bravo", "padded"] {
            assert!(!out.contains(part), "{part} leaked: {out}");
        }
        assert_eq!(out.matches(MASK).count(), 5, "{out}");
        // A blank line in a secret does not mask every blank line.
        let out = Redactor::new(["abc\n\n  \ndef".into()]).redact("x\n\ny");
        assert_eq!(out, "x\n\ny");
    }

    #[test]
    fn secret_values_cover_defaults_and_values_of_any_type() {
        let runbook = crate::runbook::Runbook::load(crate::source::SourceFile::new(
            "rb.yaml",
            "name: t\nsummary: s\nparams:\n  given: {type: string, secret: true}\n  defaulted: {type: string, secret: true, default: d3fault}\n  number: {type: int, secret: true, default: 12345}\n  public: {type: string, default: shown}\nsteps: []\n",
        ))
        .unwrap();
        let input = ParamInput {
            name: "given".into(),
            value: "g1ven".into(),
            source: crate::source::SourceFile::new("command line", ""),
            location: None,
        };
        let mut values = secret_values(&runbook.value, &[input]);
        values.sort();
        assert_eq!(values, ["12345", "d3fault", "g1ven"]);
    }

    #[test]
    fn private_keys_are_masked_whole() {
        let text = "before\n-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE\nsecretbits\n-----END EC PRIVATE KEY-----\nafter\n-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        let out = Redactor::default().redact(text);
        assert!(
            !out.contains("secretbits") && !out.contains("MHcCAQEE"),
            "{out}"
        );
        assert!(out.contains("MIIB"), "certificates are public: {out}");
        assert!(out.contains("after"), "{out}");
    }

    #[test]
    fn an_unterminated_private_key_is_still_masked() {
        let out = Redactor::default().redact("-----BEGIN PRIVATE KEY-----\nMIIEv\nmore");
        assert!(!out.contains("MIIEv"), "{out}");
    }

    #[test]
    fn credentials_on_command_lines_are_masked() {
        let out = Redactor::default()
            .redact("etcdctl --user=root:pw1 --password='x y' get a; ETCDCTL_PASSWORD=s3 x");
        assert_eq!(
            out,
            "etcdctl --user=******** --password='********' get a; ETCDCTL_PASSWORD=******** x"
        );
    }

    #[test]
    fn clean_text_is_borrowed() {
        assert!(matches!(
            Redactor::new(["secret".into()]).redact("nothing here"),
            Cow::Borrowed(_)
        ));
    }
}
