//! How the controller reaches etcd: TLS material, credentials and timeouts, and the clients made
//! from them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use etcd_client::{Certificate, Client, ConnectOptions, Identity, TlsOptions};

use super::error::{ApiError, EtcdError};
use crate::inventory::TlsFiles;

/// How long dialling one endpoint may take unless `ETCDCTL_DIAL_TIMEOUT` says otherwise.
const DEFAULT_DIAL_TIMEOUT: Duration = Duration::from_secs(5);

/// How the controller reaches etcd: TLS material and credentials.
///
/// The key is held in memory only; `Debug` shows file paths, never PEM bytes or passwords.
#[derive(Clone)]
pub struct EtcdAccess {
    tls: Option<TlsMaterial>,
    user: Option<(String, String)>,
    dial_timeout: Duration,
}

/// PEM bytes read from files, with the paths for messages.
#[derive(Clone)]
struct TlsMaterial {
    ca: Option<(PathBuf, Vec<u8>)>,
    identity: Option<(PathBuf, Vec<u8>, PathBuf, Vec<u8>)>,
}

impl std::fmt::Debug for EtcdAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let tls = self.tls.as_ref().map(|tls| {
            (
                tls.ca.as_ref().map(|(path, _)| path),
                tls.identity.as_ref().map(|(cert, _, key, _)| (cert, key)),
            )
        });
        f.debug_struct("EtcdAccess")
            .field("tls (ca, (cert, key))", &tls)
            .field("user", &self.user.as_ref().map(|(user, _)| user))
            .field("dial_timeout", &self.dial_timeout)
            .finish()
    }
}

impl EtcdAccess {
    /// Whether a client certificate is configured (members with mutual TLS ask for one).
    pub fn has_client_cert(&self) -> bool {
        self.tls.as_ref().is_some_and(|tls| tls.identity.is_some())
    }

    /// Why a call to `endpoint` that failed with `error` most likely failed, when the failure
    /// is one a new user meets: plain HTTP spoken to a member that serves TLS, or no client
    /// certificate for a member that asks for one. Both show up as a closed or broken connection,
    /// which says nothing by itself.
    pub fn explain_failure(&self, endpoint: &str, error: &str) -> Option<&'static str> {
        let any = |needles: &[&str]| needles.iter().any(|n| error.contains(n));
        if endpoint.starts_with("http://")
            && any(&[
                "broken pipe",
                "connection reset",
                "stream closed",
                "invalid size",
                "frame",
                "h2 protocol error",
            ])
        {
            Some(
                "the member serves TLS on this port, and this endpoint says http://: write \
                 https:// (and give the CA and a client certificate)",
            )
        } else if endpoint.starts_with("https://")
            && !self.has_client_cert()
            && any(&[
                "connection closed",
                "Cancelled",
                "CertificateRequired",
                "BadCertificate",
                "HandshakeFailure",
                "connection reset",
                "broken pipe",
            ])
        {
            Some(
                "the member closed the connection during the TLS handshake: it asks for a client \
                 certificate, and no client certificate was given; give one with --cert and --key, the \
                 inventory's controller.tls (-i), or ETCDCTL_CERT and ETCDCTL_KEY",
            )
        } else {
            None
        }
    }

    /// From the inventory's `controller.tls` when set, else the usual ETCDCTL_CACERT /
    /// ETCDCTL_CERT / ETCDCTL_KEY (and ETCDCTL_USER / ETCDCTL_PASSWORD) variables, else plain
    /// connections. `ETCDCTL_DIAL_TIMEOUT` (e.g. `2s`) is honoured too.
    pub fn resolve(controller_tls: Option<&TlsFiles>) -> Result<EtcdAccess, EtcdError> {
        Self::resolve_with(controller_tls, |name| std::env::var(name).ok())
    }

    /// Like [`EtcdAccess::resolve`], reading variables through `var` instead of the process
    /// environment.
    pub fn resolve_with(
        controller_tls: Option<&TlsFiles>,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<EtcdAccess, EtcdError> {
        let var = |name: &str| var(name).filter(|value| !value.is_empty());
        let tls = match controller_tls {
            Some(files) => Some(TlsMaterial::read(
                Some(Path::new(&files.ca)),
                Some(Path::new(&files.cert)),
                Some(Path::new(&files.key)),
            )?),
            None => {
                let ca = var("ETCDCTL_CACERT").map(PathBuf::from);
                let cert = var("ETCDCTL_CERT").map(PathBuf::from);
                let key = var("ETCDCTL_KEY").map(PathBuf::from);
                if ca.is_none() && cert.is_none() && key.is_none() {
                    None
                } else {
                    Some(TlsMaterial::read(
                        ca.as_deref(),
                        cert.as_deref(),
                        key.as_deref(),
                    )?)
                }
            }
        };
        let user = match (var("ETCDCTL_USER"), var("ETCDCTL_PASSWORD")) {
            (Some(user), Some(password)) => Some((user, password)),
            // etcdctl also takes `--user name:password`.
            (Some(user), None) => match user.split_once(':') {
                Some((name, password)) => Some((name.to_string(), password.to_string())),
                None => {
                    return Err(EtcdError::Config {
                        reason: "ETCDCTL_USER is set without a password (set ETCDCTL_PASSWORD \
                                 or write ETCDCTL_USER as name:password)"
                            .into(),
                    });
                }
            },
            (None, Some(_)) => {
                return Err(EtcdError::Config {
                    reason: "ETCDCTL_PASSWORD is set without ETCDCTL_USER".into(),
                });
            }
            (None, None) => None,
        };
        let dial_timeout = match var("ETCDCTL_DIAL_TIMEOUT") {
            Some(text) => humantime::parse_duration(&text).map_err(|err| EtcdError::Config {
                reason: format!("ETCDCTL_DIAL_TIMEOUT `{text}` is not a duration: {err}"),
            })?,
            None => DEFAULT_DIAL_TIMEOUT,
        };
        Ok(EtcdAccess {
            tls,
            user,
            dial_timeout,
        })
    }

    /// Plain connections without TLS or credentials.
    pub fn plain() -> EtcdAccess {
        EtcdAccess {
            tls: None,
            user: None,
            dial_timeout: DEFAULT_DIAL_TIMEOUT,
        }
    }

    /// The same access with another dial timeout.
    pub fn with_dial_timeout(mut self, dial_timeout: Duration) -> EtcdAccess {
        self.dial_timeout = dial_timeout;
        self
    }

    /// Whether TLS material is configured.
    pub fn uses_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// A client for these endpoints (https URLs use TLS; they need a CA). Connecting is lazy:
    /// the first call dials. With several endpoints the client balances calls over them and a
    /// call that lands on a dead member fails; [`execute`](super::execute) instead picks a member
    /// that answers.
    pub async fn client(&self, endpoints: &[String]) -> Result<Client, EtcdError> {
        self.client_within(endpoints, None).await
    }

    /// A client whose every request, and every dial, is bounded by `timeout`.
    pub(crate) async fn client_within(
        &self,
        endpoints: &[String],
        timeout: Option<Duration>,
    ) -> Result<Client, EtcdError> {
        let joined = endpoints.join(",");
        if endpoints.is_empty() {
            return Err(EtcdError::Config {
                reason: "no etcd endpoints to call".into(),
            });
        }
        let dial = match timeout {
            Some(timeout) => self.dial_timeout.min(timeout),
            None => self.dial_timeout,
        };
        let mut options = ConnectOptions::new()
            .with_connect_timeout(dial)
            .with_keep_alive(Duration::from_secs(10), Duration::from_secs(10));
        if let Some(timeout) = timeout {
            options = options.with_timeout(timeout);
        }
        let any_https = endpoints.iter().any(|e| e.starts_with("https://"));
        if any_https {
            if endpoints.iter().any(|e| e.starts_with("http://")) {
                return Err(EtcdError::Config {
                    reason: format!("endpoints mix http:// and https:// URLs: {joined}"),
                });
            }
            if self.tls.as_ref().is_none_or(|tls| tls.ca.is_none()) {
                return Err(EtcdError::Config {
                    reason: format!(
                        "https endpoints ({joined}) need the CA that signed the servers' \
                         certificates: set controller.tls in the inventory or ETCDCTL_CACERT"
                    ),
                });
            }
            options = options.with_tls(self.tls_options());
        } else if let Some(bare) = endpoints
            .iter()
            .find(|e| !e.starts_with("http://") && !e.starts_with("https://"))
        {
            return Err(EtcdError::Config {
                reason: format!("endpoint `{bare}` is not an http:// or https:// URL"),
            });
        }
        if let Some((user, password)) = &self.user {
            options = options.with_user(user, password);
        }
        Client::connect(endpoints, Some(options))
            .await
            .map_err(|err| EtcdError::Connect {
                endpoints: joined,
                source: ApiError(err),
            })
    }

    fn tls_options(&self) -> TlsOptions {
        // etcd before 3.5.? does not always negotiate h2 through ALPN; gRPC is h2 regardless.
        let mut options = TlsOptions::new().assume_http2(true);
        if let Some(tls) = &self.tls {
            if let Some((_, ca)) = &tls.ca {
                options = options.ca_certificate(Certificate::from_pem(ca));
            }
            if let Some((_, cert, _, key)) = &tls.identity {
                options = options.identity(Identity::from_pem(cert, key));
            }
        }
        options
    }
}

impl TlsMaterial {
    fn read(
        ca: Option<&Path>,
        cert: Option<&Path>,
        key: Option<&Path>,
    ) -> Result<TlsMaterial, EtcdError> {
        let ca = ca.map(|path| Ok((path.to_path_buf(), read_pem(path, "CERTIFICATE")?)));
        let identity = match (cert, key) {
            (Some(cert), Some(key)) => Some((
                cert.to_path_buf(),
                read_pem(cert, "CERTIFICATE")?,
                key.to_path_buf(),
                read_pem(key, "PRIVATE KEY")?,
            )),
            (None, None) => None,
            (Some(cert), None) => {
                return Err(EtcdError::Config {
                    reason: format!("client certificate {} has no key", cert.display()),
                });
            }
            (None, Some(key)) => {
                return Err(EtcdError::Config {
                    reason: format!("client key {} has no certificate", key.display()),
                });
            }
        };
        Ok(TlsMaterial {
            ca: ca.transpose()?,
            identity,
        })
    }
}

/// Reads a PEM file and checks that it holds a block whose label ends with `label` (so a key
/// given as a certificate is caught here, with its path, rather than as a handshake failure).
fn read_pem(path: &Path, label: &str) -> Result<Vec<u8>, EtcdError> {
    let bytes = std::fs::read(path).map_err(|source| EtcdError::Tls {
        path: path.to_path_buf(),
        source,
    })?;
    let text = String::from_utf8_lossy(&bytes);
    let found = text.lines().any(|line| {
        line.strip_prefix("-----BEGIN ")
            .and_then(|rest| rest.strip_suffix("-----"))
            .is_some_and(|found| found.ends_with(label))
    });
    if !found {
        return Err(EtcdError::Tls {
            path: path.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("no PEM block labelled `{label}` in the file"),
            ),
        });
    }
    Ok(bytes)
}

#[cfg(test)]
mod explain_tests {
    use super::*;

    fn with_cert() -> EtcdAccess {
        EtcdAccess {
            tls: Some(TlsMaterial {
                ca: None,
                identity: Some((PathBuf::new(), Vec::new(), PathBuf::new(), Vec::new())),
            }),
            user: None,
            dial_timeout: DEFAULT_DIAL_TIMEOUT,
        }
    }

    #[test]
    fn closed_connections_are_explained_by_what_was_configured() {
        let broken = "status of http://10.0.0.1:2379: connection error: stream closed because of a broken pipe (Unknown)";
        let closed =
            "linearizable read failed: operation was canceled: connection closed (Cancelled)";
        let cases = [
            (
                EtcdAccess::plain(),
                "http://10.0.0.1:2379",
                broken,
                Some("write https://"),
            ),
            (
                EtcdAccess::plain(),
                "https://10.0.0.1:2379",
                closed,
                Some("no client"),
            ),
            (with_cert(), "https://10.0.0.1:2379", closed, None),
            (
                EtcdAccess::plain(),
                "https://10.0.0.1:2379",
                "connection refused",
                None,
            ),
            (
                EtcdAccess::plain(),
                "http://10.0.0.1:2379",
                "connection refused",
                None,
            ),
        ];
        for (access, endpoint, error, expected) in cases {
            let explained = access.explain_failure(endpoint, error);
            match expected {
                Some(words) => assert!(
                    explained.is_some_and(|e| e.contains(words)),
                    "{endpoint} {error}: {explained:?}"
                ),
                None => assert_eq!(explained, None, "{endpoint} {error}"),
            }
        }
    }
}
