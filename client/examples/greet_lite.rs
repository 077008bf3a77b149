//! `greet` built for recording only: the same tool and counters as `greet`, for a tool author
//! who wants the smallest start-up. Build it without the default features:
//!
//! ```sh
//! cargo build --release -p clearcount --no-default-features --example greet_lite
//! ```
//!
//! It links no HTTP, TLS or config-log code and embeds no consent commands: its users see and
//! change what it records with the `clearcount` command (`clearcount on --program greet`), and
//! when they opt in, its first process of a day hands the upload to that command (see
//! `clearcount::upload`). Built with the default features, it uploads from its own executable
//! like `greet`.

use std::process::ExitCode;

use clap::Parser;
use clearcount::{Category, Counter};

static RUNS: Counter = Counter::new("invocations");
static NAMES: Counter = Counter::new("names");
static STYLE: Category = Category::new("style");

#[derive(Parser)]
#[command(
    name = "greet",
    about = "Greets people",
    after_help = "Counts how it is used: see and change what with `clearcount status`."
)]
struct Cli {
    /// Shout.
    #[arg(long)]
    loud: bool,
    /// Who to greet.
    names: Vec<String>,
}

/// Where greet would upload (in mode on only); the tests set `GREET_TELEMETRY_SERVER` and
/// `GREET_TELEMETRY_LOG_KEY` instead, as for `greet`.
const SERVER: &str = "https://telemetry.example.org";
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
