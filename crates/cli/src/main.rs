//! `tarem`: the operator CLI.

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;
use tarem::simulate::{self, SimulateOptions};

#[derive(Parser)]
#[command(
    name = "tarem",
    version,
    about = "Trusted Advisor remediation: mappings, plans and a local run of the loop"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum Output {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole loop locally on the embedded in-memory backend.
    Simulate {
        /// Mapping items: a JSON or YAML list, plain or DynamoDB-typed.
        #[arg(long, value_name = "FILE")]
        mappings: Option<PathBuf>,
        /// How automations of a document end (default Success); repeatable.
        #[arg(long, value_name = "DOCUMENT=STATUS")]
        outcome: Vec<String>,
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
        /// Trusted Advisor event files, or folders of them (read in name order).
        #[arg(required = true, value_name = "EVENTS")]
        events: Vec<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            // clap exits 2 for usage errors and 0 for --help/--version.
            error.exit();
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("tarem: cannot start the async runtime: {error}");
            return ExitCode::from(1);
        }
    };
    match cli.command {
        Command::Simulate {
            mappings,
            outcome,
            output,
            events,
        } => {
            let options = SimulateOptions {
                mappings,
                outcomes: outcome,
                inputs: events,
            };
            match runtime.block_on(simulate::run(&options)) {
                Ok(simulation) => {
                    match output {
                        Output::Text => println!("{}", simulation.story.join("\n")),
                        Output::Json => println!(
                            "{}",
                            serde_json::to_string_pretty(&simulation.report).unwrap_or_default()
                        ),
                    }
                    ExitCode::SUCCESS
                }
                Err(error) => {
                    eprintln!("tarem simulate: {error}");
                    ExitCode::from(2)
                }
            }
        }
    }
}
