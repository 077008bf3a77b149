//! An example host tool: `greet [--loud] NAME...` greets people, and counts how it is used.
//!
//! `greet telemetry on|off|local|status|view|export|clean|upload|config` are clearcount's consent
//! commands, embedded in a few lines. The tests use this program as "the host tool".
//!
//! A real tool pins its server and log key as constants. This example reads them from
//! `GREET_TELEMETRY_SERVER` and `GREET_TELEMETRY_LOG_KEY` so that tests can point it at a
//! server of their own; without them it names a server that does not exist.

use std::process::ExitCode;

use clap::Parser;
use clearcount::{Category, Counter};

static RUNS: Counter = Counter::new("invocations");
static NAMES: Counter = Counter::new("names");
static STYLE: Category = Category::new("style");

#[derive(Parser)]
#[command(name = "greet", about = "Greets people")]
struct Cli {
    /// Shout.
    #[arg(long)]
    loud: bool,
    /// Who to greet.
    names: Vec<String>,
    #[command(subcommand)]
    telemetry: Option<Command>,
}

#[derive(clap::Subcommand)]
enum Command {
    /// See and change what greet records (clearcount).
    #[command(subcommand)]
    Telemetry(clearcount::cli::TelemetryCommand),
}

/// Where greet would upload (in mode on only).
const SERVER: &str = "https://telemetry.example.org";
/// The pinned verifier key of that server's config log (an example: its private half exists
/// nowhere, so nothing could ever verify against it).
const LOG_KEY: &str =
    "telemetry.example.org/config+b59e49b9+ASh3/3wT4sVlg0dVfsOW+n7twqUeLyaZTmHGrAke2Rpj";

fn main() -> ExitCode {
    let server = std::env::var("GREET_TELEMETRY_SERVER").unwrap_or_else(|_| SERVER.into());
    let key = std::env::var("GREET_TELEMETRY_LOG_KEY").unwrap_or_else(|_| LOG_KEY.into());
    clearcount::Settings::new("greet", env!("CARGO_PKG_VERSION"))
        .upload(server, key)
        .start();
    RUNS.inc();
    let cli = Cli::parse();
    if let Some(Command::Telemetry(cmd)) = cli.telemetry {
        return clearcount::cli::run(cmd);
    }
    STYLE.inc(if cli.loud { "loud" } else { "plain" });
    NAMES.add(cli.names.len() as u64);
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
