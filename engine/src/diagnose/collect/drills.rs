//! Finding the newest passing restore drill among the run directories.

use std::path::Path;
use std::time::UNIX_EPOCH;

use crate::diagnose::facts::{DrillFacts, DrillPass};

/// The newest passing drill under `dir`: run directories whose `report.json` has drill facts and
/// the outcome `succeeded`. Read loosely (only the fields needed), so any report version works.
pub fn scan_drills(dir: &Path) -> DrillFacts {
    let mut facts = DrillFacts {
        dir: dir.to_path_buf(),
        ..DrillFacts::default()
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return facts;
    };
    for entry in entries.flatten() {
        let run = entry.path();
        let Ok(text) = std::fs::read_to_string(run.join("report.json")) else {
            continue;
        };
        let Ok(report) = serde_json::from_str::<serde_json::Value>(&text) else {
            continue;
        };
        if report.get("drill").is_none_or(|d| d.is_null()) {
            continue;
        }
        facts.drills_seen += 1;
        if report.pointer("/verdict/outcome").and_then(|o| o.as_str()) != Some("succeeded") {
            continue;
        }
        let Some(ended_at) = report
            .pointer("/timing/ended_at")
            .or_else(|| report.pointer("/timing/started_at"))
            .and_then(|t| t.as_str())
            .and_then(|t| humantime::parse_rfc3339_weak(t).ok())
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_secs())
        else {
            continue;
        };
        let text = |pointer: &str| {
            report
                .pointer(pointer)
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_string()
        };
        let pass = DrillPass {
            run: run.clone(),
            runbook: text("/run/runbook"),
            inventory: text("/run/inventory"),
            ended_at,
        };
        if facts
            .newest_pass
            .as_ref()
            .is_none_or(|p| p.ended_at < pass.ended_at)
        {
            facts.newest_pass = Some(pass);
        }
    }
    facts
}
