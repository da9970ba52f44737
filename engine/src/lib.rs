//! etcdrill: a declarative runbook engine for etcd operations and restore drills.
//!
//! The data flow is `YAML -> Runbook -> Plan -> Journal -> Report`; each stage is a value that can
//! be printed and tested. The stages up to the Plan are pure: they never touch a network or a node.

pub mod backup;
pub mod cli;
pub mod diagnose;
pub mod diagnostic;
pub mod document;
pub mod drill;
pub mod etcd;
pub mod exec;
pub mod facts;
pub mod format;
pub mod human_duration;
pub mod inventory;
pub mod journal;
pub mod plan;
pub mod redact;
pub mod render;
pub mod report;
pub mod runbook;
pub mod sandbox;
pub mod schedule;
pub mod schema;
pub mod shown;
pub mod snapshot;
pub mod source;
pub mod textfile;
pub mod transfer;
pub mod transport;
