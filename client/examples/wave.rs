//! An example host tool with a required subcommand: `wave hello NAME` waves at someone, and
//! `wave telemetry on|off|local|status|...` are clearcount's consent commands for `wave` alone.
//!
//! It shows where a clap tool with a required subcommand calls clearcount's start: before it
//! parses its arguments. The upload child is the tool's own executable run without arguments;
//! clap would stop that run at "a subcommand is required" before it reached start, and nothing
//! would ever be uploaded (`clearcount status` then says so). With `WAVE_PARSE_FIRST=1` this
//! example makes that mistake on purpose, for the tests.
//!
//! Like `greet`, it reads its server and log key from `WAVE_TELEMETRY_SERVER` and
//! `WAVE_TELEMETRY_LOG_KEY` so that tests can point it at a server of their own.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use clearcount::{Category, Counter};

static WAVES: Counter = Counter::new("waves");
static HAND: Category = Category::new("hand");

#[derive(Parser)]
#[command(name = "wave", about = "Waves at people")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Wave at NAME.
    Hello {
        /// Who to wave at.
        name: String,
        /// Wave with the left hand.
        #[arg(long)]
        left: bool,
    },
    /// See and change what wave records (clearcount).
    #[command(subcommand)]
    Telemetry(clearcount::cli::TelemetryCommand),
}

fn start() {
    let server = std::env::var("WAVE_TELEMETRY_SERVER")
        .unwrap_or_else(|_| "https://telemetry.example.org".into());
    let key = std::env::var("WAVE_TELEMETRY_LOG_KEY").unwrap_or_else(|_| {
        "telemetry.example.org/config+b59e49b9+ASh3/3wT4sVlg0dVfsOW+n7twqUeLyaZTmHGrAke2Rpj".into()
    });
    clearcount::Settings::new("wave", env!("CARGO_PKG_VERSION"))
        .upload(server, key)
        .start();
}

fn main() -> ExitCode {
    let parse_first = std::env::var_os("WAVE_PARSE_FIRST").is_some();
    // The right place: start first, then parse (the upload child never gets past start).
    if !parse_first {
        start();
    }
    let cli = Cli::parse();
    if parse_first {
        start();
    }
    match cli.command {
        Command::Telemetry(cmd) => clearcount::cli::run(cmd),
        Command::Hello { name, left } => {
            WAVES.inc();
            HAND.inc(if left { "left" } else { "right" });
            println!("*waves at {name}*");
            ExitCode::SUCCESS
        }
    }
}
