//! The "what we collect" section of a tool's README, written from its config
//! (`clearcount-log describe CONFIG --markdown`).

use std::fmt::Write as _;

use super::schema::{Config, Counter, CounterKind};

/// Where the config is published, for the links of [`describe_markdown`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Published {
    /// The clearcount server's base URL (`https://telemetry.example.org`): links to its config
    /// review page, its log and its data.
    pub server: Option<String>,
    /// The config's index in the log, when known.
    pub index: Option<u64>,
    /// The command users type (`rg` for the program `ripgrep`); default: the program's name
    /// when the config has one program, else `TOOL`.
    pub command: Option<String>,
}

/// Escapes text for a Markdown table cell: one line, no unescaped `|`.
fn cell(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "\\|")
}

fn code_list(labels: &[String]) -> String {
    labels
        .iter()
        .map(|l| format!("`{l}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What a counter's report value is, with its labels.
fn labels(c: &Counter) -> String {
    let all = c.report_labels();
    match c.kind {
        CounterKind::Count => format!(
            "weekly total, as the bucket it falls in: {}",
            code_list(&all)
        ),
        CounterKind::Category => format!("the most used of {}", code_list(&all)),
    }
}

fn epsilon(c: &Counter) -> String {
    match c.epsilon {
        Some(e) => format!("{e}"),
        None => "**none**: sent as is".to_string(),
    }
}

fn rate(sample_rate: f64) -> String {
    if sample_rate >= 1.0 {
        "every opted-in week is sent".to_string()
    } else {
        format!(
            "{}% of opted-in weeks are sent, the others not at all",
            (sample_rate * 1000.0).round() / 10.0
        )
    }
}

/// The Markdown "What we collect" section for `config`: program, counter, what, why (linking
/// the counter's discussion), labels, ε and the sample rate, and where the config is logged.
///
/// ```
/// use clearcount_config_log::config::{Config, Published, describe_markdown};
/// let config = Config::parse(br#"
/// origin = "telemetry.example.org/config"
/// sample_rate = 0.25
/// max_epsilon = 1.0
/// os = ["linux"]
/// arch = ["x86_64"]
/// [[program]]
/// name = "mytool"
/// versions = ">=1.0.0"
/// [[program.counter]]
/// name = "runs"
/// kind = "count"
/// buckets = [0, 1, 10]
/// epsilon = 1.0
/// description = "Runs in the week."
/// rationale = "Scripted or interactive?"
/// owner = "me@example.org"
/// link = "https://example.org/1"
/// expires = "2099-01-01"
/// "#)?;
/// let md = describe_markdown(&config, &Published::default());
/// assert!(md.contains("| mytool | `runs` | Runs in the week. |"));
/// # Ok::<(), clearcount_config_log::config::ConfigError>(())
/// ```
pub fn describe_markdown(config: &Config, published: &Published) -> String {
    let mut s = String::new();
    let tool = match (&published.command, config.programs.as_slice()) {
        (Some(c), _) => c.clone(),
        (None, [one]) => one.name.clone(),
        (None, _) => "TOOL".to_string(),
    };
    let _ = writeln!(s, "## What we collect\n");
    let _ = writeln!(
        s,
        "{tool} counts how it is used with [clearcount](https://github.com/clearcount/clearcount). \
         The counts stay on your machine (`{tool} telemetry view` shows them) unless you opt in \
         with `{tool} telemetry on`. Then, for each week after you opted in, one weekly report \
         may be sent, holding exactly the counters below and nothing else: no identifier, no \
         arguments, paths or names, no time finer than the week. Values are randomized \
         before they leave (randomized response with the ε below: smaller is more private; \
         none means the true value is sent), and {}. `{tool} telemetry off` (or `DO_NOT_TRACK=1`) stops everything.\n",
        rate(config.sample_rate)
    );
    let _ = writeln!(
        s,
        "| program | counter | what | why | value sent | ε |\n|---|---|---|---|---|---|"
    );
    for p in &config.programs {
        for c in &p.counters {
            let _ = writeln!(
                s,
                "| {} | `{}` | {} | {} ([discussion]({})) | {} | {} |",
                cell(&p.name),
                c.name,
                cell(&c.description),
                cell(&c.rationale),
                c.link,
                cell(&labels(c)),
                epsilon(c)
            );
        }
    }
    let _ = writeln!(
        s,
        "\nSample rate {}; at most ε = {} per program in one weekly report; reports only from {} \
         on {}; versions outside each program's `versions` are reported as `devel`. Every \
         counter stops on its expiry day.\n",
        config.sample_rate,
        config.max_epsilon,
        config.os.join(", "),
        config.arch.join(", ")
    );
    let entry = match published.index {
        Some(i) => format!("published as entry {i} in"),
        None => "published in".to_string(),
    };
    let _ = match &published.server {
        Some(url) => {
            let url = url.trim_end_matches('/');
            writeln!(
                s,
                "This config is {entry} the public, append-only transparency log `{}`, which \
                 {tool} verifies before it sends anything: [review it]({url}/config), \
                 [the log]({url}/log/checkpoint), and [everything received, published]({url}/data/).",
                config.origin
            )
        }
        None => writeln!(
            s,
            "This config is {entry} the public, append-only transparency log `{}`, which {tool} \
             verifies before it sends anything (`{tool} telemetry config show`).",
            config.origin
        ),
    };
    s
}

/// The same as [`describe_markdown`] in plain text, for a terminal.
pub fn describe_text(config: &Config) -> String {
    let mut s = format!(
        "config of log {}: sample rate {} ({}), at most epsilon {} per program a week\n",
        config.origin,
        config.sample_rate,
        rate(config.sample_rate),
        config.max_epsilon
    );
    for p in &config.programs {
        let _ = writeln!(s, "\nprogram {} (versions {})", p.name, p.versions);
        for c in &p.counters {
            let eps = c
                .epsilon
                .map_or("none: sent as is".to_string(), |e| e.to_string());
            let _ = writeln!(s, "  counter {}", c.name);
            let _ = writeln!(s, "    what:  {}", c.description.trim());
            let _ = writeln!(s, "    why:   {} ({})", c.rationale.trim(), c.link);
            let _ = writeln!(s, "    value: {}", labels(c));
            let _ = writeln!(s, "    epsilon: {eps}; expires {}", c.expires);
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example config of DESIGN.md section 2, with one counter without randomized
    /// response and a `|` in a description.
    const CONFIG: &str = r#"
origin = "telemetry.example.org/config"
sample_rate = 0.25
max_epsilon = 4.0
os = ["linux", "macos", "windows"]
arch = ["x86_64", "aarch64"]

[[program]]
name = "ripgrep"
versions = ">=14.0.0"

[[program.counter]]
name = "invocations"
kind = "count"
buckets = [0, 1, 10, 100, 1000]
epsilon = 1.0
description = "How many times rg ran in the week."
rationale = "Are most users interactive (many runs) or scripted (very many)?"
owner = "maintainer@example.org"
link = "https://github.com/example/ripgrep/issues/1"
expires = "2027-06-30"

[[program.counter]]
name = "engine"
kind = "category"
labels = ["default", "pcre2", "other"]
description = """Which regex engine
   (default | pcre2) is used most."""
rationale = "Can the pcre2 feature become optional?"
owner = "maintainer@example.org"
link = "https://github.com/example/ripgrep/issues/2"
expires = "2027-06-30"
"#;

    #[test]
    fn the_readme_section_of_a_known_config() {
        let config = Config::parse(CONFIG.as_bytes()).unwrap();
        let published = Published {
            server: Some("https://telemetry.example.org/".into()),
            index: Some(6),
            command: Some("rg".into()),
        };
        let expected = "## What we collect

rg counts how it is used with [clearcount](https://github.com/clearcount/clearcount). The counts stay on your machine (`rg telemetry view` shows them) unless you opt in with `rg telemetry on`. Then, for each week after you opted in, one weekly report may be sent, holding exactly the counters below and nothing else: no identifier, no arguments, paths or names, no time finer than the week. Values are randomized before they leave (randomized response with the ε below: smaller is more private; none means the true value is sent), and 25% of opted-in weeks are sent, the others not at all. `rg telemetry off` (or `DO_NOT_TRACK=1`) stops everything.

| program | counter | what | why | value sent | ε |
|---|---|---|---|---|---|
| ripgrep | `invocations` | How many times rg ran in the week. | Are most users interactive (many runs) or scripted (very many)? ([discussion](https://github.com/example/ripgrep/issues/1)) | weekly total, as the bucket it falls in: `0`, `1`, `10`, `100`, `1000` | 1 |
| ripgrep | `engine` | Which regex engine (default \\| pcre2) is used most. | Can the pcre2 feature become optional? ([discussion](https://github.com/example/ripgrep/issues/2)) | the most used of `default`, `pcre2`, `other`, `none` | **none**: sent as is |

Sample rate 0.25; at most ε = 4 per program in one weekly report; reports only from linux, macos, windows on x86_64, aarch64; versions outside each program's `versions` are reported as `devel`. Every counter stops on its expiry day.

This config is published as entry 6 in the public, append-only transparency log `telemetry.example.org/config`, which rg verifies before it sends anything: [review it](https://telemetry.example.org/config), [the log](https://telemetry.example.org/log/checkpoint), and [everything received, published](https://telemetry.example.org/data/).
";
        assert_eq!(describe_markdown(&config, &published), expected);
    }

    #[test]
    fn without_a_server_or_command_it_names_the_program_and_the_origin() {
        let config = Config::parse(CONFIG.as_bytes()).unwrap();
        let md = describe_markdown(&config, &Published::default());
        assert!(md.contains("opt in with `ripgrep telemetry on`"), "{md}");
        assert!(md.ends_with(
            "This config is published in the public, append-only transparency log \
             `telemetry.example.org/config`, which ripgrep verifies before it sends anything \
             (`ripgrep telemetry config show`).\n"
        ));
        let text = describe_text(&config);
        assert!(text.contains("  counter engine\n"), "{text}");
        assert!(text.contains("epsilon: none: sent as is"), "{text}");
    }
}
