//! Masks secrets in anything that leaves the executor: terminal, journal, reports, logs.
//!
//! Secrets are the values of secret parameters and any value an inventory registers as secret,
//! plus key material recognised by its shape (PEM private keys, etcd passwords on command lines).

use std::borrow::Cow;

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
    pub fn new(secrets: impl IntoIterator<Item = String>) -> Self {
        let mut secrets: Vec<String> = secrets
            .into_iter()
            .filter(|s| s.chars().count() >= 3)
            .collect();
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Self { secrets }
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
