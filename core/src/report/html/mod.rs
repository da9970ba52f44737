//! The report as one self-contained HTML page: a verdict banner, the key numbers, an SVG timeline
//! with one lane per host (controller, cluster, each node) where every attempt and rollback is a
//! bar placed by its start and sized by its duration, then the tables.
//!
//! Inline CSS, no script, no external font or image: the page opens from a run directory, an
//! e-mail attachment or a CI artifact alike. Every text from runbooks, inventories and journals
//! is escaped, control, bidirectional and zero-width characters included.

use std::fmt::{Result, Write};

use super::{
    FactsRow, OperationSummary, Report, StepReport, StepStatus, TimeShare, offset_ms, result_words,
    timestamp_text,
};
use crate::humanize::{duration, human_ms};
use crate::journal::StepResult;

mod timeline;

use timeline::timeline;

/// Renders `report` as an HTML page.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    write_page(&mut out, report).expect("writing to a String cannot fail");
    out
}

/// `text` safe in HTML text and attribute values, on one line: markup characters as references,
/// control characters (line breaks included), bidirectional and zero-width ones shown escaped.
fn esc(text: &str) -> String {
    escape(text, false)
}

/// Like [`esc`], but keeps line breaks and tabs: for `<pre>` blocks.
fn esc_block(text: &str) -> String {
    escape(text, true)
}

fn escape(text: &str, keep_lines: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\n' | '\t' if keep_lines => out.push(c),
            c if crate::shown::is_control_or_invisible(c) => {
                out.push_str(&crate::shown::escape_line(&c.to_string()))
            }
            c => out.push(c),
        }
    }
    out
}

/// Backticked keys in sentences shown as code.
fn rich(text: &str) -> String {
    let escaped = esc(text);
    let mut out = String::new();
    for (i, part) in escaped.split('`').enumerate() {
        if i % 2 == 1 {
            write!(out, "<code>{part}</code>").expect("writing to a String");
        } else {
            out.push_str(part);
        }
    }
    // An odd number of backticks: keep them as text.
    if escaped.matches('`').count() % 2 == 1 {
        return escaped;
    }
    out
}

const CSS: &str = r#"
:root{--ok:#2f9e62;--failed:#d64040;--timeout:#e8871e;--shown:#8a9bb3;--unknown:#9aa0a6;--rb:#7b61d1;--rbfail:#8b1a1a;--ink:#1d2433;--muted:#5b6475;--line:#e3e6ec;--bg:#f6f7f9}
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:var(--ink);background:var(--bg)}
main{max-width:1240px;margin:0 auto;padding:0 20px 40px}
code,pre,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"Liberation Mono",monospace;font-size:13px}
code{background:#eef0f4;padding:1px 4px;border-radius:4px;overflow-wrap:anywhere}
pre{background:#1f2430;color:#e8eaf0;padding:12px 14px;border-radius:8px;overflow:auto;white-space:pre-wrap;overflow-wrap:anywhere}
.banner{color:#fff;padding:26px 20px 22px;margin-bottom:18px}
.banner .inner{max-width:1200px;margin:0 auto}
.banner .kicker{opacity:.85;font-size:13px;letter-spacing:.04em;text-transform:uppercase}
.banner h1{margin:4px 0 6px;font-size:34px;letter-spacing:.01em}
.banner p{margin:0;font-size:16px;opacity:.95}
.banner code{background:rgba(255,255,255,.18);color:#fff}
.v-succeeded{background:linear-gradient(135deg,#1f7a4a,#2f9e62)}
.v-failed{background:linear-gradient(135deg,#9f1c1c,#d64040)}
.v-rolled_back{background:linear-gradient(135deg,#9a4a00,#d97706)}
.v-rollback_failed{background:linear-gradient(135deg,#5c0a14,#9f1c1c)}
.v-interrupted,.v-incomplete{background:linear-gradient(135deg,#5b5f6b,#7d8391)}
.numbers{display:grid;grid-template-columns:repeat(auto-fit,minmax(170px,1fr));gap:12px;margin-bottom:18px}
.num{background:#fff;border:1px solid var(--line);border-radius:10px;padding:12px 14px}
.num .label{display:block;color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.04em}
.num .value{display:block;font-size:22px;font-weight:600;margin-top:2px}
.num .sub{display:block;color:var(--muted);font-size:12px}
section{background:#fff;border:1px solid var(--line);border-radius:10px;padding:14px 18px;margin-bottom:16px}
h2{font-size:18px;margin:2px 0 12px}
table{border-collapse:collapse;width:100%;font-size:14px}
table+table{margin-top:16px}
th,td{text-align:left;padding:6px 8px;border-bottom:1px solid var(--line);vertical-align:top}
th{color:var(--muted);font-weight:600;font-size:12px;text-transform:uppercase;letter-spacing:.03em}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.pill{display:inline-block;padding:1px 8px;border-radius:999px;font-size:12px;font-weight:600;color:#fff;white-space:nowrap}
.s-succeeded{background:var(--ok)}.s-failed{background:var(--failed)}.s-timed_out{background:var(--timeout)}.s-shown{background:var(--shown)}
.s-skipped,.s-not_run{background:#c3c8d2;color:#333}.s-no_recorded_end{background:var(--unknown)}
.timeline{width:100%;height:auto;display:block}
.timeline text{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif}
.timeline .lane-label{font-size:13px;font-weight:600;fill:var(--ink)}
.timeline .tick{font-size:11px;fill:var(--muted)}
.timeline .grid{stroke:var(--line);stroke-width:1}
.timeline .lane-bg{fill:#f8f9fb}
.timeline .lane-bg.alt{fill:#fff}
.timeline .bar rect{rx:3px;ry:3px}
.timeline .bar text{font-size:11px;fill:#fff;font-weight:600}
.timeline .ok rect{fill:var(--ok)}.timeline .failed rect{fill:var(--failed)}.timeline .timed-out rect{fill:var(--timeout)}
.timeline .shown rect{fill:var(--shown)}.timeline .unknown rect{fill:var(--unknown);stroke:#555;stroke-dasharray:3 2}
.timeline .rollback-ok rect{fill:var(--rb)}.timeline .rollback-failed rect{fill:var(--rbfail)}
.timeline .marker line{stroke:#444;stroke-width:1.5;stroke-dasharray:5 4}
.timeline .marker text{font-size:11px;fill:#333;font-weight:600}
.timeline .marker.interrupted line{stroke:var(--timeout)}
.timeline .downtime rect{fill:rgba(214,64,64,.08);stroke:rgba(214,64,64,.35);stroke-dasharray:4 3}
.timeline .downtime text{font-size:11px;fill:#a52a2a;font-weight:600}
.legend{display:flex;flex-wrap:wrap;gap:14px;font-size:12px;color:var(--muted);margin-top:8px}
.legend span::before{content:"";display:inline-block;width:12px;height:12px;border-radius:3px;margin-right:5px;vertical-align:-2px;background:var(--c)}
.share{background:#e9ecf2;border-radius:4px;height:10px;min-width:120px}
.share div{background:#4d7cc7;height:10px;border-radius:4px}
ul.findings{margin:0;padding-left:18px}
ul.findings li{margin:3px 0}
.kind{font-weight:600;text-transform:capitalize}
details{margin:6px 0}
summary{cursor:pointer}
.muted{color:var(--muted)}
footer{color:var(--muted);font-size:12px;margin-top:8px}
"#;

fn write_page(out: &mut String, report: &Report) -> Result {
    let verdict = &report.verdict;
    writeln!(out, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>")?;
    writeln!(out, "<meta charset=\"utf-8\">")?;
    writeln!(
        out,
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
    )?;
    writeln!(
        out,
        "<title>{} · {} · etcdrill</title>",
        esc(&verdict.title),
        esc(&report.run.runbook)
    )?;
    writeln!(out, "<style>{CSS}</style>\n</head>\n<body>")?;
    banner(out, report)?;
    writeln!(out, "<main>")?;
    numbers(out, report)?;
    timeline(out, report)?;
    drill(out, report)?;
    verification(out, report)?;
    node_facts(out, report)?;
    findings(out, report)?;
    time_spent(out, report)?;
    steps(out, report)?;
    commands(out, report)?;
    reproduce(out, report)?;
    footer(out, report)?;
    writeln!(out, "</main>\n</body>\n</html>")
}

fn banner(out: &mut String, report: &Report) -> Result {
    let verdict = &report.verdict;
    let run = &report.run;
    let mut kicker = format!(
        "etcdrill report · {} on {}",
        esc(&run.runbook),
        esc(&run.inventory)
    );
    if run.production {
        kicker.push_str(" · production");
    }
    if run.check {
        kicker.push_str(" · check mode");
    }
    writeln!(
        out,
        "<header class=\"banner v-{}\" id=\"verdict\"><div class=\"inner\">",
        verdict.outcome.name()
    )?;
    writeln!(out, "<div class=\"kicker\">{kicker}</div>")?;
    writeln!(out, "<h1>{}</h1>", esc(&verdict.title))?;
    if let Some(reason) = &verdict.reason {
        writeln!(out, "<p>{}</p>", rich(reason))?;
    }
    writeln!(out, "</div></header>")
}

fn number(out: &mut String, label: &str, value: &str, sub: &str) -> Result {
    writeln!(
        out,
        "<div class=\"num\"><span class=\"label\">{label}</span><span class=\"value\">{value}</span><span class=\"sub\">{sub}</span></div>"
    )
}

fn numbers(out: &mut String, report: &Report) -> Result {
    writeln!(out, "<div class=\"numbers\" id=\"numbers\">")?;
    let sessions = match report.timing.sessions {
        1 => "one session".to_string(),
        n => format!("{n} sessions (resumed)"),
    };
    number(
        out,
        "Total time",
        &human_ms(report.timing.total_ms),
        &sessions,
    )?;
    if let Some(downtime) = &report.downtime {
        let (value, sub) = match downtime.duration_ms {
            Some(ms) => (human_ms(ms), "first member stop to healthy".to_string()),
            None => (
                "not over".into(),
                "no health check succeeded after the first stop".into(),
            ),
        };
        number(out, "Downtime", &value, &sub)?;
    }
    match &report.drill {
        Some(drill) => {
            let rto = drill.rto.map_or("—".into(), duration);
            number(out, "RTO", &rto, "declared to healthy and verified")?;
            match &drill.rpo {
                Some(rpo) => number(
                    out,
                    "RPO",
                    &duration(rpo.snapshot_age),
                    &rpo.revisions_lost
                        .map_or("revisions lost: unknown".into(), |n| {
                            format!("{n} revisions lost")
                        }),
                )?,
                None => number(out, "RPO", "—", "not measured")?,
            }
        }
        None => number(out, "RTO / RPO", "—", "not a drill")?,
    }
    let ran = report
        .steps
        .iter()
        .filter(|s| !s.attempts.is_empty())
        .count();
    number(
        out,
        "Steps",
        &format!("{ran} / {}", report.steps.len()),
        &esc(&super::markdown::counts(&report.steps)),
    )?;
    let retried = report.steps.iter().filter(|s| s.attempts.len() > 1).count();
    let failed_rollbacks = report
        .steps
        .iter()
        .filter(|s| {
            s.rollback
                .as_ref()
                .is_some_and(|r| r.result != Some(StepResult::Succeeded))
        })
        .count();
    number(
        out,
        "Retried",
        &retried.to_string(),
        &if failed_rollbacks > 0 {
            format!("{failed_rollbacks} rollback(s) failed")
        } else {
            "steps needing more than one attempt".into()
        },
    )?;
    writeln!(out, "</div>")
}

fn drill(out: &mut String, report: &Report) -> Result {
    writeln!(out, "<section id=\"rto-rpo\">\n<h2>RTO / RPO</h2>")?;
    match &report.drill {
        None => writeln!(
            out,
            "<p class=\"muted\">Not a drill: no RTO or RPO was measured.</p>"
        )?,
        Some(drill) => {
            writeln!(out, "<table>")?;
            let rto = drill.rto.map_or("not measured".into(), duration);
            writeln!(
                out,
                "<tr><th>RTO (disaster declared to quorum healthy and verified)</th><td class=\"n\">{rto}</td></tr>"
            )?;
            match &drill.rpo {
                Some(rpo) => {
                    writeln!(
                        out,
                        "<tr><th>RPO: snapshot age</th><td class=\"n\">{}</td></tr>",
                        duration(rpo.snapshot_age)
                    )?;
                    writeln!(
                        out,
                        "<tr><th>RPO: revisions lost</th><td class=\"n\">{}</td></tr>",
                        rpo.revisions_lost
                            .map_or("unknown".into(), |n| n.to_string())
                    )?;
                }
                None => writeln!(
                    out,
                    "<tr><th>RPO</th><td class=\"n\">not measured</td></tr>"
                )?,
            }
            writeln!(out, "</table>")?;
        }
    }
    writeln!(out, "</section>")
}

fn status_pill(step: &StepReport) -> String {
    let class = match step.status {
        StepStatus::Succeeded => "succeeded",
        StepStatus::Failed => "failed",
        StepStatus::TimedOut => "timed_out",
        StepStatus::Shown => "shown",
        StepStatus::Skipped => "skipped",
        StepStatus::NotRun => "not_run",
        StepStatus::NoRecordedEnd => "no_recorded_end",
    };
    format!(
        "<span class=\"pill s-{class}\">{}</span>",
        step.status.words()
    )
}

fn status_detail(step: &StepReport) -> String {
    match (&step.error, &step.skip) {
        (_, Some(reason)) => rich(&reason.to_string()),
        (Some(error), _) => esc(error),
        _ => String::new(),
    }
}

fn verification(out: &mut String, report: &Report) -> Result {
    writeln!(out, "<section id=\"verification\">\n<h2>Verification</h2>")?;
    let mut any = false;
    if let Some(drill) = &report.drill {
        if !drill.verifications.is_empty() {
            any = true;
            writeln!(
                out,
                "<table><tr><th>Drill check</th><th>Result</th><th>Detail</th></tr>"
            )?;
            for v in &drill.verifications {
                let pill = if v.passed {
                    "<span class=\"pill s-succeeded\">passed</span>"
                } else {
                    "<span class=\"pill s-failed\">FAILED</span>"
                };
                writeln!(
                    out,
                    "<tr><td>{}</td><td>{pill}</td><td>{}</td></tr>",
                    esc(&v.name),
                    esc(&v.detail)
                )?;
            }
            writeln!(out, "</table>")?;
        }
    }
    let checks: Vec<&StepReport> = report
        .steps
        .iter()
        .filter(|s| super::markdown::is_check(s))
        .collect();
    if !checks.is_empty() {
        any = true;
        writeln!(
            out,
            "<table><tr><th>Check step</th><th>Action</th><th>Result</th><th></th></tr>"
        )?;
        for step in checks {
            writeln!(
                out,
                "<tr><td><code>{}</code></td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
                esc(&step.key),
                esc(&step.action),
                status_pill(step),
                status_detail(step)
            )?;
        }
        writeln!(out, "</table>")?;
    }
    if !any {
        writeln!(out, "<p class=\"muted\">No verification ran.</p>")?;
    }
    writeln!(out, "</section>")
}

/// What each node said before the run touched it: the real paths the run acted on.
fn node_facts(out: &mut String, report: &Report) -> Result {
    if report.node_facts.is_empty() {
        return Ok(());
    }
    writeln!(
        out,
        "<section id=\"node-facts\">\n<h2>Node facts</h2>\n<table>\n<tr>"
    )?;
    for column in FactsRow::COLUMNS {
        write!(out, "<th>{}</th>", esc(column))?;
    }
    writeln!(out, "</tr>")?;
    for facts in &report.node_facts {
        let row = FactsRow::of(facts);
        let code = |text: Option<&str>| {
            text.map_or_else(String::new, |t| format!("<code>{}</code>", esc(t)))
        };
        writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            code(Some(&row.node)),
            code(row.configuration.as_deref()),
            code(row.data_dir.as_deref()),
            esc(&row.filesystem),
            esc(&row.process),
            esc(&row.etcdutl)
        )?;
    }
    writeln!(out, "</table>\n</section>")
}

fn findings(out: &mut String, report: &Report) -> Result {
    writeln!(out, "<section id=\"findings\">\n<h2>Findings</h2>")?;
    if report.findings.is_empty() {
        writeln!(out, "<p class=\"muted\">Nothing stood out.</p>")?;
    } else {
        writeln!(out, "<ul class=\"findings\">")?;
        for finding in &report.findings {
            let kind = serde_json::to_value(finding.kind)
                .ok()
                .and_then(|v| v.as_str().map(|s| s.replace('_', " ")))
                .unwrap_or_default();
            writeln!(
                out,
                "<li><span class=\"kind\">{}</span>: {}</li>",
                esc(&kind),
                rich(&finding.message)
            )?;
        }
        writeln!(out, "</ul>")?;
    }
    writeln!(out, "</section>")
}

fn shares(out: &mut String, title: &str, shares: &[TimeShare], total: u64, code: bool) -> Result {
    writeln!(
        out,
        "<table><tr><th>{title}</th><th class=\"n\">Steps run</th><th class=\"n\">Wall-clock</th><th class=\"n\">Busy</th><th>Share of the run</th></tr>"
    )?;
    for share in shares {
        let name = if code {
            format!("<code>{}</code>", esc(&share.name))
        } else {
            esc(&share.name)
        };
        let percent = (share.span_ms as f64 / total.max(1) as f64 * 100.0).min(100.0);
        writeln!(
            out,
            "<tr><td>{name}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td><div class=\"share\"><div style=\"width:{percent:.1}%\"></div></div></td></tr>",
            share.steps,
            human_ms(share.span_ms),
            human_ms(share.busy_ms)
        )?;
    }
    writeln!(out, "</table>")
}

fn time_spent(out: &mut String, report: &Report) -> Result {
    writeln!(
        out,
        "<section id=\"time\">\n<h2>Where the time went</h2>\n<p class=\"muted\">Wall-clock runs from the first start to the last end; busy adds up every attempt, so parallel work counts once per host.</p>"
    )?;
    let total = report.timing.total_ms;
    let spent = &report.time_spent;
    shares(out, "Phase", &spent.by_phase, total, false)?;
    shares(out, "Lane", &spent.by_lane, total, true)?;
    shares(out, "Runbook step", &spent.by_step, total, true)?;
    writeln!(out, "</section>")
}

fn steps(out: &mut String, report: &Report) -> Result {
    writeln!(out, "<section id=\"steps\">\n<h2>Steps</h2>")?;
    writeln!(
        out,
        "<table><tr><th>Lane</th><th>Step</th><th class=\"n\">Start</th><th class=\"n\">Duration</th><th class=\"n\">Attempts</th><th>Result</th></tr>"
    )?;
    let mut steps: Vec<&StepReport> = report.steps.iter().collect();
    steps.sort_by_key(|s| s.start_ms.unwrap_or(u64::MAX));
    for step in steps {
        let mut detail = status_detail(step);
        if let Some(rollback) = &step.rollback {
            write!(
                detail,
                " rolled back at {}: {}",
                offset_ms(rollback.start_ms),
                esc(&result_words(rollback.result.as_ref()))
            )?;
        }
        if let Some(skip) = step.rollback_skipped {
            write!(
                detail,
                " left as it was by the rollback: {}",
                esc(&skip.to_string())
            )?;
        }
        if !step.output_tail.is_empty() {
            write!(
                detail,
                "<details><summary>output</summary><pre>{}</pre></details>",
                esc_block(&step.output_tail)
            )?;
        }
        writeln!(
            out,
            "<tr><td><code>{}</code></td><td><code>{}</code><br><span class=\"muted\">{}</span></td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{} {detail}</td></tr>",
            esc(&step.lane),
            esc(&step.key),
            esc(&step.title),
            step.start_ms.map(offset_ms).unwrap_or_default(),
            step.duration_ms.map(human_ms).unwrap_or_default(),
            step.attempts.len(),
            status_pill(step)
        )?;
    }
    writeln!(out, "</table>\n</section>")
}

fn operation(out: &mut String, op: &OperationSummary) -> Result {
    writeln!(out, "<p>{}</p>", esc(&op.headline))?;
    if !op.args.is_empty() {
        writeln!(out, "<table>")?;
        for arg in &op.args {
            writeln!(
                out,
                "<tr><th><code>{}</code></th><td><code>{}</code></td></tr>",
                esc(&arg.name),
                esc(&arg.value)
            )?;
        }
        writeln!(out, "</table>")?;
    }
    if let Some(script) = &op.script {
        writeln!(out, "<pre>{}</pre>", esc_block(script))?;
    }
    Ok(())
}

fn commands(out: &mut String, report: &Report) -> Result {
    writeln!(
        out,
        "<section id=\"commands\">\n<h2>Commands that ran</h2>\n<p class=\"muted\">As the plan rendered them; <code>⟨…⟩</code> marks values filled in when the step ran.</p>"
    )?;
    let mut ran: Vec<&StepReport> = report
        .steps
        .iter()
        .filter(|s| !s.attempts.is_empty())
        .collect();
    ran.sort_by_key(|s| s.start_ms);
    for step in ran {
        writeln!(
            out,
            "<details><summary><code>{}</code> on <code>{}</code> {}</summary>",
            esc(&step.key),
            esc(&step.lane),
            status_pill(step)
        )?;
        operation(out, &step.operation)?;
        writeln!(out, "</details>")?;
    }
    for step in report.steps.iter().filter(|s| s.rollback.is_some()) {
        let rollback = step.rollback.as_ref().expect("filtered on rollbacks");
        writeln!(
            out,
            "<details><summary>rollback of <code>{}</code> on <code>{}</code>: {}</summary>",
            esc(&step.key),
            esc(&step.lane),
            esc(&result_words(rollback.result.as_ref()))
        )?;
        match &rollback.operation {
            Some(op) => operation(out, op)?,
            None => writeln!(out, "<p>Nothing could run: the step cannot be undone.</p>")?,
        }
        writeln!(out, "</details>")?;
    }
    writeln!(out, "</section>")
}

fn reproduce(out: &mut String, report: &Report) -> Result {
    writeln!(out, "<section id=\"reproduce\">\n<h2>Reproduce</h2>")?;
    let reproduce = &report.reproduce;
    let mut text = String::new();
    for (label, command) in [
        ("# run it again", &reproduce.run),
        ("# continue this run", &reproduce.resume),
        ("# undo what this run completed", &reproduce.rollback),
    ] {
        if let Some(command) = command {
            text.push_str(&format!("{label}\n{command}\n"));
        }
    }
    writeln!(out, "<pre>{}</pre>", esc_block(text.trim_end()))?;
    if !reproduce.secret_params.is_empty() {
        let names: Vec<String> = reproduce
            .secret_params
            .iter()
            .map(|n| format!("<code>{}</code>", esc(n)))
            .collect();
        writeln!(
            out,
            "<p class=\"muted\">Secret parameters are never stored: give {} again in place of <code>...</code>.</p>",
            names.join(", ")
        )?;
    }
    writeln!(out, "</section>")
}

fn footer(out: &mut String, report: &Report) -> Result {
    let run = &report.run;
    let mut parts = vec![format!("run <code>{}</code>", esc(&run.id))];
    if let Some(dir) = &run.run_dir {
        parts.push(format!("in <code>{}</code>", esc(dir)));
    }
    parts.push(format!(
        "plan <code>{}</code>{}",
        esc(run.plan_digest.get(..12).unwrap_or(&run.plan_digest)),
        if run.plan_matches {
            ""
        } else {
            " (not the plan this report was made with)"
        }
    ));
    parts.push(format!(
        "started {}",
        esc(&timestamp_text(report.timing.started_at))
    ));
    if let Some(version) = &run.etcdrill {
        parts.push(format!("etcdrill {}", esc(version)));
    }
    if let Some(at) = run.generated_at {
        parts.push(format!("report generated {}", esc(&timestamp_text(at))));
    }
    writeln!(out, "<footer>{}</footer>", parts.join(" · "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_for_html() {
        assert_eq!(
            esc("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
        assert_eq!(esc("a\nb\u{1b}"), "a\\nb\\u{1b}");
        assert_eq!(esc_block("a\nb\u{1b}"), "a\nb\\u{1b}");
        assert_eq!(rich("`a<b` failed"), "<code>a&lt;b</code> failed");
        assert_eq!(rich("odd ` tick"), "odd ` tick");
    }

    #[test]
    fn ticks_stay_few() {
        for total in [1, 999, 4_700, 61_000, 3_600_000, 90_000_000] {
            let tick = super::timeline::tick_ms(total);
            assert!(total / tick <= 10, "{total}: {tick}");
        }
    }
}
