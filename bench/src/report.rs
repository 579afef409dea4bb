//! The table: every figure with its baseline from the same run, the ratios against their targets, and the
//! results section of docs/benchmarks.md (between marker comments, replaced whole on every run).

use std::fmt::Write as _;
use std::path::Path;

use crate::distribution::DistributionResults;
use crate::http_suite::{HttpResults, ScenarioResult};

const BEGIN: &str =
    "<!-- bench:results:begin (written by deploy/bench.sh; do not edit by hand) -->";
const END: &str = "<!-- bench:results:end -->";

/// Microseconds as milliseconds with two decimals.
pub(crate) fn ms(us: u64) -> String {
    format!("{:.2}", us as f64 / 1000.0)
}

/// A target's verdict cell.
pub(crate) fn verdict(ok: bool) -> &'static str {
    if ok {
        "meets"
    } else {
        "**misses**"
    }
}

fn find<'a>(h: &'a HttpResults, name: &str) -> Option<&'a ScenarioResult> {
    h.scenarios.iter().find(|s| s.name == name)
}

/// Throughput ratios: label, scenario, its baseline, target (none for diagnostics).
const RATIOS: &[(&str, &str, &str, Option<f64>)] = &[
    (
        "2/1 data plane 401 ÷ bare hyper",
        "dp-401-1k",
        "hyper-1k",
        Some(0.9),
    ),
    (
        "4/3 GENERIC 1 KiB ÷ forwarder 1 KiB",
        "dp-generic-1k",
        "fwd-1k",
        Some(0.9),
    ),
    (
        "4b/3b GENERIC 16 KiB ÷ forwarder 16 KiB",
        "dp-generic-16k",
        "fwd-16k",
        Some(0.9),
    ),
    (
        "5/3 SLACK 1 KiB ÷ forwarder 1 KiB",
        "dp-slack-1k",
        "fwd-1k",
        Some(0.9),
    ),
    (
        "6/3b RESUME 16 KiB (path 4 deep) ÷ forwarder 16 KiB",
        "dp-resume-16k",
        "fwd-16k",
        Some(0.85),
    ),
    (
        "4/3 at 256 connections",
        "dp-generic-1k-c256",
        "fwd-1k-c256",
        Some(0.9),
    ),
    (
        "4b/3b at 256 connections",
        "dp-generic-16k-c256",
        "fwd-16k-c256",
        Some(0.9),
    ),
    (
        "diag: 401 with RUST_LOG=warn ÷ bare hyper",
        "dp-401-1k-quiet",
        "hyper-1k",
        None,
    ),
    (
        "diag: GENERIC 1 KiB RUST_LOG=warn ÷ forwarder",
        "dp-generic-1k-quiet",
        "fwd-1k",
        None,
    ),
];

/// Every accepting data-plane row and the forwarder row it is held against (p99 ≤ the forwarder's + 1 ms).
const P99_PAIRS: &[(&str, &str)] = &[
    ("dp-generic-1k", "fwd-1k"),
    ("dp-generic-16k", "fwd-16k"),
    ("dp-slack-1k", "fwd-1k"),
    ("dp-resume-16k", "fwd-16k"),
    ("dp-generic-1k-c256", "fwd-1k-c256"),
    ("dp-generic-16k-c256", "fwd-16k-c256"),
];

/// The config-distribution targets are set at this many webhooks.
const TARGET_WEBHOOKS: usize = 1_000_000;

/// The config-distribution table and the cost per webhook.
fn render_distribution(s: &mut String, d: &DistributionResults) {
    let n = d.webhooks.max(1);
    // Targets hold at 1,000,000 webhooks; a smaller quick run says so instead of a verdict.
    let at_scale = |ok: bool| -> String {
        if d.webhooks >= TARGET_WEBHOOKS {
            verdict(ok).to_owned()
        } else {
            format!("(target is for {TARGET_WEBHOOKS}; run with BENCH_WEBHOOKS={TARGET_WEBHOOKS})")
        }
    };
    let _ = writeln!(s, "\n| config distribution | value | target | |");
    let _ = writeln!(s, "|---|---:|---:|---|");
    let _ = writeln!(
        s,
        "| commit → ACK, 1 data plane (p50 / p99 / max, {} changes) | {:.1} / {:.1} / {:.1} ms | p99 ≤ 100 ms | {} |",
        d.ack_1.n, d.ack_1.p50_ms, d.ack_1.p99_ms, d.ack_1.max_ms, verdict(d.ack_1.p99_ms <= 100.0)
    );
    let _ = writeln!(
        s,
        "| commit → every ACK, {} data planes (p50 / p99 / max, {} changes) | {:.1} / {:.1} / {:.1} ms | every one < 100 ms | {} |",
        d.data_planes, d.ack_n.n, d.ack_n.p50_ms, d.ack_n.p99_ms, d.ack_n.max_ms, verdict(d.ack_n.max_ms < 100.0)
    );
    let _ = writeln!(
        s,
        "| commit → ACK, 1 data plane holding {} webhooks (p50 / p99 / max, {} changes) | {:.1} / {:.1} / {:.1} ms | p99 < 20 ms | {} |",
        d.webhooks, d.ack_large.n, d.ack_large.p50_ms, d.ack_large.p99_ms, d.ack_large.max_ms,
        at_scale(d.ack_large.p99_ms < 20.0)
    );
    let _ = writeln!(
        s,
        "| {} webhooks: snapshot build in the control plane (Postgres read + build) | {:.0} ms | < 3 s | {} |",
        d.webhooks, d.snapshot_build_ms, at_scale(d.snapshot_build_ms < 3000.0)
    );
    let _ = writeln!(
        s,
        "| {} webhooks: control plane start → config loaded | {:.0} ms | — | |",
        d.webhooks, d.cp_load_ms
    );
    let mib = |b: usize| b as f64 / 1_048_576.0;
    let _ = writeln!(
        s,
        "| bytes on the wire (zstd, the default): full snapshot / one-change delta | {:.1} MiB / {} B | < 60 MiB | {} |",
        mib(d.snapshot_bytes),
        d.delta_bytes,
        at_scale(mib(d.snapshot_bytes) < 60.0)
    );
    let _ = writeln!(
        s,
        "| full snapshot to an earlier data plane (uncompressed, text ids) / gzip; compress (control plane, per data-plane start) zstd / gzip; decompress zstd / gzip | {:.1} / {:.1} MiB; {:.0} / {:.0} ms; {:.0} / {:.0} ms | — | |",
        d.snapshot_bytes_uncompressed as f64 / 1_048_576.0,
        d.snapshot_bytes_gzip as f64 / 1_048_576.0,
        d.snapshot_compress_ms.0,
        d.snapshot_compress_ms.1,
        d.snapshot_decompress_ms.0,
        d.snapshot_decompress_ms.1
    );
    let _ = writeln!(
        s,
        "| data plane: decode + convert + apply {} webhooks (in process) | {:.0} ms | — | |",
        d.webhooks, d.dp_apply_ms
    );
    let _ = writeln!(
        s,
        "| fresh data-plane process → ready with {} webhooks | {:.0} ms | < 5 s | {} |",
        d.webhooks,
        d.dp_ready_ms,
        at_scale(d.dp_ready_ms < 5000.0)
    );
    let _ = writeln!(
        s,
        "| data-plane RSS with {} webhooks (peak) | {:.0} MiB ({:.0} MiB) | < 1 GiB | {} |",
        d.webhooks,
        d.dp_rss_kib as f64 / 1024.0,
        d.dp_hwm_kib as f64 / 1024.0,
        at_scale(d.dp_hwm_kib < 1024 * 1024)
    );
    let per = (d.dp_rss_kib.saturating_sub(d.dp_rss_small_kib) as f64 * 1024.0) / n as f64;
    let _ = writeln!(
        s,
        "\n| cost per webhook ({} webhooks) | value |\n|---|---:|",
        d.webhooks
    );
    // Milliseconds of the whole config → µs per webhook.
    let per_webhook_us = |total_ms: f64| total_ms * 1000.0 / n as f64;
    for (label, us) in [
        (
            "snapshot build (control plane)",
            per_webhook_us(d.snapshot_build_ms),
        ),
        ("control plane start → loaded", per_webhook_us(d.cp_load_ms)),
        (
            "data plane decode + convert + apply",
            per_webhook_us(d.dp_apply_ms),
        ),
        ("fresh data plane → ready", per_webhook_us(d.dp_ready_ms)),
    ] {
        let _ = writeln!(s, "| {label} | {us:.2} µs |");
    }
    let _ = writeln!(
        s,
        "| on the wire (full snapshot) | {:.1} B |",
        d.snapshot_bytes as f64 / n as f64
    );
    let _ = writeln!(
        s,
        "| data-plane RSS (beyond the {:.0} MiB of a 10-webhook plane) | {per:.0} B |",
        d.dp_rss_small_kib as f64 / 1024.0
    );
}

/// The markdown of the results (printed and written to the docs).
fn render(
    h: &HttpResults,
    d: &DistributionResults,
    machine: &str,
    envelope: &[crate::envelope_cost::Cost],
    allocations: &[crate::allocations::AllocRow],
) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Run: {}\n",
        machine.trim().lines().collect::<Vec<_>>().join("; ")
    );
    let _ = writeln!(
        s,
        "Load: {} keep-alive HTTP/1.1 connections (unless the row says otherwise), closed loop, {} s warm-up then {} s measured per scenario; \
         {} rounds of every scenario in turn, figures from the median round (req/s range over rounds in \
         brackets), ratios the median of the per-round ratios. Producer `linger.ms` = {} for the data plane \
         and the forwarder.\n",
        h.shape.concurrency,
        h.shape.warmup.as_secs(),
        h.shape.duration.as_secs(),
        h.rounds,
        h.linger_ms
    );
    let _ = writeln!(
        s,
        "| scenario | body | conns | expect | req/s | p50 ms | p99 ms | p99.9 ms | errors |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for sc in &h.scenarios {
        let r = &sc.result;
        let _ = writeln!(
            s,
            "| {} (`{}`) | {} B | {} | {} | {:.0} ({:.0}–{:.0}) | {} | {} | {} | {} |",
            sc.label,
            sc.name,
            sc.body_bytes,
            if sc.concurrency == 0 {
                h.shape.concurrency
            } else {
                sc.concurrency
            },
            sc.expect_status,
            r.rps,
            sc.rounds_rps.iter().copied().fold(f64::INFINITY, f64::min),
            sc.rounds_rps.iter().copied().fold(0.0, f64::max),
            ms(r.p50_us),
            ms(r.p99_us),
            ms(r.p999_us),
            r.errors
        );
    }
    let _ = writeln!(s, "\n| ratio (same run) | value | target | |");
    let _ = writeln!(s, "|---|---:|---:|---|");
    // The median over rounds of the ratio within each round (both measured minutes apart at most).
    let ratio = |a: &str, b: &str| -> Option<f64> {
        let (a, b) = (find(h, a)?, find(h, b)?);
        let mut per_round: Vec<f64> = a
            .rounds_rps
            .iter()
            .zip(&b.rounds_rps)
            .filter(|(_, y)| **y > 0.0)
            .map(|(x, y)| x / y)
            .collect();
        per_round.sort_by(f64::total_cmp);
        per_round.get(per_round.len() / 2).copied()
    };
    for (label, a, b, target) in RATIOS {
        if let Some(r) = ratio(a, b) {
            let _ = writeln!(
                s,
                "| {label} | {:.0} % | {} | {} |",
                r * 100.0,
                target.map_or("—".to_owned(), |t| format!("≥ {:.0} %", t * 100.0)),
                target.map_or("", |t| verdict(r >= t))
            );
        }
    }
    let _ = writeln!(
        s,
        "\n| p99 of each accepting row (median round) | p99 | its forwarder's p99 + 1 ms | |"
    );
    let _ = writeln!(s, "|---|---:|---:|---|");
    for (a, b) in P99_PAIRS {
        if let (Some(x), Some(y)) = (find(h, a), find(h, b)) {
            let limit = y.result.p99_us + 1000;
            let _ = writeln!(
                s,
                "| `{a}` vs `{b}` | {} ms | {} ms | {} |",
                ms(x.result.p99_us),
                ms(limit),
                verdict(x.result.p99_us <= limit)
            );
        }
    }
    render_distribution(&mut s, d);
    if !allocations.is_empty() {
        let _ = writeln!(
            s,
            "\n| heap allocations per request, on the server's thread (in process, counted) | allocations | bytes asked for | requests counted |"
        );
        let _ = writeln!(s, "|---|---:|---:|---:|");
        for r in allocations {
            let _ = writeln!(
                s,
                "| {} (`{}`) | {:.1} | {:.0} | {} |",
                r.label, r.name, r.allocations_per_request, r.bytes_per_request, r.requests
            );
        }
    }
    if !envelope.is_empty() {
        let _ = writeln!(
            s,
            "\n| one thread, in process, µs per body | step 6 + envelope (the data plane's) | a `Value` tree parse alone (step 6 before 2026-11-22) | validate: serde_json (step 6) | validate: sonic-rs (SIMD) | step 7 RESUME lookup via a tree (before) | step 7 RESUME lookup on the text (now) |"
        );
        let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|");
        for c in envelope {
            let _ = writeln!(
                s,
                "| {} B JSON body | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} |",
                c.body_bytes,
                c.dom_us,
                c.parse_us,
                c.validate_serde_us,
                c.validate_sonic_us,
                c.resume_tree_us,
                c.resume_text_us
            );
        }
    }
    s
}

/// `gateway-bench report`.
pub fn run(
    http: &Path,
    dist: &Path,
    machine: &Path,
    envelope: Option<&Path>,
    allocations: Option<&Path>,
    dispatch: Option<&Path>,
    docs: Option<&Path>,
) -> anyhow::Result<()> {
    let h: HttpResults = serde_json::from_slice(&std::fs::read(http)?)?;
    let d: DistributionResults = serde_json::from_slice(&std::fs::read(dist)?)?;
    let m = std::fs::read_to_string(machine)?;
    let e: Vec<crate::envelope_cost::Cost> = match envelope {
        Some(p) => serde_json::from_slice(&std::fs::read(p)?)?,
        None => Vec::new(),
    };
    let a: Vec<crate::allocations::AllocRow> = match allocations {
        Some(p) => serde_json::from_slice(&std::fs::read(p)?)?,
        None => Vec::new(),
    };
    let mut table = render(&h, &d, &m, &e, &a);
    if let Some(p) = dispatch {
        table.push_str(&crate::dispatch::report_section(p)?);
    }
    println!("{table}");
    if let Some(docs) = docs {
        let text = std::fs::read_to_string(docs).unwrap_or_default();
        let section = format!("{BEGIN}\n{table}{END}");
        let new = match (text.find(BEGIN), text.find(END)) {
            (Some(b), Some(e)) if e > b => {
                format!("{}{section}{}", &text[..b], &text[e + END.len()..])
            }
            _ => format!("{text}\n## Results\n\n{section}\n"),
        };
        std::fs::write(docs, new)?;
        eprintln!("wrote the results into {}", docs.display());
    }
    Ok(())
}
