//! etcdrill: a declarative runbook engine for etcd operations and restore drills.
//!
//! The data flow is `YAML -> Runbook -> Plan -> Journal -> Report`; each stage is a value that can
//! be printed and tested. The pure stages live in [`etcdrill_core`] (re-exported here under their
//! own names); this crate runs plans: transports, etcd calls, node facts, backups, the executor,
//! drills, diagnosis, the sandbox and the CLI.

pub use etcdrill_core::{
    atomic_file, diagnostic, document, format, human_duration, humanize, inventory, journal, plan,
    redact, remote_checksum, render, report, run_state, runbook, schedule, schema, shown, source,
    textfile,
};

pub mod backup;
pub mod cli;
pub mod diagnose;
mod distribute;
pub mod drill;
pub mod etcd;
pub mod exec;
pub mod facts;
pub mod sandbox;
pub mod snapshot;
pub mod transfer;
pub mod transport;
