//! `tarem completions SHELL`: the shell's completion script, from the command's own definition.

use crate::CliError;
use clap::CommandFactory;

#[derive(clap::Args)]
pub struct CompletionsArgs {
    /// bash, zsh, fish, elvish or powershell.
    shell: clap_complete::Shell,
}

pub fn run(args: CompletionsArgs) -> Result<(), CliError> {
    let mut command = super::Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, "tarem", &mut script);
    crate::out!("{}", String::from_utf8_lossy(&script).trim_end());
    Ok(())
}
