//! What `etcdrill diagnose` reports: findings with a severity, the action to take and, when a
//! stock runbook fixes the problem, that runbook with its parameters.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// How bad a finding is, from least to most; the exit code of `diagnose` follows the worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Worth knowing; nothing to do now.
    Info,
    /// Act within days: the cluster works, but a risk is growing.
    Warning,
    /// Act today: one more failure or a burst of writes takes the cluster down.
    Urgent,
    /// The cluster is down or refusing writes now.
    Critical,
}

impl Severity {
    /// The exit code of `diagnose` when this is the worst finding: 0 up to info, 3 warning,
    /// 4 urgent, 5 critical (1 and 2 stay the usual failure and usage codes).
    pub fn exit_code(self) -> u8 {
        match self {
            Severity::Info => 0,
            Severity::Warning => 3,
            Severity::Urgent => 4,
            Severity::Critical => 5,
        }
    }

    /// Upper-case label for tables.
    pub fn label(self) -> &'static str {
        match self {
            Severity::Info => "INFO",
            Severity::Warning => "WARNING",
            Severity::Urgent => "URGENT",
            Severity::Critical => "CRITICAL",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Urgent => "urgent",
            Severity::Critical => "critical",
        })
    }
}

/// A stock runbook that fixes what a finding describes, and the parameters to give it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunbookSuggestion {
    /// The runbook's name, e.g. `replace-member` (`runbooks/replace-member.yaml`).
    pub runbook: String,
    /// Parameter values, e.g. `node = cp3`.
    pub params: BTreeMap<String, String>,
}

impl RunbookSuggestion {
    /// A suggestion of `runbook` with `params`.
    pub fn new(runbook: &str, params: &[(&str, &str)]) -> Self {
        Self {
            runbook: runbook.to_string(),
            params: params
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    /// The command line that runs it: `etcdrill run runbooks/NAME.yaml -i INVENTORY -p k=v`.
    pub fn command(&self, inventory: Option<&str>) -> String {
        let mut text = format!(
            "etcdrill run runbooks/{}.yaml -i {}",
            self.runbook,
            inventory.unwrap_or("INVENTORY")
        );
        for (name, value) in &self.params {
            text.push_str(&format!(" -p {name}={value}"));
        }
        text
    }
}

/// One thing `diagnose` found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// How bad it is.
    pub severity: Severity,
    /// A stable identifier, e.g. `member-down`, for scripts and tests.
    pub code: String,
    /// One line saying what is wrong.
    pub summary: String,
    /// The numbers behind it and why they matter.
    pub detail: String,
    /// What to do about it.
    pub action: String,
    /// The stock runbook to run, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runbook: Option<RunbookSuggestion>,
    /// Runbooks to run after it, in order (NOSPACE: compact, then defragment and disarm).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub then: Vec<RunbookSuggestion>,
}

impl Finding {
    /// A finding without a runbook.
    pub fn new(
        severity: Severity,
        code: &str,
        summary: impl Into<String>,
        detail: impl Into<String>,
        action: impl Into<String>,
    ) -> Self {
        Self {
            severity,
            code: code.to_string(),
            summary: summary.into(),
            detail: detail.into(),
            action: action.into(),
            runbook: None,
            then: Vec::new(),
        }
    }

    /// The same finding suggesting `runbook`.
    pub fn with_runbook(mut self, runbook: RunbookSuggestion) -> Self {
        self.runbook = Some(runbook);
        self
    }

    /// The same finding suggesting `runbook` after the ones already suggested.
    pub fn then_runbook(mut self, runbook: RunbookSuggestion) -> Self {
        self.then.push(runbook);
        self
    }
}

/// The worst severity among `findings`, `None` when there is none.
pub fn worst(findings: &[Finding]) -> Option<Severity> {
    findings.iter().map(|f| f.severity).max()
}

/// The exit code for `findings`: that of the worst, 0 when there is none.
pub fn exit_code(findings: &[Finding]) -> u8 {
    worst(findings).map_or(0, Severity::exit_code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_worst_finding() {
        let finding = |severity| Finding::new(severity, "x", "", "", "");
        let cases = [
            (vec![], 0),
            (vec![finding(Severity::Info)], 0),
            (vec![finding(Severity::Info), finding(Severity::Warning)], 3),
            (
                vec![finding(Severity::Urgent), finding(Severity::Warning)],
                4,
            ),
            (
                vec![finding(Severity::Critical), finding(Severity::Urgent)],
                5,
            ),
        ];
        for (findings, code) in cases {
            assert_eq!(exit_code(&findings), code, "{findings:?}");
        }
    }

    #[test]
    fn findings_round_trip_through_json() {
        let finding = Finding::new(Severity::Urgent, "member-down", "s", "d", "a")
            .with_runbook(RunbookSuggestion::new("replace-member", &[("node", "cp3")]));
        let json = serde_json::to_string(&finding).unwrap();
        assert!(json.contains(r#""severity":"urgent""#), "{json}");
        let back: Finding = serde_json::from_str(&json).unwrap();
        assert_eq!(back, finding);
    }

    #[test]
    fn suggestions_render_as_a_command() {
        let suggestion = RunbookSuggestion::new("quorum-recovery", &[("survivor", "cp1")]);
        assert_eq!(
            suggestion.command(Some("inv.yaml")),
            "etcdrill run runbooks/quorum-recovery.yaml -i inv.yaml -p survivor=cp1"
        );
    }
}
