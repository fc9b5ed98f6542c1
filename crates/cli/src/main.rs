//! `tarem`: the operator CLI (see the README for the commands and their exit codes).

use clap::Parser;
use std::process::ExitCode;
use tarem::commands::Cli;

fn main() -> ExitCode {
    // clap exits 2 for usage errors and 0 for --help/--version.
    let cli = Cli::try_parse().unwrap_or_else(|error| error.exit());
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
    match runtime.block_on(cli.command.run()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("tarem: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}
