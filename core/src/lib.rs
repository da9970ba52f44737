//! etcdrill's core: the pure stages of `YAML -> Runbook -> Plan -> Journal -> Report`.
//!
//! This crate reads and writes files but never a network or a node: it has no async runtime, no
//! SSH and no etcd client, so the compiler enforces that the language, the compiler, the plan, the
//! scheduler, the journal's events and the report are pure. The `etcdrill` crate runs plans.

pub mod atomic_file;
pub mod backup;
pub mod diagnostic;
pub mod document;
pub mod drill;
pub mod facts;
pub mod format;
pub mod human_duration;
pub mod humanize;
pub mod inventory;
pub mod journal;
pub mod plan;
pub mod redact;
pub mod remote_checksum;
pub mod render;
pub mod report;
pub mod run_dir;
pub mod run_state;
pub mod runbook;
pub mod schedule;
pub mod schema;
pub mod shown;
pub mod source;
pub mod textfile;
