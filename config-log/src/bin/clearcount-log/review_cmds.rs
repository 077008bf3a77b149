//! Commands for config authors and reviewers: lint, diff, plan.

use std::path::Path;

use anyhow::{Context, Result, bail};
use clearcount_config_log::config::{
    Config, Published, describe_markdown, describe_text, diff as review_diff, lint as lint_config,
};
use clearcount_config_log::store::LogStore;
use clearcount_privacy::estimate::Mechanism;
use clearcount_privacy::planner;

/// Reads and parses a config file, naming the file in every error.
fn read_config(path: &Path) -> Result<Config> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Config::parse(&bytes).with_context(|| format!("{} is not a valid config", path.display()))
}

/// `clearcount-log describe CONFIG [--markdown] [--server URL] [--log DIR]`.
pub fn describe(
    path: &Path,
    markdown: bool,
    server: Option<String>,
    log: Option<&Path>,
    command: Option<String>,
) -> Result<()> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let config = Config::parse(&bytes)
        .with_context(|| format!("{} is not a valid config", path.display()))?;
    let index = match log {
        None => None,
        Some(dir) => {
            let store = LogStore::open(dir)
                .with_context(|| format!("cannot open the log in {}", dir.display()))?;
            let found = (0..store.size())
                .rev()
                .find(|&i| store.entry(i).is_ok_and(|e| e == bytes));
            Some(found.with_context(|| {
                format!(
                    "{} is not an entry of the log in {}",
                    path.display(),
                    dir.display()
                )
            })?)
        }
    };
    if markdown {
        let published = Published {
            server,
            index,
            command,
        };
        print!("{}", describe_markdown(&config, &published));
    } else {
        print!("{}", describe_text(&config));
    }
    Ok(())
}

/// `clearcount-log diff OLD.toml NEW.toml` or `clearcount-log diff DIR A B`.
pub fn diff(args: &[String]) -> Result<()> {
    let (old, new) = match args {
        [old, new] => (read_config(Path::new(old))?, read_config(Path::new(new))?),
        [dir, a, b] => {
            let parse = |s: &String| -> Result<u64> {
                s.parse()
                    .with_context(|| format!("entry index {s:?} is not a number"))
            };
            let (a, b) = (parse(a)?, parse(b)?);
            let dir = Path::new(dir);
            let store = LogStore::open(dir)
                .with_context(|| format!("cannot open the log in {}", dir.display()))?;
            (log_config(&store, a)?, log_config(&store, b)?)
        }
        _ => bail!("usage: clearcount-log diff OLD.toml NEW.toml, or diff DIR A B"),
    };
    print!("{}", review_diff(Some(&old), &new).text);
    Ok(())
}

/// The config at entry `index` of a log.
fn log_config(store: &LogStore, index: u64) -> Result<Config> {
    let bytes = store.entry(index).with_context(|| {
        format!(
            "cannot read entry {index} of the log in {}",
            store.dir().display()
        )
    })?;
    Config::parse(&bytes).with_context(|| format!("entry {index} is not a valid config"))
}

/// `clearcount-log lint CONFIG.toml`: every problem as `place: message`, failure when any.
pub fn lint(config: &Path) -> Result<()> {
    let parsed = read_config(config)?;
    let today = chrono::Utc::now().date_naive();
    let problems = lint_config(&parsed, today);
    for advice in clearcount_config_log::config::warnings(&parsed) {
        println!("warning: {advice}");
    }
    if problems.is_empty() {
        let counters: usize = parsed.programs.iter().map(|p| p.counters.len()).sum();
        println!(
            "{}: ok ({} programs, {} counters)",
            config.display(),
            parsed.programs.len(),
            counters
        );
        return Ok(());
    }
    for problem in &problems {
        println!("{problem}");
    }
    bail!(
        "{}: {} problem{}",
        config.display(),
        problems.len(),
        if problems.len() == 1 { "" } else { "s" }
    )
}

/// `clearcount-log plan`: reports needed for a margin, and the sample rate for some installs.
pub fn plan(
    labels: u32,
    epsilon: Option<f64>,
    margin: f64,
    confidence: f64,
    installs: Option<u64>,
    json: bool,
) -> Result<()> {
    let k = usize::try_from(labels).context("too many labels")?;
    let plan = planner::plan(k, epsilon, margin, confidence, installs)
        .context("cannot plan this counter")?;
    if json {
        println!("{}", serde_json::to_string_pretty(&plan)?);
        return Ok(());
    }
    let rr = match plan.epsilon {
        Some(e) => format!(
            "k-ary randomized response with epsilon {e} (keeps the true label with p = {:.4})",
            plan.p
        ),
        None => "no randomized response".to_string(),
    };
    println!(
        "A counter with {} labels, {rr}, estimated within +-{} at {}% confidence (z = {:.4}):",
        plan.labels,
        percent(plan.margin),
        plan.confidence * 100.0,
        plan.z
    );
    println!("  reports needed per week: {}", plan.reports);
    if plan.worst_rate < 0.5 {
        println!(
            "  (worst case: a label reported by {} of reports, the most randomized response \
             allows here)",
            percent(plan.worst_rate)
        );
    }
    if let (Some(oue), Some(better)) = (plan.oue_reports, plan.better) {
        let verdict = if better == Mechanism::Oue {
            "fewer: the better choice here"
        } else {
            "not fewer: k-ary randomized response is the better choice here"
        };
        println!("  with mechanism = \"oue\" instead: {oue} reports per week ({verdict})");
    }
    if let (Some(installs), Some(rate), Some(enough), Some(expected), Some(p5), Some(reached)) = (
        plan.installs,
        plan.sample_rate,
        plan.enough_installs,
        plan.expected_reports,
        plan.reports_p5,
        plan.expected_margin,
    ) {
        if enough {
            println!(
                "  with {installs} opted-in installs: sample_rate = {rate} \
                 (95% of weeks reach the target)"
            );
        } else {
            println!(
                "  with {installs} opted-in installs: not enough, even at sample_rate = 1 the \
                 margin is about +-{}",
                percent(reached)
            );
        }
        println!("  expected reports per week: {expected:.0}; 5th percentile: {p5}");
        if enough {
            println!("  margin in 95% of weeks: +-{} or better", percent(reached));
        }
    }
    Ok(())
}

/// A share as a percentage for people: 0.01 -> `1%`.
fn percent(share: f64) -> String {
    let p = share * 100.0;
    let rounded: f64 = format!("{p:.4}").parse().unwrap_or(p);
    format!("{rounded}%")
}
