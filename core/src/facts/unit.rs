//! A systemd service unit read as etcd's configuration: the `[Service]` section's `ExecStart`
//! command line, `Environment=` and the `EnvironmentFile=`s, with the unit's own rules (drop-ins
//! after the unit, an empty `ExecStart=` resetting it, `$VAR` and `${VAR}` expanded, quotes and
//! line continuations). What `systemctl cat UNIT` prints is the input: the unit and its drop-ins.

use std::collections::BTreeMap;

use super::config::{self, EtcdConfig};

/// The parts of a service unit that configure etcd.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceUnit {
    /// The words of the last `ExecStart=` (prefixes like `-` or `+` removed), not yet expanded.
    pub exec_start: Vec<String>,
    /// `Environment=` assignments, in order.
    pub environment: Vec<(String, String)>,
    /// `EnvironmentFile=` paths, in order (a leading `-`, "may be missing", removed).
    pub environment_files: Vec<String>,
}

/// Reads the `[Service]` settings of a unit and its drop-ins, concatenated in the order systemd
/// applies them (as `systemctl cat` prints them).
pub fn parse(text: &str) -> ServiceUnit {
    let mut unit = ServiceUnit::default();
    let mut in_service = false;
    for line in logical_lines(text) {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if line.starts_with('[') {
            in_service = line == "[Service]";
            continue;
        }
        if !in_service {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = value.trim();
        match key.trim() {
            "ExecStart" if value.is_empty() => unit.exec_start.clear(),
            "ExecStart" => {
                let command = value.trim_start_matches(['@', '-', ':', '+', '!']);
                unit.exec_start = words(command);
            }
            "Environment" if value.is_empty() => unit.environment.clear(),
            "Environment" => unit.environment.extend(
                words(value)
                    .into_iter()
                    .filter_map(|w| w.split_once('=').map(|(k, v)| (k.into(), v.into()))),
            ),
            "EnvironmentFile" if value.is_empty() => unit.environment_files.clear(),
            "EnvironmentFile" => unit
                .environment_files
                .push(value.trim_start_matches('-').to_owned()),
            _ => {}
        }
    }
    unit
}

/// etcd's settings from a unit and the contents of the environment files it names (path, text;
/// a file that is missing is left out). As systemd builds the process: `Environment=`, then the
/// files (which override it), then `ExecStart` with variables expanded; and as etcd reads them:
/// a flag on the command line wins over its `ETCD_*` variable.
pub fn etcd_config(unit: &ServiceUnit, files: &[(String, String)]) -> EtcdConfig {
    let mut env: BTreeMap<String, String> = unit.environment.iter().cloned().collect();
    for path in &unit.environment_files {
        if let Some((_, text)) = files.iter().find(|(p, _)| p == path) {
            env.extend(config::env_assignments(text));
        }
    }
    let command = expand(&unit.exec_start, &env);
    let mut flags = config::etcd_env_flags(&env);
    flags.extend(config::flags(command.get(1..).unwrap_or_default()));
    let mut config = config::from_flags(&flags);
    config.host_data_dir = config.data_dir.clone();
    config
}

/// Lines with systemd's continuations joined: a line ending in `\` goes on on the next line.
fn logical_lines(text: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        match line.strip_suffix('\\') {
            Some(head) if !line.trim_start().starts_with('#') => {
                current.push_str(head);
                current.push(' ');
            }
            _ => {
                current.push_str(line);
                lines.push(std::mem::take(&mut current));
            }
        }
    }
    if !current.is_empty() {
        lines.push(current);
    }
    lines
}

/// Splits a value into words as systemd does: whitespace separates, double and single quotes
/// group, a backslash escapes the next character.
fn words(value: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (_, '\\') => {
                if let Some(next) = chars.next() {
                    word.push(next);
                }
                in_word = true;
            }
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (None, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

/// Expands variables in `ExecStart`'s words: a word that is exactly `$VAR` becomes the variable's
/// words (split on whitespace, none if unset), `${VAR}` anywhere becomes its value in place.
fn expand(command: &[String], env: &BTreeMap<String, String>) -> Vec<String> {
    let mut out = Vec::new();
    for word in command {
        if let Some(name) = word.strip_prefix('$').filter(|n| is_name(n)) {
            out.extend(
                env.get(name)
                    .map(|v| v.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
                    .unwrap_or_default(),
            );
            continue;
        }
        let mut expanded = String::new();
        let mut rest = word.as_str();
        while let Some(start) = rest.find("${") {
            expanded.push_str(&rest[..start]);
            match rest[start + 2..].find('}') {
                Some(end) => {
                    let name = &rest[start + 2..start + 2 + end];
                    expanded.push_str(env.get(name).map_or("", String::as_str));
                    rest = &rest[start + 3 + end..];
                }
                None => {
                    expanded.push_str(&rest[start..]);
                    rest = "";
                }
            }
        }
        expanded.push_str(rest);
        out.push(expanded);
    }
    out
}

fn is_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `systemctl cat etcd` prints for a unit with a drop-in, as on a kubespray or
    /// hand-built external etcd node.
    const UNIT: &str = r#"# /etc/systemd/system/etcd.service
[Unit]
Description=etcd
ExecStart=/bin/false

[Service]
Type=notify
Environment="ETCD_NAME=wrong" ETCDCTL_API=3
EnvironmentFile=-/etc/etcd.env
ExecStart=/usr/local/bin/etcd --name old
Restart=always

# /etc/systemd/system/etcd.service.d/10-flags.conf
[Service]
ExecStart=
ExecStart=/usr/local/bin/etcd \
  --name=etcd-a \
  --data-dir "/var/lib/etcd data" \
  $ETCD_EXTRA \
  --listen-client-urls=https://${IP}:2379
"#;

    #[test]
    fn the_drop_in_command_line_wins_and_variables_expand() {
        let unit = parse(UNIT);
        assert_eq!(unit.exec_start[0], "/usr/local/bin/etcd");
        assert_eq!(unit.environment_files, ["/etc/etcd.env"]);
        assert_eq!(
            unit.environment,
            [
                ("ETCD_NAME".to_string(), "wrong".to_string()),
                ("ETCDCTL_API".to_string(), "3".to_string())
            ]
        );
        let env = (
            "/etc/etcd.env".to_string(),
            "ETCD_EXTRA=--initial-cluster-token tok --quota-backend-bytes=8589934592\nIP=10.0.0.1\nETCD_ADVERTISE_CLIENT_URLS=https://10.0.0.1:2379\n".to_string(),
        );
        let config = etcd_config(&unit, &[env]);
        // The flag wins over ETCD_NAME; the data dir keeps its space; $ETCD_EXTRA splits.
        assert_eq!(config.name.as_deref(), Some("etcd-a"));
        assert_eq!(config.data_dir.as_deref(), Some("/var/lib/etcd data"));
        assert_eq!(config.host_data_dir.as_deref(), Some("/var/lib/etcd data"));
        assert_eq!(config.initial_cluster_token.as_deref(), Some("tok"));
        assert_eq!(config.quota_backend_bytes.as_deref(), Some("8589934592"));
        assert_eq!(config.client_url.as_deref(), Some("https://10.0.0.1:2379"));
    }

    #[test]
    fn settings_outside_the_service_section_and_comments_are_ignored() {
        let unit =
            parse("[Unit]\nExecStart=/bin/x\n[Service]\n# ExecStart=/bin/y\n; Environment=A=1\n");
        assert_eq!(unit, ServiceUnit::default());
        assert_eq!(etcd_config(&unit, &[]), EtcdConfig::default());
    }

    #[test]
    fn a_missing_environment_file_leaves_the_unit_s_own_settings() {
        let unit = parse(
            "[Service]\nEnvironment=ETCD_DATA_DIR=/srv/etcd 'ETCD_NAME=m 1'\nEnvironmentFile=-/nope\nExecStart=/usr/bin/etcd\n",
        );
        let config = etcd_config(&unit, &[]);
        assert_eq!(config.data_dir.as_deref(), Some("/srv/etcd"));
        assert_eq!(config.name.as_deref(), Some("m 1"));
    }
}
