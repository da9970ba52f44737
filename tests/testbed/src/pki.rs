//! A kubeadm-like PKI made with `openssl`: one etcd CA per bed, and per node the certificates kubeadm
//! puts under `/etc/kubernetes/pki` (ECDSA P-256 keys, which kubeadm also supports, because they are
//! generated in microseconds).

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::BedError;
use crate::exec::run;
use crate::slot::write_file;

/// openssl configuration with one extension section per certificate profile; `$ENV::SAN` carries the
/// subject alternative names of server and peer certificates.
const OPENSSL_CNF: &str = "\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, digitalSignature, keyEncipherment, keyCertSign
subjectKeyIdentifier = hash
[server_peer]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = $ENV::SAN
authorityKeyIdentifier = keyid
[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
authorityKeyIdentifier = keyid
";

/// Controller-side TLS material: what a process on the host needs to reach every node's client URL
/// with mutual TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFacts {
    /// The bed's etcd CA certificate (the same as every node's `/etc/kubernetes/pki/etcd/ca.crt`).
    pub ca_cert: PathBuf,
    /// The CA's private key (to issue more certificates in a test).
    pub ca_key: PathBuf,
    /// A client certificate signed by the CA.
    pub client_cert: PathBuf,
    /// The client certificate's private key.
    pub client_key: PathBuf,
}

/// The bed's certificate authority.
#[derive(Debug)]
pub(crate) struct Pki {
    dir: PathBuf,
    facts: TlsFacts,
}

/// What to issue.
enum Profile<'a> {
    ServerPeer { node: &'a str, address: Ipv4Addr },
    Client,
}

impl Pki {
    /// Creates the CA and the controller's client certificate in `dir`.
    pub(crate) fn create(dir: &Path) -> Result<Pki, BedError> {
        write_file(&dir.join("openssl.cnf"), OPENSSL_CNF.as_bytes(), 0o644)?;
        let facts = TlsFacts {
            ca_cert: dir.join("ca.crt"),
            ca_key: dir.join("ca.key"),
            client_cert: dir.join("controller-client.crt"),
            client_key: dir.join("controller-client.key"),
        };
        let pki = Pki {
            dir: dir.to_path_buf(),
            facts,
        };
        let mut command = pki.openssl(
            &pki.facts.ca_key,
            &pki.facts.ca_cert,
            "/CN=etcd-ca",
            "ca",
            "3650",
        );
        command.env("SAN", "none");
        run(command, None)?.into_stdout()?;
        pki.issue(
            &pki.facts.client_key,
            &pki.facts.client_cert,
            "/CN=etcdrill-testbed-controller",
            &Profile::Client,
        )?;
        Ok(pki)
    }

    /// The controller-side TLS paths.
    pub(crate) fn facts(&self) -> &TlsFacts {
        &self.facts
    }

    /// Writes a node's kubeadm PKI into `kubernetes_dir` (the node's `/etc/kubernetes`).
    pub(crate) fn issue_node(
        &self,
        kubernetes_dir: &Path,
        node: &str,
        address: Ipv4Addr,
    ) -> Result<(), BedError> {
        let etcd = kubernetes_dir.join("pki/etcd");
        for (from, to) in [
            (&self.facts.ca_cert, "ca.crt"),
            (&self.facts.ca_key, "ca.key"),
        ] {
            let mode = if to.ends_with(".key") { 0o600 } else { 0o644 };
            let contents = std::fs::read(from).map_err(BedError::io("read", from))?;
            write_file(&etcd.join(to), &contents, mode)?;
        }
        let server_peer = Profile::ServerPeer { node, address };
        let subject = format!("/CN={node}");
        for (name, subject, profile) in [
            ("etcd/server", subject.as_str(), &server_peer),
            ("etcd/peer", subject.as_str(), &server_peer),
            (
                "etcd/healthcheck-client",
                "/CN=kube-etcd-healthcheck-client",
                &Profile::Client,
            ),
            (
                "apiserver-etcd-client",
                "/CN=kube-apiserver-etcd-client",
                &Profile::Client,
            ),
        ] {
            let base = kubernetes_dir.join("pki").join(name);
            self.issue(
                &base.with_extension("key"),
                &base.with_extension("crt"),
                subject,
                profile,
            )?;
        }
        Ok(())
    }

    fn issue(
        &self,
        key: &Path,
        cert: &Path,
        subject: &str,
        profile: &Profile,
    ) -> Result<(), BedError> {
        let (section, san) = match profile {
            Profile::ServerPeer { node, address } => (
                "server_peer",
                format!("DNS:{node},DNS:localhost,IP:{address},IP:127.0.0.1,IP:0:0:0:0:0:0:0:1"),
            ),
            Profile::Client => ("client", "none".to_owned()),
        };
        let mut command = self.openssl(key, cert, subject, section, "365");
        command
            .env("SAN", san)
            .arg("-CA")
            .arg(&self.facts.ca_cert)
            .arg("-CAkey")
            .arg(&self.facts.ca_key);
        run(command, None)?.into_stdout()?;
        Ok(())
    }

    fn openssl(
        &self,
        key: &Path,
        cert: &Path,
        subject: &str,
        section: &str,
        days: &str,
    ) -> Command {
        let mut command = Command::new("openssl");
        command
            .args(["req", "-x509", "-new", "-nodes", "-config"])
            .arg(self.dir.join("openssl.cnf"))
            .args([
                "-extensions",
                section,
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
            ])
            .args(["-subj", subject, "-days", days, "-keyout"])
            .arg(key)
            .arg("-out")
            .arg(cert);
        command
    }
}
