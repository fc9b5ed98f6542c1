//! `tarem simulate`: the whole loop on the embedded in-memory backend ([`crate::simulate`]).

use super::{Output, print_json};
use crate::CliError;
use crate::simulate::{self, SimulateOptions};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct SimulateArgs {
    /// Mapping items: a JSON or YAML list, plain or DynamoDB-typed.
    #[arg(long, value_name = "FILE", conflicts_with = "pack")]
    mappings: Option<PathBuf>,
    /// A built-in starter pack's entries (security, reliability, cost, or all), with a placeholder
    /// AutomationAssumeRole the story names.
    #[arg(long, value_name = "PACK")]
    pack: Option<String>,
    /// How automations of a document end (default Success); repeatable.
    #[arg(long, value_name = "DOCUMENT=STATUS")]
    outcome: Vec<String>,
    /// After the last event, run the clock on (sweeps, verify windows, cool-downs) until
    /// nothing waits on time, at most this long: 48h, 90m, 2d, or 0.
    #[arg(long, value_name = "DURATION", default_value = "48h")]
    settle: String,
    /// text for people, json for scripts.
    #[arg(long, value_enum, default_value = "text")]
    output: Output,
    /// A backtest: replay this export of the stack's raw-event audit log (JSON Lines of
    /// events or of log records, or a `filter-log-events` answer) instead of event files.
    #[arg(long, value_name = "FILE", conflicts_with = "events")]
    from_logs: Option<PathBuf>,
    /// An organisation to simulate: the hub's account and its members (JSON; each member
    /// `{"role": "deployed|missing", "paused": false, "version": "1", "active": true}`).
    #[arg(long, value_name = "FILE")]
    accounts: Option<PathBuf>,
    /// Trusted Advisor event files, or folders of them (read in name order).
    #[arg(required_unless_present = "from_logs", value_name = "EVENTS")]
    events: Vec<PathBuf>,
}

pub async fn run(args: SimulateArgs) -> Result<(), CliError> {
    let options = SimulateOptions {
        mappings: args.mappings,
        pack: args.pack,
        outcomes: args.outcome,
        inputs: args.events,
        settle: simulate::parse_duration(&args.settle)?,
        from_logs: args.from_logs,
        accounts: args.accounts,
    };
    let simulation = simulate::run(&options).await?;
    match args.output {
        Output::Text => crate::out!("{}", simulation.story.join("\n")),
        Output::Json => print_json(&simulation.report),
    }
    Ok(())
}
