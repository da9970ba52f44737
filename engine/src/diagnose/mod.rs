//! `etcdrill health`, `status`, `members` and `diagnose`: what state an etcd cluster is in, and
//! what to do about it.
//!
//! - `target`: which endpoints and TLS files (flags, inventory, `ETCDCTL_*`, kubeadm defaults).
//! - `collect`: gathers [`Facts`] from the cluster (status, health, members, alarms, `/metrics`)
//!   and from the disk (backups' metadata, drill reports). The only part doing I/O, with `fetch`
//!   (a tiny HTTP/1.1 GET for `/metrics`).
//! - `metrics`: the Prometheus text format and the figures read from it.
//! - `rules`: pure judgement, from facts to [`Finding`]s with severity, action and runbook.
//! - `table`: the human tables and the JSON documents printed by the commands.

pub mod collect;
pub mod facts;
mod fetch;
pub mod findings;
pub mod metrics;
pub mod rules;
pub mod table;
pub mod target;

pub use facts::Facts;
pub use fetch::MetricsClient;
pub use findings::{Finding, RunbookSuggestion, Severity};
pub use target::{Target, TargetFlags};
