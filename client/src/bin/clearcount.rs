//! `clearcount`: see and change what clearcount records and sends.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = clearcount::cli::ClearcountCli::parse();
    clearcount::cli::run(cli.command)
}
