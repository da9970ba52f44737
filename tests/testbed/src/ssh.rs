//! SSH into the nodes: a client key for the controller, one ed25519 host key and one `sshd` per node
//! (key-only root login, bound to the node's address), and a known_hosts file listing every node's
//! host key, so that clients can check host keys strictly without reading or writing `~/.ssh`.

use std::fs;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::BedError;
use crate::exec::host;
use crate::slot::write_file;

/// The login user of a bed whose SSH user is not root: it runs node commands through `sudo -n`.
pub const SUDO_USER: &str = "etcdrill-bed";
/// That user's home on every node (under the node's own `/var`).
const SUDO_USER_HOME: &str = "/var/lib/etcdrill-bed";

/// How a client logs into the bed's nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshFacts {
    /// The login user (`root`, or [`SUDO_USER`]).
    pub user: String,
    /// Whether node commands must go through `sudo -n` (the user is not root).
    pub sudo: bool,
    /// The port sshd listens on, on every node's address.
    pub port: u16,
    /// The private key the nodes accept.
    pub identity_file: PathBuf,
    /// A known_hosts file listing every node's address and host key.
    pub known_hosts: PathBuf,
}

impl SshFacts {
    /// `ssh`/`scp` options that use only the bed's key and known_hosts, check host keys strictly,
    /// never prompt, and ignore `~/.ssh` entirely.
    pub fn options(&self) -> Vec<String> {
        let option = |o: &str| ["-o".to_owned(), o.to_owned()];
        let mut options = vec!["-F".to_owned(), "/dev/null".to_owned()];
        for o in [
            format!("User={}", self.user),
            format!("Port={}", self.port),
            format!("IdentityFile={}", self.identity_file.display()),
            "IdentitiesOnly=yes".to_owned(),
            "StrictHostKeyChecking=yes".to_owned(),
            format!("UserKnownHostsFile={}", self.known_hosts.display()),
            "GlobalKnownHostsFile=/dev/null".to_owned(),
            "UpdateHostKeys=no".to_owned(),
            "BatchMode=yes".to_owned(),
            "ConnectTimeout=5".to_owned(),
            "LogLevel=ERROR".to_owned(),
        ] {
            options.extend(option(&o));
        }
        options
    }

    /// An `ssh` command running `remote_command` on `address` with [`SshFacts::options`].
    pub fn command(&self, address: Ipv4Addr, remote_command: &str) -> Command {
        let mut command = Command::new("ssh");
        command
            .args(self.options())
            .arg(address.to_string())
            .arg("--")
            .arg(remote_command);
        command
    }
}

/// Creates the controller's client key in `dir` and returns the bed's SSH facts (known_hosts is
/// written later by [`write_known_hosts`]).
pub(crate) fn create_client(dir: &Path, sudo_user: bool) -> Result<SshFacts, BedError> {
    let identity_file = dir.join("id_ed25519");
    keygen(&identity_file, "etcdrill-testbed-controller")?;
    let public = read(&identity_file.with_extension("pub"))?;
    write_file(&dir.join("authorized_keys"), public.as_bytes(), 0o600)?;
    Ok(SshFacts {
        user: if sudo_user { SUDO_USER } else { "root" }.to_owned(),
        sudo: sudo_user,
        port: 22,
        identity_file,
        known_hosts: dir.join("known_hosts"),
    })
}

/// Makes sure the host has [`SUDO_USER`] (a system user whose home is under each node's own
/// `/var`) and that it may run anything through `sudo -n`; returns its uid and gid. Left in place
/// for the next bed (several beds may start at once).
pub(crate) fn ensure_sudo_user() -> Result<(u32, u32), BedError> {
    if host("id", &["-u", SUDO_USER]).is_err() {
        // Another bed may create it at the same moment: only the user's existence matters.
        let _ = host(
            "useradd",
            &[
                "--system",
                "--no-create-home",
                "--home-dir",
                SUDO_USER_HOME,
                "--shell",
                "/bin/sh",
                SUDO_USER,
            ],
        );
    }
    // sshd (without PAM) refuses a locked account ("!" password); "*" means no password.
    host("usermod", &["-p", "*", SUDO_USER])?;
    let sudoers = Path::new("/etc/sudoers.d/etcdrill-testbed");
    if !sudoers.exists() {
        let rule = format!("{SUDO_USER} ALL=(ALL:ALL) NOPASSWD: ALL\n");
        let staged = sudoers.with_extension("tmp");
        write_file(&staged, rule.as_bytes(), 0o440)?;
        host("visudo", &["-c", "-q", "-f", &staged.to_string_lossy()])?;
        fs::rename(&staged, sudoers).map_err(BedError::io("rename", &staged))?;
    }
    let id = |flag: &str| -> Result<u32, BedError> {
        host("id", &[flag, SUDO_USER])?
            .trim()
            .parse()
            .map_err(|_| BedError::Config(format!("`id {flag} {SUDO_USER}` is not a number")))
    };
    Ok((id("-u")?, id("-g")?))
}

/// Installs the controller's key as [`SUDO_USER`]'s `authorized_keys` in a node's own `/var`
/// (`var_dir` on the host), owned by that user as sshd's StrictModes wants.
pub(crate) fn install_user_key(
    var_dir: &Path,
    facts: &SshFacts,
    (uid, gid): (u32, u32),
) -> Result<(), BedError> {
    // `/var/lib` was made along with the data dir (0700); the user must traverse it, as on
    // any real host (0755).
    let lib = var_dir.join("lib");
    fs::set_permissions(&lib, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .map_err(BedError::io("chmod", &lib))?;
    let home = var_dir.join(SUDO_USER_HOME.trim_start_matches("/var/"));
    let ssh = home.join(".ssh");
    crate::slot::make_dir(&ssh, 0o700)?;
    let keys = ssh.join("authorized_keys");
    let public = read(&authorized_keys(facts))?;
    write_file(&keys, public.as_bytes(), 0o600)?;
    for path in [&home, &ssh, &keys] {
        std::os::unix::fs::chown(path, Some(uid), Some(gid))
            .map_err(BedError::io("chown", path))?;
    }
    Ok(())
}

/// The file that lists the keys sshd accepts (the controller's public key).
pub(crate) fn authorized_keys(facts: &SshFacts) -> PathBuf {
    facts.identity_file.with_file_name("authorized_keys")
}

/// Creates a node's host key and sshd_config in `dir`; returns the config path and the public host key.
pub(crate) fn create_node(
    dir: &Path,
    node: &str,
    address: Ipv4Addr,
    facts: &SshFacts,
) -> Result<(PathBuf, String), BedError> {
    let host_key = dir.join("ssh_host_ed25519_key");
    keygen(&host_key, node)?;
    let public = read(&host_key.with_extension("pub"))?;
    let config = format!(
        "# sshd of test bed node {node}\n\
         ListenAddress {address}:{port}\n\
         HostKey {host_key}\n\
         PidFile none\n\
         AuthorizedKeysFile {authorized} .ssh/authorized_keys\n\
         PermitRootLogin prohibit-password\n\
         PubkeyAuthentication yes\n\
         PasswordAuthentication no\n\
         KbdInteractiveAuthentication no\n\
         UsePAM no\n\
         StrictModes yes\n\
         PrintMotd no\n\
         PrintLastLog no\n\
         MaxStartups 64:30:128\n\
         MaxSessions 64\n\
         Subsystem sftp internal-sftp\n",
        port = facts.port,
        host_key = host_key.display(),
        authorized = authorized_keys(facts).display(),
    );
    let path = dir.join("sshd_config");
    write_file(&path, config.as_bytes(), 0o644)?;
    Ok((path, public.trim().to_owned()))
}

/// Writes the known_hosts file: one `address key` line per node.
pub(crate) fn write_known_hosts(
    facts: &SshFacts,
    hosts: &[(Ipv4Addr, String)],
) -> Result<(), BedError> {
    let lines: String = hosts
        .iter()
        .map(|(address, key)| {
            // Drop the key's comment: known_hosts lines are `host type base64`.
            let key: Vec<&str> = key.split_whitespace().take(2).collect();
            format!("{address} {}\n", key.join(" "))
        })
        .collect();
    write_file(&facts.known_hosts, lines.as_bytes(), 0o644)
}

fn keygen(path: &Path, comment: &str) -> Result<(), BedError> {
    let path = path
        .to_str()
        .ok_or_else(|| BedError::Config(format!("non-UTF-8 path {}", path.display())))?;
    host(
        "ssh-keygen",
        &["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", path],
    )?;
    Ok(())
}

fn read(path: &Path) -> Result<String, BedError> {
    fs::read_to_string(path).map_err(BedError::io("read", path))
}
