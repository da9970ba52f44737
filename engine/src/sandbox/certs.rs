//! The sandbox's certificates, made with the `openssl` command: a CA, a server and a peer
//! certificate per member (for 127.0.0.1 and localhost) and one client certificate that etcdctl
//! on the "nodes" and etcdrill on the controller both use.
//!
//! Every key is a P-256 key; the configuration is written next to the files, so the system's
//! `openssl.cnf` plays no part.

use std::path::Path;
use std::process::{Command, Stdio};

use super::SandboxError;

/// How long the sandbox's certificates are valid.
const DAYS: &str = "825";

const CA_CONFIG: &str = "[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = etcdrill sandbox CA\n[ca]\nbasicConstraints = critical,CA:TRUE\nkeyUsage = critical,keyCertSign,cRLSign\nsubjectKeyIdentifier = hash\n";

/// Server and peer certificates: etcd's gRPC gateway and its peers also use them as clients.
const MEMBER_EXT: &str = "basicConstraints = critical,CA:FALSE\nkeyUsage = critical,digitalSignature,keyEncipherment\nextendedKeyUsage = serverAuth,clientAuth\nsubjectAltName = IP:127.0.0.1,DNS:localhost\n";

const CLIENT_EXT: &str = "basicConstraints = critical,CA:FALSE\nkeyUsage = critical,digitalSignature,keyEncipherment\nextendedKeyUsage = clientAuth\n";

/// Makes every certificate of a sandbox whose members are `names`, in `pki`: `ca.crt`,
/// `NAME-server.crt`, `NAME-peer.crt` and `client.crt`, each with its `.key`.
pub(crate) fn make(pki: &Path, names: &[String]) -> Result<(), SandboxError> {
    std::fs::create_dir_all(pki).map_err(SandboxError::io("create", pki))?;
    write(&pki.join("ca.cnf"), CA_CONFIG)?;
    write(&pki.join("member.ext"), MEMBER_EXT)?;
    write(&pki.join("client.ext"), CLIENT_EXT)?;
    openssl(
        pki,
        &[
            "req",
            "-x509",
            "-config",
            "ca.cnf",
            "-extensions",
            "ca",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            DAYS,
        ],
    )?;
    let mut serial = 1u32;
    let mut leaf = |name: &str, ext: &str| -> Result<(), SandboxError> {
        serial += 1;
        let key = format!("{name}.key");
        let csr = format!("{name}.csr");
        let cert = format!("{name}.crt");
        openssl(
            pki,
            &[
                "req",
                "-new",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                &key,
                "-subj",
                &format!("/CN={name}"),
                "-out",
                &csr,
            ],
        )?;
        openssl(
            pki,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-set_serial",
                &serial.to_string(),
                "-days",
                DAYS,
                "-extfile",
                ext,
                "-out",
                &cert,
            ],
        )?;
        let _ = std::fs::remove_file(pki.join(&csr));
        Ok(())
    };
    for name in names {
        leaf(&format!("{name}-server"), "member.ext")?;
        leaf(&format!("{name}-peer"), "member.ext")?;
    }
    leaf("client", "client.ext")
}

fn write(path: &Path, text: &str) -> Result<(), SandboxError> {
    std::fs::write(path, text).map_err(SandboxError::io("write", path))
}

fn openssl(dir: &Path, args: &[&str]) -> Result<(), SandboxError> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| SandboxError::Certs {
            reason: format!("could not run `openssl` ({source}); install it (Debian: openssl)"),
        })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(SandboxError::Certs {
            reason: format!(
                "`openssl {}` failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        })
    }
}
