//! `gateway-bench`: the benchmarks of docs/benchmarks.md. `deploy/bench.sh` is the one command that runs it all;
//! every subcommand can also be run alone (see docs/benchmarks.md).

#![deny(unsafe_code)]

mod allocations;
mod counting_alloc;
mod delta_cost;
mod dispatch;
mod distribution;
mod envelope_cost;
mod http_suite;
mod load;
mod procs;
mod report;
mod servers;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

// The allocator of the binaries whose work is timed in process here (mimalloc: the control plane's
// snapshot build, the data plane's apply and step 6), counting nothing unless `allocations` asks it to
// (one relaxed load per allocation otherwise).
#[global_allocator]
static ALLOCATOR: counting_alloc::Counting = counting_alloc::Counting;

#[derive(Parser)]
#[command(
    name = "gateway-bench",
    about = "Webhook gateway benchmarks (docs/benchmarks.md)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Baseline 1: a bare hyper server that reads the body and answers 200.
    BaselineHyper(servers::HyperArgs),
    /// Baseline 3: a minimal hyper → rdkafka forwarder (acks=all, idempotent), answering 200 on ACK.
    BaselineForwarder(servers::ForwarderArgs),
    /// One load run against a URL (the same generator every scenario uses); prints JSON.
    Load(load::LoadArgs),
    /// Every HTTP scenario side by side (spawns the servers); writes JSON results.
    Http(http_suite::HttpArgs),
    /// Config distribution: commit → ACK with 1 and 8 data planes, and 100,000 webhooks.
    Distribution(distribution::DistributionArgs),
    /// One delta and one lookup against tables of 10,000 to 1,000,000 webhooks, in process, next to a
    /// std HashMap cloned per delta.
    DeltaCost(delta_cost::DeltaArgs),
    /// The dispatcher (`data-plane dispatch`) against a minimal consumer → POST → producer loop.
    Dispatch(dispatch::DispatchArgs),
    /// Dispatcher baseline: a minimal rdkafka consumer → HTTP POST → rdkafka producer loop.
    BaselineDispatch(dispatch::baseline::BaselineArgs),
    /// The local action server of `dispatch`: answers every call 200 with a result.
    ActionServer(dispatch::baseline::ActionServerArgs),
    /// Step 5 + envelope cost in process: the data plane's, a `Value` tree parse, and a validate-and-embed reference.
    EnvelopeCost {
        /// Where the JSON results go.
        #[arg(long)]
        out: PathBuf,
    },
    /// Heap allocations per request of every server of the HTTP suite, counted in process.
    Allocations(allocations::AllocArgs),
    /// Prints the table and rewrites the results section of docs/benchmarks.md.
    Report {
        /// JSON written by `http`.
        #[arg(long)]
        http: PathBuf,
        /// JSON written by `distribution`.
        #[arg(long)]
        distribution: PathBuf,
        /// `key: value` lines describing the machine and the run.
        #[arg(long)]
        machine: PathBuf,
        /// JSON written by `envelope-cost`.
        #[arg(long)]
        envelope: Option<PathBuf>,
        /// JSON written by `allocations`.
        #[arg(long)]
        allocations: Option<PathBuf>,
        /// JSON written by `dispatch`.
        #[arg(long)]
        dispatch: Option<PathBuf>,
        /// The markdown file whose marked section is replaced.
        #[arg(long)]
        docs: Option<PathBuf>,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::BaselineHyper(a) => rt.block_on(servers::hyper_baseline(a)),
        Command::BaselineForwarder(a) => rt.block_on(servers::forwarder(a)),
        Command::Load(a) => rt.block_on(load::run_cli(a)),
        Command::Http(a) => rt.block_on(http_suite::run(a)),
        Command::Distribution(a) => rt.block_on(distribution::run(a)),
        Command::DeltaCost(a) => delta_cost::run(a),
        Command::Allocations(a) => rt.block_on(allocations::run(a)),
        Command::Dispatch(a) => rt.block_on(dispatch::run(a)),
        Command::BaselineDispatch(a) => rt.block_on(dispatch::baseline::baseline(a)),
        Command::ActionServer(a) => rt.block_on(dispatch::baseline::action_server(a)),
        Command::EnvelopeCost { out } => {
            let costs = envelope_cost::measure()?;
            for c in &costs {
                eprintln!(
                    "{} B: step 6 + envelope {:.1} µs (Value parse alone {:.1} µs); validate serde_json {:.1} µs, sonic-rs {:.1} µs; RESUME lookup tree {:.1} µs, text {:.1} µs",
                    c.body_bytes, c.dom_us, c.parse_us, c.validate_serde_us, c.validate_sonic_us, c.resume_tree_us, c.resume_text_us
                );
            }
            std::fs::write(out, serde_json::to_vec_pretty(&costs)?)?;
            Ok(())
        }
        Command::Report {
            http,
            distribution,
            machine,
            envelope,
            allocations,
            dispatch,
            docs,
        } => report::run(
            &http,
            &distribution,
            &machine,
            envelope.as_deref(),
            allocations.as_deref(),
            dispatch.as_deref(),
            docs.as_deref(),
        ),
    }
}
