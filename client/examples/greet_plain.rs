//! `greet` without clearcount: the baseline for the start-up benchmark (docs/perf/client.md).

use std::process::ExitCode;

use clap::Parser;

#[derive(Parser)]
#[command(name = "greet", about = "Greets people")]
struct Cli {
    /// Shout.
    #[arg(long)]
    loud: bool,
    /// Who to greet.
    names: Vec<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.names.iter().any(String::is_empty) {
        eprintln!("greet: empty name");
        return ExitCode::from(3);
    }
    for n in &cli.names {
        let line = format!("Hello, {n}!");
        println!("{}", if cli.loud { line.to_uppercase() } else { line });
    }
    ExitCode::SUCCESS
}
