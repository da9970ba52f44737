//! Where snapshot copies go, written as one word: an absolute directory, `ssh://` or `s3://`.
//!
//! - `/var/backups/etcd` or `file:///var/backups/etcd`: a directory on the controller (a mounted
//!   NFS share, another disk).
//! - `ssh://[USER@]HOST[:PORT]/DIR[?identity_file=F&known_hosts=F&sudo=true]`: a directory on a
//!   backup host, over OpenSSH with strict host key checking.
//! - `s3://BUCKET[/PREFIX][?endpoint=URL&region=R&allow_http=true]`: S3-compatible object
//!   storage. Credentials come only from the environment (`AWS_ACCESS_KEY_ID`,
//!   `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, and the other `AWS_*` variables), never from
//!   the destination, so they never reach a runbook, a plan or a journal.

use std::fmt;
use std::path::PathBuf;

use crate::inventory::SshSettings;

/// One place snapshot copies are kept.
#[derive(Debug, Clone, PartialEq)]
pub enum Destination {
    /// A directory on the controller.
    Dir(PathBuf),
    /// A directory on a host reached over SSH.
    Ssh(SshDestination),
    /// A bucket (and key prefix) of S3-compatible storage.
    S3(S3Destination),
}

/// A directory on a backup host.
#[derive(Debug, Clone, PartialEq)]
pub struct SshDestination {
    /// Host name or address.
    pub host: String,
    /// Login user, port, key and known_hosts file (unset: `~/.ssh/config`).
    pub ssh: SshSettings,
    /// Absolute directory on the host.
    pub dir: String,
}

/// A bucket and key prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Destination {
    /// Bucket name.
    pub bucket: String,
    /// Key prefix without leading or trailing `/`; empty for the bucket's root.
    pub prefix: String,
    /// Endpoint URL of an S3-compatible server (default: AWS, or `AWS_ENDPOINT_URL`).
    pub endpoint: Option<String>,
    /// Region (default: `AWS_REGION`, else `us-east-1`).
    pub region: Option<String>,
    /// Allow a plain-HTTP endpoint.
    pub allow_http: bool,
}

/// Why a destination could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("backup destination `{text}`: {reason}")]
pub struct DestinationError {
    /// The destination as written.
    pub text: String,
    /// What is wrong.
    pub reason: String,
    /// What to write instead.
    pub hint: &'static str,
}

/// The forms a destination can take, for hints.
pub const FORMS: &str = "an absolute directory (/var/backups/etcd), \
     ssh://[USER@]HOST[:PORT]/DIR[?identity_file=F&known_hosts=F&sudo=true], or \
     s3://BUCKET[/PREFIX][?endpoint=URL&region=R&allow_http=true] with credentials in AWS_* variables";

impl Destination {
    /// Parses one destination.
    pub fn parse(text: &str) -> Result<Destination, DestinationError> {
        let fail = |reason: String, hint: &'static str| DestinationError {
            text: redacted(text),
            reason,
            hint,
        };
        if text.starts_with('/') {
            return Ok(Destination::Dir(PathBuf::from(text)));
        }
        let Some((scheme, _)) = text.split_once("://") else {
            return Err(fail(
                "not an absolute directory or a URL".into(),
                "write an absolute path (a cron job's working directory is not yours), or ssh:// or s3://",
            ));
        };
        let url = url::Url::parse(text).map_err(|e| fail(format!("not a URL: {e}"), FORMS))?;
        let mut query: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        let mut take = |key: &str| {
            query
                .iter()
                .position(|(k, _)| k == key)
                .map(|i| query.remove(i).1)
        };
        let destination = match scheme {
            "file" => {
                if url.host_str().is_some_and(|h| !h.is_empty()) {
                    return Err(fail(
                        "a file:// URL names no host".into(),
                        "write file:///DIR, or ssh://HOST/DIR for another machine",
                    ));
                }
                let path = url
                    .to_file_path()
                    .map_err(|()| fail("not a local path".into(), FORMS))?;
                Destination::Dir(path)
            }
            "ssh" => {
                let host = url
                    .host_str()
                    .filter(|h| !h.is_empty())
                    .ok_or_else(|| fail("no host".into(), "write ssh://[USER@]HOST[:PORT]/DIR"))?
                    .to_string();
                let dir = percent_decode(url.path());
                if dir.len() < 2 {
                    return Err(fail(
                        "no directory".into(),
                        "write the absolute directory after the host: ssh://HOST/srv/etcd-backups",
                    ));
                }
                let sudo = match take("sudo").as_deref() {
                    None | Some("false") => None,
                    Some("true") => Some(true),
                    Some(other) => {
                        return Err(fail(
                            format!("sudo={other} is not true or false"),
                            "write sudo=true",
                        ));
                    }
                };
                let ssh = SshSettings {
                    user: Some(percent_decode(url.username())).filter(|u| !u.is_empty()),
                    port: url.port(),
                    identity_file: take("identity_file"),
                    jump_host: take("jump_host"),
                    known_hosts: take("known_hosts"),
                    sudo,
                };
                if url.password().is_some() {
                    return Err(fail(
                        "passwords are not accepted in a destination".into(),
                        "use a key: ?identity_file=/path/to/key",
                    ));
                }
                Destination::Ssh(SshDestination { host, ssh, dir })
            }
            "s3" => {
                if !url.username().is_empty() || url.password().is_some() {
                    return Err(fail(
                        "credentials are not accepted in a destination".into(),
                        "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment",
                    ));
                }
                let bucket = url
                    .host_str()
                    .filter(|h| !h.is_empty())
                    .ok_or_else(|| fail("no bucket".into(), "write s3://BUCKET[/PREFIX]"))?
                    .to_string();
                let prefix = percent_decode(url.path()).trim_matches('/').to_string();
                let allow_http = match take("allow_http").as_deref() {
                    None | Some("false") => false,
                    Some("true") => true,
                    Some(other) => {
                        return Err(fail(
                            format!("allow_http={other} is not true or false"),
                            "write allow_http=true",
                        ));
                    }
                };
                Destination::S3(S3Destination {
                    bucket,
                    prefix,
                    endpoint: take("endpoint"),
                    region: take("region"),
                    allow_http,
                })
            }
            other => {
                return Err(fail(format!("unknown scheme `{other}`"), FORMS));
            }
        };
        if let Some((key, _)) = query.first() {
            let secret = [
                "access_key_id",
                "secret_access_key",
                "session_token",
                "password",
            ]
            .contains(&key.as_str());
            return Err(fail(
                format!("unknown option `{key}`"),
                if secret {
                    "credentials come only from the environment (AWS_* variables, SSH keys)"
                } else {
                    FORMS
                },
            ));
        }
        Ok(destination)
    }

    /// Parses a list written as one string, destinations separated by whitespace (a space in a
    /// path is written `%20` in a URL form). At least one is required.
    pub fn parse_list(text: &str) -> Result<Vec<Destination>, DestinationError> {
        let list: Vec<Destination> = text
            .split_whitespace()
            .map(Destination::parse)
            .collect::<Result<_, _>>()?;
        if list.is_empty() {
            return Err(DestinationError {
                text: redacted(text),
                reason: "no destination given".into(),
                hint: FORMS,
            });
        }
        Ok(list)
    }

    /// Whether copies here survive the loss of the machine that made them.
    pub fn is_off_host(&self) -> bool {
        !matches!(self, Destination::Dir(_))
    }
}

/// `text` with option values and any password hidden: an error may echo a destination that
/// wrongly holds a credential, and errors reach logs and journals.
fn redacted(text: &str) -> String {
    let (base, query) = text.split_once('?').unwrap_or((text, ""));
    let base = match base.split_once("://") {
        Some((scheme, rest)) => match rest.split_once('@') {
            Some((user, host)) if user.contains(':') => {
                let name = user.split(':').next().unwrap_or_default();
                format!("{scheme}://{name}:…@{host}")
            }
            _ => base.to_string(),
        },
        None => base.to_string(),
    };
    if query.is_empty() {
        return base;
    }
    let keys: Vec<String> = query
        .split('&')
        .map(|pair| format!("{}=…", pair.split('=').next().unwrap_or_default()))
        .collect();
    format!("{base}?{}", keys.join("&"))
}

fn percent_decode(text: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", text.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

impl fmt::Display for Destination {
    /// The destination without options (key file paths are not secret, but they are noise).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Destination::Dir(path) => write!(f, "{}", path.display()),
            Destination::Ssh(ssh) => {
                f.write_str("ssh://")?;
                if let Some(user) = &ssh.ssh.user {
                    write!(f, "{user}@")?;
                }
                if ssh.host.contains(':') && !ssh.host.starts_with('[') {
                    write!(f, "[{}]", ssh.host)?;
                } else {
                    f.write_str(&ssh.host)?;
                }
                if let Some(port) = ssh.ssh.port {
                    write!(f, ":{port}")?;
                }
                f.write_str(&ssh.dir)
            }
            Destination::S3(s3) => {
                write!(f, "s3://{}", s3.bucket)?;
                if !s3.prefix.is_empty() {
                    write!(f, "/{}", s3.prefix)?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_forms_parse() {
        assert_eq!(
            Destination::parse("/var/backups/etcd").unwrap(),
            Destination::Dir("/var/backups/etcd".into())
        );
        assert_eq!(
            Destination::parse("file:///srv/a%20b").unwrap(),
            Destination::Dir("/srv/a b".into())
        );
        let Destination::Ssh(ssh) = Destination::parse(
            "ssh://backup@10.0.0.9:2222/srv/etcd?identity_file=/k&known_hosts=/kh&sudo=true",
        )
        .unwrap() else {
            panic!("not ssh")
        };
        assert_eq!(ssh.host, "10.0.0.9");
        assert_eq!(ssh.dir, "/srv/etcd");
        assert_eq!(ssh.ssh.user.as_deref(), Some("backup"));
        assert_eq!(ssh.ssh.port, Some(2222));
        assert_eq!(ssh.ssh.identity_file.as_deref(), Some("/k"));
        assert_eq!(ssh.ssh.known_hosts.as_deref(), Some("/kh"));
        assert_eq!(ssh.ssh.sudo, Some(true));
        let Destination::S3(s3) = Destination::parse(
            "s3://bkt/etcd/prod/?endpoint=http://127.0.0.1:9000&allow_http=true",
        )
        .unwrap() else {
            panic!("not s3")
        };
        assert_eq!(s3.bucket, "bkt");
        assert_eq!(s3.prefix, "etcd/prod");
        assert_eq!(s3.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert!(s3.allow_http);
    }

    #[test]
    fn display_omits_options() {
        for (text, shown) in [
            ("/a/b", "/a/b"),
            ("ssh://u@h:2/d?identity_file=/k", "ssh://u@h:2/d"),
            ("ssh://[fd00::1]/d", "ssh://[fd00::1]/d"),
            ("s3://b/p?region=x", "s3://b/p"),
            ("s3://b", "s3://b"),
        ] {
            assert_eq!(Destination::parse(text).unwrap().to_string(), shown);
        }
    }

    #[test]
    fn bad_destinations_say_what_is_wrong() {
        for (text, reason) in [
            ("backups", "not an absolute directory"),
            ("./backups", "not an absolute directory"),
            ("ftp://h/x", "unknown scheme `ftp`"),
            ("ssh://h", "no directory"),
            ("ssh:///x", "no host"),
            ("ssh://u:pw@h/x", "passwords are not accepted"),
            ("s3://key:secret@b/p", "credentials are not accepted"),
            (
                "s3://b/p?secret_access_key=x",
                "unknown option `secret_access_key`",
            ),
            ("s3://b/p?allow_http=yes", "allow_http=yes"),
            ("file://host/x", "names no host"),
        ] {
            let err = Destination::parse(text).unwrap_err();
            assert!(err.to_string().contains(reason), "{text}: {err}");
        }
        let err = Destination::parse("s3://b?access_key_id=x").unwrap_err();
        assert!(err.hint.contains("environment"), "{}", err.hint);
    }

    #[test]
    fn errors_never_echo_option_values_or_passwords() {
        for text in [
            "s3://b/p?secret_access_key=hunter2",
            "ssh://u:hunter2@h/x",
            "s3://k:hunter2@b/p",
        ] {
            let err = Destination::parse(text).unwrap_err();
            assert!(!err.to_string().contains("hunter2"), "{err}");
        }
    }

    #[test]
    fn lists_split_on_whitespace() {
        let list = Destination::parse_list(" /a \n s3://b/c\tssh://h/d ").unwrap();
        assert_eq!(list.len(), 3);
        assert!(!list[0].is_off_host());
        assert!(list[1].is_off_host() && list[2].is_off_host());
        assert!(Destination::parse_list("  ").is_err());
    }
}
