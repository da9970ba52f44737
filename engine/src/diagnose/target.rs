//! Which etcd endpoints to ask and with which TLS files: flags, else the inventory (its nodes'
//! client URLs and `controller.tls`), else the `ETCDCTL_*` environment variables, else kubeadm's
//! defaults on a control-plane node (`https://127.0.0.1:2379` with the healthcheck client
//! certificate). Endpoints and TLS files are resolved separately, each by that order.

use std::path::PathBuf;

use serde::Serialize;

use crate::etcd::{EtcdAccess, EtcdError};
use crate::inventory::Cluster;

/// kubeadm's local client URL on a control-plane node.
pub const KUBEADM_ENDPOINT: &str = "https://127.0.0.1:2379";
/// kubeadm's etcd CA.
pub const KUBEADM_CA: &str = "/etc/kubernetes/pki/etcd/ca.crt";
/// The client certificate kubeadm makes for etcd's health checks.
pub const KUBEADM_CERT: &str = "/etc/kubernetes/pki/etcd/healthcheck-client.crt";
/// Its key.
pub const KUBEADM_KEY: &str = "/etc/kubernetes/pki/etcd/healthcheck-client.key";

/// What the command line says about the target.
#[derive(Debug, Clone, Default)]
pub struct TargetFlags {
    /// `--endpoints`, comma-separated URLs.
    pub endpoints: Option<String>,
    /// `--cacert`.
    pub cacert: Option<PathBuf>,
    /// `--cert`.
    pub cert: Option<PathBuf>,
    /// `--key`.
    pub key: Option<PathBuf>,
}

/// Where a setting came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// Command-line flags.
    Flags,
    /// The inventory.
    Inventory,
    /// `ETCDCTL_*` variables.
    Environment,
    /// kubeadm's defaults.
    Kubeadm,
    /// Nothing: plain connections.
    None,
}

/// TLS files; any may be missing (a CA alone for server-auth-only clusters).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TlsPaths {
    /// The CA that signed the servers' certificates.
    pub ca: Option<PathBuf>,
    /// Client certificate.
    pub cert: Option<PathBuf>,
    /// Client key. Only the path is ever shown.
    pub key: Option<PathBuf>,
}

/// The resolved target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Target {
    /// Client URLs, with their scheme.
    pub endpoints: Vec<String>,
    /// Where they came from.
    pub endpoints_from: Origin,
    /// TLS files, when any.
    pub tls: Option<TlsPaths>,
    /// Where they came from.
    pub tls_from: Origin,
}

impl Target {
    /// Resolves from `flags`, `cluster` and the variables read through `var`.
    pub fn resolve(
        flags: &TargetFlags,
        cluster: Option<&Cluster>,
        var: impl Fn(&str) -> Option<String>,
    ) -> Target {
        let var = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        let flag_tls = (flags.cacert.is_some() || flags.cert.is_some() || flags.key.is_some())
            .then(|| TlsPaths {
                ca: flags.cacert.clone(),
                cert: flags.cert.clone(),
                key: flags.key.clone(),
            });
        let inventory_tls = cluster
            .and_then(|c| c.inventory().controller.tls.as_ref())
            .map(|t| TlsPaths {
                ca: Some(PathBuf::from(&t.ca)),
                cert: Some(PathBuf::from(&t.cert)),
                key: Some(PathBuf::from(&t.key)),
            });
        let env_tls = {
            let (ca, cert, key) = (
                var("ETCDCTL_CACERT"),
                var("ETCDCTL_CERT"),
                var("ETCDCTL_KEY"),
            );
            (ca.is_some() || cert.is_some() || key.is_some()).then(|| TlsPaths {
                ca: ca.map(PathBuf::from),
                cert: cert.map(PathBuf::from),
                key: key.map(PathBuf::from),
            })
        };
        let (mut tls, mut tls_from) = match (flag_tls, inventory_tls, env_tls) {
            (Some(t), _, _) => (Some(t), Origin::Flags),
            (None, Some(t), _) => (Some(t), Origin::Inventory),
            (None, None, Some(t)) => (Some(t), Origin::Environment),
            (None, None, None) => (None, Origin::None),
        };

        let split = |text: &str| -> Vec<String> {
            text.split(',')
                .map(str::trim)
                .filter(|e| !e.is_empty())
                .map(str::to_string)
                .collect()
        };
        let (raw, endpoints_from) = if let Some(list) = &flags.endpoints {
            (split(list), Origin::Flags)
        } else if let Some(cluster) = cluster {
            (cluster.client_urls(), Origin::Inventory)
        } else if let Some(list) = var("ETCDCTL_ENDPOINTS") {
            (split(&list), Origin::Environment)
        } else {
            (vec![KUBEADM_ENDPOINT.to_string()], Origin::Kubeadm)
        };
        // etcdctl takes `host:port`: https when TLS is configured, else http.
        let secure = tls.is_some() || endpoints_from == Origin::Kubeadm;
        let endpoints: Vec<String> = raw
            .into_iter()
            .map(|e| {
                if e.contains("://") {
                    e
                } else if secure {
                    format!("https://{e}")
                } else {
                    format!("http://{e}")
                }
            })
            .collect();
        if tls.is_none() && endpoints.iter().any(|e| e.starts_with("https://")) {
            tls = Some(TlsPaths {
                ca: Some(KUBEADM_CA.into()),
                cert: Some(KUBEADM_CERT.into()),
                key: Some(KUBEADM_KEY.into()),
            });
            tls_from = Origin::Kubeadm;
        }
        Target {
            endpoints,
            endpoints_from,
            tls,
            tls_from,
        }
    }

    /// The etcd access for this target; credentials and the dial timeout still come from
    /// `ETCDCTL_USER`, `ETCDCTL_PASSWORD` and `ETCDCTL_DIAL_TIMEOUT` through `var`.
    pub fn access(&self, var: impl Fn(&str) -> Option<String>) -> Result<EtcdAccess, EtcdError> {
        let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
        let tls = self.tls.clone().unwrap_or_default();
        EtcdAccess::resolve_with(None, |name| match name {
            "ETCDCTL_CACERT" => path(&tls.ca),
            "ETCDCTL_CERT" => path(&tls.cert),
            "ETCDCTL_KEY" => path(&tls.key),
            other => var(other),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::SourceFile;

    fn cluster(tls: bool) -> Cluster {
        let tls = if tls {
            "controller:\n  tls: {ca: /inv/ca.crt, cert: /inv/c.crt, key: /inv/c.key}\n"
        } else {
            ""
        };
        let text = format!(
            "name: t\n{tls}defaults: {{etcd: {{management: {{static_pod: {{}}}}}}}}\nnodes:\n  - {{name: cp1, address: 10.0.0.1}}\n  - {{name: cp2, address: 10.0.0.2}}\n"
        );
        Cluster::load(SourceFile::new("inv.yaml", text)).unwrap()
    }

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    const ENV: &[(&str, &str)] = &[
        ("ETCDCTL_ENDPOINTS", "10.1.0.1:2379,https://10.1.0.2:2379"),
        ("ETCDCTL_CACERT", "/env/ca.crt"),
        ("ETCDCTL_CERT", "/env/c.crt"),
        ("ETCDCTL_KEY", "/env/c.key"),
    ];

    fn flags(endpoints: Option<&str>, ca: Option<&str>) -> TargetFlags {
        TargetFlags {
            endpoints: endpoints.map(str::to_string),
            cacert: ca.map(PathBuf::from),
            cert: None,
            key: None,
        }
    }

    #[test]
    fn flags_beat_the_inventory_which_beats_the_environment_which_beats_kubeadm() {
        let with_tls = cluster(true);
        let without_tls = cluster(false);
        // (name, flags, inventory, environment, endpoints and their origin, CA and its origin)
        type Case<'c> = (
            &'static str,
            TargetFlags,
            Option<&'c Cluster>,
            &'static [(&'static str, &'static str)],
            Vec<&'static str>,
            Origin,
            Option<&'static str>,
            Origin,
        );
        let cases: Vec<Case> = vec![
            (
                "flags over everything",
                flags(Some("https://f:2379"), Some("/f/ca.crt")),
                Some(&with_tls),
                ENV,
                vec!["https://f:2379"],
                Origin::Flags,
                Some("/f/ca.crt"),
                Origin::Flags,
            ),
            (
                "endpoint flag, TLS from the inventory",
                flags(Some("https://f:2379"), None),
                Some(&with_tls),
                ENV,
                vec!["https://f:2379"],
                Origin::Flags,
                Some("/inv/ca.crt"),
                Origin::Inventory,
            ),
            (
                "inventory over the environment",
                flags(None, None),
                Some(&with_tls),
                ENV,
                vec!["https://10.0.0.1:2379", "https://10.0.0.2:2379"],
                Origin::Inventory,
                Some("/inv/ca.crt"),
                Origin::Inventory,
            ),
            (
                "inventory endpoints, TLS from the environment",
                flags(None, None),
                Some(&without_tls),
                ENV,
                vec!["https://10.0.0.1:2379", "https://10.0.0.2:2379"],
                Origin::Inventory,
                Some("/env/ca.crt"),
                Origin::Environment,
            ),
            (
                "environment; a bare host gets https with TLS",
                flags(None, None),
                None,
                ENV,
                vec!["https://10.1.0.1:2379", "https://10.1.0.2:2379"],
                Origin::Environment,
                Some("/env/ca.crt"),
                Origin::Environment,
            ),
            (
                "kubeadm defaults",
                flags(None, None),
                None,
                &[],
                vec![KUBEADM_ENDPOINT],
                Origin::Kubeadm,
                Some(KUBEADM_CA),
                Origin::Kubeadm,
            ),
            (
                "plain endpoints need no TLS",
                flags(Some("127.0.0.1:2379,http://b:2379"), None),
                None,
                &[],
                vec!["http://127.0.0.1:2379", "http://b:2379"],
                Origin::Flags,
                None,
                Origin::None,
            ),
            (
                "https endpoints without TLS fall to kubeadm's files",
                flags(Some("https://a:2379"), None),
                None,
                &[],
                vec!["https://a:2379"],
                Origin::Flags,
                Some(KUBEADM_CA),
                Origin::Kubeadm,
            ),
        ];
        for (name, flags, cluster, vars, endpoints, endpoints_from, ca, tls_from) in cases {
            let target = Target::resolve(&flags, cluster, env(vars));
            assert_eq!(target.endpoints, endpoints, "{name}");
            assert_eq!(target.endpoints_from, endpoints_from, "{name}");
            assert_eq!(
                target.tls.as_ref().and_then(|t| t.ca.as_deref()),
                ca.map(std::path::Path::new),
                "{name}"
            );
            assert_eq!(target.tls_from, tls_from, "{name}");
        }
    }

    #[test]
    fn kubeadm_defaults_use_the_healthcheck_client() {
        let target = Target::resolve(&TargetFlags::default(), None, |_| None);
        let tls = target.tls.unwrap();
        assert_eq!(tls.cert.unwrap(), PathBuf::from(KUBEADM_CERT));
        assert_eq!(tls.key.unwrap(), PathBuf::from(KUBEADM_KEY));
    }

    #[test]
    fn access_reads_the_resolved_files() {
        let target = Target::resolve(
            &flags(Some("https://a:2379"), Some("/nonexistent/ca.crt")),
            None,
            |_| None,
        );
        let err = target.access(|_| None).unwrap_err().to_string();
        assert!(err.contains("/nonexistent/ca.crt"), "{err}");
        let plain = Target::resolve(&flags(Some("http://a:2379"), None), None, |_| None);
        assert!(!plain.access(|_| None).unwrap().uses_tls());
    }
}
