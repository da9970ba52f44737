//! Where a run's time went: the downtime window (first member stop to healthy) and the time spent
//! per phase, host and step, with overlapping work counted once.

use std::collections::BTreeMap;

use crate::plan::Phase;
use crate::runbook::action::ActionKind;

use super::build::phase_name;
use super::{Downtime, StepReport, StepStatus, TimeShare, TimeSpent};

/// What the downtime window measures.
const DOWNTIME_LABEL: &str = "downtime (first member stop to healthy)";

/// From the first member stop to the last successful health wait or verification after it.
pub(super) fn downtime(steps: &[StepReport]) -> Option<Downtime> {
    let (start_ms, from_step) = steps
        .iter()
        .filter(|s| s.action == ActionKind::EtcdStopMember.name())
        .filter_map(|s| s.start_ms.map(|start| (start, s.key.clone())))
        .min()?;
    let end = steps
        .iter()
        .filter(|s| s.phase == phase_name(Phase::Main) && s.status == StepStatus::Succeeded)
        .filter(|s| s.action == ActionKind::WaitHealthy.name() || s.action.starts_with("verify."))
        .filter_map(|s| s.end_ms.map(|end| (end, s.key.clone())))
        .filter(|(end, _)| *end >= start_ms)
        .max();
    Some(Downtime {
        label: DOWNTIME_LABEL.into(),
        start_ms,
        from_step,
        end_ms: end.as_ref().map(|(end, _)| *end),
        duration_ms: end.as_ref().map(|(end, _)| end - start_ms),
        to_step: end.map(|(_, key)| key),
    })
}

pub(super) fn time_spent(steps: &[StepReport], lanes: &[String]) -> TimeSpent {
    // (start, duration) of each piece of work.
    let work = |step: &StepReport| -> Vec<(u64, u64)> {
        step.attempts
            .iter()
            .map(|a| (a.start_ms, a.duration_ms))
            .collect()
    };
    let share = |name: String, pieces: Vec<Vec<(u64, u64)>>| -> TimeShare {
        let steps = pieces.iter().filter(|p| !p.is_empty()).count();
        let flat: Vec<(u64, u64)> = pieces.into_iter().flatten().collect();
        let start = flat.iter().map(|(s, _)| *s).min().unwrap_or(0);
        let end = flat.iter().map(|(s, d)| s + d).max().unwrap_or(0);
        TimeShare {
            name,
            steps,
            busy_ms: flat.iter().map(|(_, d)| d).sum(),
            span_ms: end.saturating_sub(start),
        }
    };
    let mut by_phase = Vec::new();
    for (phase, name) in [
        (Phase::SteadyBefore, "steady state before"),
        (Phase::Main, "main steps"),
        (Phase::SteadyAfter, "steady state after"),
    ] {
        let in_phase: Vec<&StepReport> = steps
            .iter()
            .filter(|s| s.phase == phase_name(phase))
            .collect();
        if !in_phase.is_empty() {
            by_phase.push(share(name.into(), in_phase.into_iter().map(work).collect()));
        }
    }
    let rollbacks: Vec<Vec<(u64, u64)>> = steps
        .iter()
        .filter_map(|s| s.rollback.as_ref())
        .map(|r| vec![(r.start_ms, r.duration_ms)])
        .collect();
    if !rollbacks.is_empty() {
        by_phase.push(share("rollback".into(), rollbacks));
    }
    let by_lane = lanes
        .iter()
        .map(|lane| {
            let pieces = steps
                .iter()
                .filter(|s| &s.lane == lane)
                .map(|s| {
                    let mut pieces = work(s);
                    pieces.extend(s.rollback.as_ref().map(|r| (r.start_ms, r.duration_ms)));
                    pieces
                })
                .collect();
            share(lane.clone(), pieces)
        })
        .collect();
    let mut groups: BTreeMap<&str, Vec<Vec<(u64, u64)>>> = BTreeMap::new();
    for step in steps {
        groups.entry(&step.step).or_default().push(work(step));
    }
    let mut by_step: Vec<TimeShare> = groups
        .into_iter()
        .map(|(name, pieces)| share(name.into(), pieces))
        .filter(|share| share.steps > 0)
        .collect();
    by_step.sort_by(|a, b| {
        (b.span_ms, b.busy_ms)
            .cmp(&(a.span_ms, a.busy_ms))
            .then_with(|| a.name.cmp(&b.name))
    });
    TimeSpent {
        by_phase,
        by_lane,
        by_step,
    }
}
