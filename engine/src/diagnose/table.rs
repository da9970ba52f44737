//! What the inspection commands print: aligned tables for people, JSON documents for tools.
//! Pure functions of [`Facts`] and [`Finding`]s.

use serde_json::{Value, json};

use super::facts::{EndpointFacts, Facts};
use super::findings::{Finding, exit_code, worst};
use crate::humanize::bytes;

/// Columns aligned with two spaces between them; the last column is not padded.
pub fn render_table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let last = cells.len().saturating_sub(1);
        let mut text = String::new();
        for (i, cell) in cells.into_iter().enumerate() {
            text.push_str(cell);
            if i < last {
                let pad = widths[i] - cell.chars().count() + 2;
                text.push_str(&" ".repeat(pad));
            }
        }
        text.trim_end().to_string() + "\n"
    };
    let mut text = line(header.to_vec());
    for row in rows {
        text.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    text
}

fn where_(endpoint: &EndpointFacts) -> String {
    match &endpoint.node {
        Some(node) => format!("{} ({node})", endpoint.endpoint),
        None => endpoint.endpoint.clone(),
    }
}

fn alarms_line(facts: &Facts) -> String {
    if let Some(error) = &facts.alarm_error {
        return format!("alarms: unknown ({error})\n");
    }
    if facts.alarms.is_empty() {
        "alarms: none\n".to_string()
    } else {
        format!(
            "alarms: {}\n",
            facts
                .alarms
                .iter()
                .map(|a| format!("{} on {} ({})", a.alarm, a.member, a.member_id))
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}

/// `etcdrill health`: one row per endpoint.
pub fn health_table(facts: &Facts) -> String {
    let rows: Vec<Vec<String>> = facts
        .endpoints
        .iter()
        .map(|e| {
            vec![
                where_(e),
                match e.healthy {
                    Some(true) => "healthy".into(),
                    Some(false) => "UNHEALTHY".into(),
                    None => "unknown".into(),
                },
                e.health_took_ms
                    .map(crate::humanize::human_ms)
                    .unwrap_or_default(),
                e.health_error.clone().unwrap_or_default(),
            ]
        })
        .collect();
    render_table(&["ENDPOINT", "HEALTH", "TOOK", "ERROR"], &rows)
}

/// `etcdrill health -o json`.
pub fn health_json(facts: &Facts) -> Value {
    json!({
        "endpoints": facts.endpoints.iter().map(|e| json!({
            "endpoint": e.endpoint,
            "node": e.node,
            "discovered": e.discovered,
            "healthy": e.healthy.unwrap_or(false),
            "took_ms": e.health_took_ms,
            "error": e.health_error,
        })).collect::<Vec<_>>(),
    })
}

/// `etcdrill status`: etcdctl's `endpoint status` table with the size in use, the
/// fragmentation and the leader's name.
pub fn status_table(facts: &Facts) -> String {
    let label_of = |id: &str| {
        facts
            .members
            .as_deref()
            .unwrap_or_default()
            .iter()
            .find(|m| m.id == id)
            .map(|m| m.label())
            .unwrap_or_else(|| id.to_string())
    };
    let rows: Vec<Vec<String>> = facts
        .endpoints
        .iter()
        .map(|e| match &e.status {
            Some(s) => {
                let free = (s.db_size - s.db_size_in_use).max(0) as f64;
                vec![
                    where_(e),
                    s.member_id.clone(),
                    s.version.clone(),
                    bytes(s.db_size as f64),
                    bytes(s.db_size_in_use as f64),
                    if s.db_size > 0 {
                        format!("{:.0} %", free / s.db_size as f64 * 100.0)
                    } else {
                        String::new()
                    },
                    match &s.leader {
                        Some(l) if *l == s.member_id => "yes (this one)".into(),
                        Some(l) => label_of(l),
                        None => "NONE".into(),
                    },
                    if s.is_learner { "yes" } else { "no" }.into(),
                    s.raft_term.to_string(),
                    s.raft_index.to_string(),
                    s.raft_applied_index.to_string(),
                    s.errors.join(", "),
                ]
            }
            None => {
                let mut row = vec![where_(e)];
                row.extend(std::iter::repeat_n("-".to_string(), 10));
                row.push(e.status_error.clone().unwrap_or_default());
                row
            }
        })
        .collect();
    let mut text = render_table(
        &[
            "ENDPOINT", "ID", "VERSION", "DB SIZE", "IN USE", "FRAG", "LEADER", "LEARNER", "TERM",
            "INDEX", "APPLIED", "ERRORS",
        ],
        &rows,
    );
    text.push_str(&alarms_line(facts));
    text
}

/// `etcdrill status -o json`.
pub fn status_json(facts: &Facts) -> Value {
    json!({
        "endpoints": facts.endpoints.iter().map(|e| json!({
            "endpoint": e.endpoint,
            "node": e.node,
            "discovered": e.discovered,
            "status": e.status,
            "error": e.status_error,
        })).collect::<Vec<_>>(),
        "alarms": facts.alarms,
        "alarm_error": facts.alarm_error,
    })
}

/// `etcdrill members`: the member list, learners marked.
pub fn members_table(facts: &Facts) -> String {
    let Some(members) = &facts.members else {
        return format!(
            "member list unavailable: {}\n",
            facts.member_list_error.as_deref().unwrap_or("no answer")
        );
    };
    let rows: Vec<Vec<String>> = members
        .iter()
        .map(|m| {
            vec![
                m.id.clone(),
                if m.name.is_empty() {
                    "unstarted"
                } else {
                    "started"
                }
                .into(),
                m.name.clone(),
                m.node.clone().unwrap_or_default(),
                m.peer_urls.join(","),
                m.client_urls.join(","),
                if m.is_learner { "LEARNER" } else { "voting" }.into(),
            ]
        })
        .collect();
    let mut text = render_table(
        &[
            "ID",
            "STATUS",
            "NAME",
            "NODE",
            "PEER URLS",
            "CLIENT URLS",
            "ROLE",
        ],
        &rows,
    );
    text.push_str(&alarms_line(facts));
    text
}

/// `etcdrill members -o json`.
pub fn members_json(facts: &Facts) -> Value {
    json!({
        "members": facts.members,
        "error": facts.member_list_error,
        "alarms": facts.alarms,
    })
}

/// `etcdrill diagnose`: the findings, worst first, each with its action and runbook.
pub fn diagnose_table(facts: &Facts, findings: &[Finding]) -> String {
    let mut text = String::new();
    let members = facts.members.as_deref().unwrap_or_default();
    let voting = members.iter().filter(|m| !m.is_learner).count();
    let answering = facts
        .endpoints
        .iter()
        .filter(|e| e.status.is_some())
        .count();
    text.push_str(&format!(
        "{}: {} member(s) ({} voting), {} of {} endpoint(s) answer\n\n",
        facts.cluster.as_deref().unwrap_or("cluster"),
        members.len(),
        voting,
        answering,
        facts.endpoints.len()
    ));
    if findings.is_empty() {
        text.push_str("no findings\n");
    }
    for finding in findings {
        text.push_str(&format!(
            "{:<8}  {}: {}\n",
            finding.severity.label(),
            finding.code,
            finding.summary
        ));
        for line in finding.detail.lines().filter(|l| !l.is_empty()) {
            text.push_str(&format!("          {line}\n"));
        }
        if !finding.action.is_empty() {
            text.push_str(&format!("          action: {}\n", finding.action));
        }
        if let Some(runbook) = &finding.runbook {
            text.push_str(&format!(
                "          runbook: {}\n",
                runbook.command(facts.inventory.as_deref())
            ));
        }
        for then in &finding.then {
            text.push_str(&format!(
                "          then:    {}\n",
                then.command(facts.inventory.as_deref())
            ));
        }
        text.push('\n');
    }
    text.push_str(&format!(
        "worst: {} (exit code {})\n",
        worst(findings).map_or("none", |s| s.label()),
        exit_code(findings)
    ));
    text
}

/// `etcdrill diagnose -o json`: the findings, the worst severity, the exit code and the facts.
pub fn diagnose_json(facts: &Facts, findings: &[Finding]) -> Value {
    json!({
        "cluster": facts.cluster,
        "worst": worst(findings),
        "exit_code": exit_code(findings),
        "findings": findings.iter().map(|f| {
            let mut value = serde_json::to_value(f).expect("a finding serialises");
            let commands: Vec<String> = f
                .runbook
                .iter()
                .chain(&f.then)
                .map(|r| r.command(facts.inventory.as_deref()))
                .collect();
            if !commands.is_empty() {
                value["commands"] = commands.into();
            }
            value
        }).collect::<Vec<_>>(),
        "facts": facts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_their_columns() {
        let text = render_table(
            &["A", "LONG HEADER", "C"],
            &[
                vec!["wide cell".into(), "x".into(), "".into()],
                vec!["b".into(), "y".into(), "z".into()],
            ],
        );
        assert_eq!(
            text,
            "A          LONG HEADER  C\nwide cell  x\nb          y            z\n"
        );
    }
}
