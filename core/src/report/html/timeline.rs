//! The page's SVG timeline: one lane per host (controller, cluster, each node), every attempt and
//! rollback a bar placed by its start and sized by its duration, an axis with round ticks, and the
//! run's markers (gates, interruptions, the point of no return) as labelled lines.

use std::fmt::{Result, Write};

use super::esc;
use crate::humanize::human_ms;
use crate::journal::StepResult;
use crate::report::{Marker, MarkerKind, Report, StepReport, offset_ms, result_words};

/// Geometry of the timeline, in SVG user units.
const WIDTH: f64 = 1200.0;
const LABEL: f64 = 170.0;
const RIGHT: f64 = 24.0;
const AXIS: f64 = 26.0;
const MARKS: f64 = 20.0;
const ROW: f64 = 24.0;
const BAR: f64 = 18.0;
const LANE_PAD: f64 = 6.0;

/// One bar of the timeline.
struct Bar<'a> {
    step: &'a StepReport,
    start_ms: u64,
    duration_ms: u64,
    class: &'static str,
    label: String,
    tip: String,
}

fn bars(step: &StepReport) -> Vec<Bar<'_>> {
    let mut bars: Vec<Bar<'_>> = step
        .attempts
        .iter()
        .map(|attempt| {
            let class = match &attempt.result {
                Some(StepResult::Succeeded) => "ok",
                Some(StepResult::Failed { .. }) => "failed",
                Some(StepResult::TimedOut) => "timed-out",
                Some(StepResult::Shown) => "shown",
                None => "unknown",
            };
            let label = if step.attempts.len() > 1 {
                format!("{} #{}", step.step, attempt.number)
            } else {
                step.step.clone()
            };
            let tip = format!(
                "{} — {} (attempt {}): {}, {} at {}",
                step.key,
                step.title,
                attempt.number,
                result_words(attempt.result.as_ref()),
                human_ms(attempt.duration_ms),
                offset_ms(attempt.start_ms)
            );
            Bar {
                step,
                start_ms: attempt.start_ms,
                duration_ms: attempt.duration_ms,
                class,
                label,
                tip,
            }
        })
        .collect();
    if let Some(rollback) = &step.rollback {
        bars.push(Bar {
            step,
            start_ms: rollback.start_ms,
            duration_ms: rollback.duration_ms,
            class: if rollback.result == Some(StepResult::Succeeded) {
                "rollback-ok"
            } else {
                "rollback-failed"
            },
            label: format!("undo {}", step.step),
            tip: format!(
                "rollback of {}: {}, {} at {}",
                step.key,
                result_words(rollback.result.as_ref()),
                human_ms(rollback.duration_ms),
                offset_ms(rollback.start_ms)
            ),
        });
    }
    bars
}

/// A tick interval that gives at most ~10 ticks.
pub(super) fn tick_ms(total: u64) -> u64 {
    const NICE: [u64; 22] = [
        100,
        200,
        500,
        1_000,
        2_000,
        5_000,
        10_000,
        15_000,
        30_000,
        60_000,
        120_000,
        300_000,
        600_000,
        900_000,
        1_800_000,
        3_600_000,
        7_200_000,
        10_800_000,
        21_600_000,
        43_200_000,
        86_400_000,
        172_800_000,
    ];
    NICE.into_iter()
        .find(|step| total / step <= 10)
        .unwrap_or(NICE[NICE.len() - 1])
}

fn tick_label(ms: u64, step: u64) -> String {
    if step < 1_000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else if step < 60_000 {
        format!("{} s", ms / 1000)
    } else if step < 3_600_000 {
        format!("{} min", ms / 60_000)
    } else {
        format!("{} h", ms / 3_600_000)
    }
}

/// Writes the timeline section of the page.
pub(super) fn timeline(out: &mut String, report: &Report) -> Result {
    writeln!(out, "<section id=\"timeline\">\n<h2>Timeline</h2>")?;
    let total = report.timing.total_ms.max(1);
    let plot = WIDTH - LABEL - RIGHT;
    let x = |ms: u64| LABEL + (ms.min(total) as f64 / total as f64) * plot;
    let min_width = 3.0;

    // Lay out each lane: bars in rows so that none overlaps another.
    let mut lanes = Vec::new();
    for lane in &report.lanes {
        let mut lane_bars: Vec<Bar<'_>> = report
            .steps
            .iter()
            .filter(|s| &s.lane == lane)
            .flat_map(bars)
            .collect();
        lane_bars.sort_by_key(|b| (b.start_ms, b.step.key.clone()));
        let mut row_ends: Vec<f64> = Vec::new();
        let mut placed = Vec::new();
        for bar in lane_bars {
            let left = x(bar.start_ms);
            let width = (x(bar.start_ms + bar.duration_ms) - left).max(min_width);
            let row = match row_ends.iter().position(|end| *end <= left + 0.5) {
                Some(row) => row,
                None => {
                    row_ends.push(0.0);
                    row_ends.len() - 1
                }
            };
            row_ends[row] = left + width;
            placed.push((bar, row, left, width));
        }
        lanes.push((lane, row_ends.len().max(1), placed));
    }
    let lanes_height: f64 = lanes
        .iter()
        .map(|(_, rows, _)| *rows as f64 * ROW + 2.0 * LANE_PAD)
        .sum();
    let top = AXIS + MARKS;
    let height = top + lanes_height + 4.0;
    writeln!(
        out,
        "<svg class=\"timeline\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {WIDTH} {height:.0}\" role=\"img\" aria-label=\"Timeline of the run's steps, one lane per host\">"
    )?;

    // Lane backgrounds and labels.
    let mut y = top;
    let mut lane_tops = Vec::new();
    for (i, (lane, rows, _)) in lanes.iter().enumerate() {
        let lane_height = *rows as f64 * ROW + 2.0 * LANE_PAD;
        let alt = if i % 2 == 1 { " alt" } else { "" };
        writeln!(
            out,
            "<g class=\"lane\" data-lane=\"{}\"><rect class=\"lane-bg{alt}\" x=\"0\" y=\"{y:.1}\" width=\"{WIDTH}\" height=\"{lane_height:.1}\"/><svg x=\"6\" y=\"{y:.1}\" width=\"{:.0}\" height=\"{lane_height:.1}\"><text class=\"lane-label\" x=\"0\" y=\"{:.1}\">{}</text></svg></g>",
            esc(lane),
            LABEL - 14.0,
            LANE_PAD + ROW / 2.0 + 4.5,
            esc(lane)
        )?;
        lane_tops.push(y);
        y += lane_height;
    }

    // Grid and axis.
    let tick = tick_ms(total);
    let mut at = 0;
    while at <= total {
        let gx = x(at);
        writeln!(
            out,
            "<line class=\"grid\" x1=\"{gx:.1}\" y1=\"{AXIS:.0}\" x2=\"{gx:.1}\" y2=\"{:.1}\"/><text class=\"tick\" x=\"{gx:.1}\" y=\"{:.0}\" text-anchor=\"middle\">{}</text>",
            top + lanes_height,
            AXIS - 9.0,
            tick_label(at, tick)
        )?;
        at += tick;
    }

    // The downtime window behind the bars.
    if let Some(downtime) = &report.downtime {
        let end = downtime.end_ms.unwrap_or(total);
        let left = x(downtime.start_ms);
        let width = (x(end) - left).max(2.0);
        let label = match downtime.duration_ms {
            Some(ms) => format!("downtime {}", human_ms(ms)),
            None => "downtime: not over".into(),
        };
        writeln!(
            out,
            "<g class=\"downtime\"><title>{}</title><rect x=\"{left:.1}\" y=\"{AXIS:.0}\" width=\"{width:.1}\" height=\"{:.1}\"/><text x=\"{:.1}\" y=\"{:.0}\">{}</text></g>",
            esc(&downtime.label),
            MARKS + lanes_height,
            left + 4.0,
            AXIS + 14.0,
            esc(&label)
        )?;
    }

    // Bars.
    for ((_, _, placed), lane_top) in lanes.iter().zip(&lane_tops) {
        for (bar, row, left, width) in placed {
            let by = lane_top + LANE_PAD + *row as f64 * ROW + (ROW - BAR) / 2.0;
            write!(
                out,
                "<g class=\"bar {}\" data-step=\"{}\"><title>{}</title><rect x=\"{left:.1}\" y=\"{by:.1}\" width=\"{width:.1}\" height=\"{BAR}\"/>",
                bar.class,
                esc(&bar.step.key),
                esc(&bar.tip)
            )?;
            if *width > 36.0 {
                write!(
                    out,
                    "<svg x=\"{left:.1}\" y=\"{by:.1}\" width=\"{width:.1}\" height=\"{BAR}\"><text x=\"5\" y=\"13\">{}</text></svg>",
                    esc(&bar.label)
                )?;
            }
            writeln!(out, "</g>")?;
        }
    }

    // Markers across every lane (the start is the axis itself).
    for marker in report
        .markers
        .iter()
        .filter(|m| m.kind != MarkerKind::Started)
    {
        marker_line(out, marker, x(marker.at_ms), top + lanes_height)?;
    }
    writeln!(out, "</svg>")?;
    writeln!(
        out,
        "<div class=\"legend\"><span style=\"--c:var(--ok)\">succeeded</span><span style=\"--c:var(--failed)\">failed</span><span style=\"--c:var(--timeout)\">timed out</span><span style=\"--c:var(--shown)\">shown (check mode)</span><span style=\"--c:var(--unknown)\">no recorded end</span><span style=\"--c:var(--rb)\">rolled back</span><span style=\"--c:var(--rbfail)\">rollback failed</span><span style=\"--c:rgba(214,64,64,.25)\">downtime</span></div>"
    )?;
    writeln!(out, "</section>")
}

fn marker_line(out: &mut String, marker: &Marker, mx: f64, bottom: f64) -> Result {
    let class = match marker.kind {
        MarkerKind::Started => "started",
        MarkerKind::Resumed => "resumed",
        MarkerKind::Interrupted => "interrupted",
        MarkerKind::Finished => "finished",
    };
    // Labels near the right edge hang to the left of their line.
    let (anchor, dx) = if mx > WIDTH - 200.0 {
        ("end", -4.0)
    } else {
        ("start", 4.0)
    };
    writeln!(
        out,
        "<g class=\"marker {class}\"><title>{} {}</title><line x1=\"{mx:.1}\" y1=\"{AXIS:.0}\" x2=\"{mx:.1}\" y2=\"{bottom:.1}\"/><text x=\"{:.1}\" y=\"{:.0}\" text-anchor=\"{anchor}\">{}</text></g>",
        offset_ms(marker.at_ms),
        esc(&marker.label),
        mx + dx,
        AXIS + MARKS - 5.0,
        esc(&short_label(&marker.label))
    )
}

fn short_label(label: &str) -> String {
    let mut chars = label.chars();
    let short: String = chars.by_ref().take(40).collect();
    if chars.next().is_some() {
        format!("{short}…")
    } else {
        short
    }
}
