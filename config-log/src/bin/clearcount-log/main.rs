//! `clearcount-log`: run and audit a clearcount config log.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

mod log_cmds;
mod review_cmds;

/// Run and audit a clearcount config log: a transparency log (C2SP tlog-tiles, signed
/// checkpoints) whose entries are the published counter configs.
#[derive(Parser)]
#[command(name = "clearcount-log", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write a new Ed25519 signer key (Go note format, mode 0600) and print its verifier key.
    Keygen {
        /// The key name, which becomes the log origin (e.g. telemetry.example.org/config).
        #[arg(long)]
        name: String,
        /// Where to write the signer key.
        #[arg(long)]
        out: PathBuf,
    },
    /// Create an empty log in DIR whose origin is the signer key's name.
    Init {
        /// The log directory (created if missing; must be empty).
        dir: PathBuf,
        /// The signer key file.
        #[arg(long)]
        key: PathBuf,
    },
    /// Lint CONFIG, append it to the log, sign a new checkpoint and print the new index.
    Append {
        /// The log directory.
        dir: PathBuf,
        /// The config file (TOML) to publish.
        config: PathBuf,
        /// The signer key file.
        #[arg(long)]
        key: PathBuf,
    },
    /// Print the log's current signed checkpoint.
    Checkpoint {
        /// The log directory.
        dir: PathBuf,
    },
    /// Audit a whole log: recompute every tile and the root from the entries, check the
    /// checkpoint signature and consistency with an older checkpoint.
    Verify {
        /// The log directory or its HTTP base URL (the URL under which `checkpoint` is served).
        dir_or_url: String,
        /// The verifier key (text, or a file holding it).
        #[arg(long)]
        key: String,
        /// An older signed checkpoint that the log must be consistent with.
        #[arg(long)]
        since: Option<PathBuf>,
    },
    /// Print the inclusion proof of entry N (and a consistency proof from an older size).
    Prove {
        /// The log directory.
        dir: PathBuf,
        /// The entry index.
        #[arg(long)]
        index: u64,
        /// Also prove consistency from this older tree size to the current one.
        #[arg(long)]
        old_size: Option<u64>,
    },
    /// Show the review diff between two configs: `diff DIR A B` (log indexes) or
    /// `diff OLD.toml NEW.toml`.
    #[command(arg_required_else_help = true)]
    Diff {
        /// `DIR A B` or `OLD.toml NEW.toml`.
        #[arg(num_args = 2..=3, value_names = ["DIR|OLD", "A|NEW", "B"])]
        args: Vec<String>,
    },
    /// Describe a config for the people whose tools obey it; with --markdown, the "What we
    /// collect" section for the tool's README (program, counter, what, why, value sent,
    /// epsilon, sample rate, and where the config is logged).
    Describe {
        /// The config file (TOML).
        config: PathBuf,
        /// Print Markdown, to paste into the README.
        #[arg(long)]
        markdown: bool,
        /// The clearcount server's URL, to link its config review page, log and data.
        #[arg(long, value_name = "URL")]
        server: Option<String>,
        /// The log directory, to name the config's entry index in it.
        #[arg(long, value_name = "DIR")]
        log: Option<PathBuf>,
        /// The command your users type, when it is not the program's name (`rg` for ripgrep).
        #[arg(long, value_name = "NAME")]
        command: Option<String>,
    },
    /// Check a config against every rule; list every problem with its place, and advice that
    /// does not block publication as `warning: ...`.
    Lint {
        /// The config file (TOML).
        config: PathBuf,
    },
    /// Plan how many reports a counter needs, and the sample rate that yields them.
    Plan {
        /// Number of labels (buckets, or labels plus `none`).
        #[arg(long)]
        labels: u32,
        /// Randomized-response epsilon; omit for none.
        #[arg(long)]
        epsilon: Option<f64>,
        /// Confidence-interval half-width as a share (0.01 for 1 percentage point).
        #[arg(long)]
        margin: f64,
        /// Confidence level (0.99 for 99%).
        #[arg(long)]
        confidence: f64,
        /// Number of installs reporting weekly, to compute the sample rate.
        #[arg(long)]
        installs: Option<u64>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Sign or verify a signed note (C2SP signed-note).
    Note {
        #[command(subcommand)]
        command: NoteCommand,
    },
}

#[derive(Subcommand)]
enum NoteCommand {
    /// Sign the text on standard input; print the signed note.
    Sign {
        /// The signer key file.
        #[arg(long)]
        key: PathBuf,
    },
    /// Verify the note on standard input; print its text and exit 0 only if a signature by
    /// the key verifies.
    Verify {
        /// The verifier key (text, or a file holding it).
        #[arg(long)]
        key: String,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Keygen { name, out } => log_cmds::keygen(&name, &out),
        Command::Init { dir, key } => log_cmds::init(&dir, &key),
        Command::Append { dir, config, key } => log_cmds::append(&dir, &config, &key),
        Command::Checkpoint { dir } => log_cmds::checkpoint(&dir),
        Command::Verify {
            dir_or_url,
            key,
            since,
        } => log_cmds::verify(&dir_or_url, &key, since.as_deref()),
        Command::Prove {
            dir,
            index,
            old_size,
        } => log_cmds::prove(&dir, index, old_size),
        Command::Diff { args } => review_cmds::diff(&args),
        Command::Lint { config } => review_cmds::lint(&config),
        Command::Describe {
            config,
            markdown,
            server,
            log,
            command,
        } => review_cmds::describe(&config, markdown, server, log.as_deref(), command),
        Command::Plan {
            labels,
            epsilon,
            margin,
            confidence,
            installs,
            json,
        } => review_cmds::plan(labels, epsilon, margin, confidence, installs, json),
        Command::Note { command } => match command {
            NoteCommand::Sign { key } => log_cmds::note_sign(&key),
            NoteCommand::Verify { key } => log_cmds::note_verify(&key),
        },
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("clearcount-log: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
