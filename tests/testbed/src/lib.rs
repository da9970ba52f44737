//! Test bed of real etcd control-plane nodes for etcdrill's integration tests.
//!
//! A [`Bed`] is N nodes (1 to [`MAX_NODES`]) on one machine, each a network, mount, UTS and PID
//! namespace with an address of its own on a private bridge, its own `/etc/kubernetes`, `/var` (hence
//! `/var/lib/etcd` and `/var/backups/etcd`), `/tmp` and `/root`, an OpenSSH `sshd` with its own host
//! key, and a kubeadm-like PKI. etcd (3.5 or 3.4) runs on every node with client and peer certificate
//! auth, as a kubeadm static pod (started, restarted and stopped by a kubelet stand-in that watches
//! `/etc/kubernetes/manifests`) or as external etcd controlled by a service script.
//!
//! Layouts real control planes have, each a [`BedConfig`] switch: the data dir as a mount point of
//! its own (a bind mount inside the node's mount namespace), one backup dir shared by every node,
//! a static pod whose `etcd-data` hostPath was moved (`/var/lib/etcd-restore-1`), and an SSH user
//! that is not root and uses `sudo -n` (the host gets a system user [`SUDO_USER`] and a sudoers
//! drop-in `/etc/sudoers.d/etcdrill-testbed`, kept for later beds). Extra etcd flags (e.g.
//! kubeadm's `--experimental-initial-corrupt-check=true`) go through [`BedConfig::extra_flag`].
//!
//! Beds need root. A test calls [`require`] first: it skips cleanly elsewhere and fails on CI.
//! Beds run in parallel safely (each has its own slot: state directory, subnet, names), clean up on
//! drop, and clean the leftovers of killed runs when the next bed starts.
//!
//! ```no_run
//! use std::time::Duration;
//! use etcdrill_testbed::{require, Bed, BedConfig, EtcdVersion};
//!
//! let config = BedConfig::new(3).version(EtcdVersion::V3_4);
//! if !require(&config) {
//!     return;
//! }
//! let bed = Bed::start(config).unwrap();
//! bed.seed(100, 1024).unwrap();
//! let node = &bed.nodes()[0];
//! bed.stop_member(node).unwrap();
//! bed.start_member(node).unwrap();
//! bed.wait_healthy(Duration::from_secs(30)).unwrap();
//! ```

#![warn(missing_docs)]

mod availability;
mod bed;
mod binaries;
mod config;
mod error;
mod etcd_config;
mod exec;
mod inventory;
mod network;
mod node;
mod node_setup;
mod pki;
mod resources;
mod slot;
mod ssh;

pub use availability::{REQUIRED_ENV, check, require};
pub use bed::{Bed, CANARY_PREFIX, Canary, MemberInfo, SEED_PREFIX, seed_value, wait_until};
pub use binaries::{ETCD34_DIR_ENV, ETCD35_DIR_ENV, EtcdBinaries, HELPER_DIR_ENV};
pub use config::{BedConfig, EtcdVersion, MAX_NODES, Management};
pub use error::BedError;
pub use exec::{ExecOutput, shell_quote};
pub use node::Node;
pub use pki::TlsFacts;
pub use resources::Resources;
pub use ssh::{SUDO_USER, SshFacts};
