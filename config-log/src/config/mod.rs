//! The public counter config: typed parsing, lint and the human review diff (DESIGN.md section 2).
//!
//! ```
//! use clearcount_config_log::config::{Config, diff, lint};
//! use chrono::NaiveDate;
//!
//! let text = r#"
//! origin = "telemetry.example.org/config"
//! sample_rate = 0.25
//! max_epsilon = 4.0
//! os = ["linux", "macos", "windows"]
//! arch = ["x86_64", "aarch64"]
//!
//! [[program]]
//! name = "ripgrep"
//! versions = ">=14.0.0"
//!
//! [[program.counter]]
//! name = "invocations"
//! kind = "count"
//! buckets = [0, 1, 10, 100, 1000]
//! epsilon = 1.0
//! description = "How many times rg ran in the week."
//! rationale = "Are most users interactive or scripted?"
//! owner = "maintainer@example.org"
//! link = "https://github.com/example/ripgrep/issues/1"
//! expires = "2027-06-30"
//! "#;
//! let config = Config::parse(text.as_bytes())?;
//! let today = NaiveDate::from_ymd_opt(2026, 11, 20).unwrap();
//! assert!(lint(&config, today).is_empty());
//! let review = diff(None, &config);
//! assert!(review.text.contains("+ program \"ripgrep\""));
//! # Ok::<(), clearcount_config_log::config::ConfigError>(())
//! ```

mod consent;
mod describe;
mod diff;
mod lint;
mod schema;

pub use consent::{Widening, widening};
pub use describe::{Published, describe_markdown, describe_text};
pub use diff::{Change, CounterView, NO_RR_MARKER, ProgramBudget, ReviewDiff, diff};
pub use lint::{
    KNOWN_ARCH, KNOWN_OS, LintProblem, MAX_COUNTER_EPSILON, MAX_COUNTERS_PER_PROGRAM,
    MAX_EXACT_VERSIONS, MAX_LABELS_PER_COUNTER, lint, warnings,
};
pub use schema::*;

/// Why bytes are not a config.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Larger than one tlog-tiles entry.
    #[error("config is {0} bytes, more than the {MAX_CONFIG_BYTES} allowed")]
    TooLarge(usize),
    /// Not UTF-8 text.
    #[error("config is not valid UTF-8: {0}")]
    Utf8(#[from] std::str::Utf8Error),
    /// Not TOML of the config's shape: bad syntax, an unknown or missing key, a value of the
    /// wrong type. The message names the line, the column, the enclosing program and counter
    /// (when there is one) and what is wrong.
    #[error("line {line}, column {column}{}: {message}", place_suffix(.place))]
    Syntax {
        /// 1-based line of the problem (the last line when the position is unknown).
        line: usize,
        /// 1-based column (in characters) of the problem.
        column: usize,
        /// The enclosing table, e.g. `program "ripgrep" counter "engine"`; empty at top level.
        place: String,
        /// What is wrong, as the TOML parser says it (naming the key).
        message: String,
    },
}

fn place_suffix(place: &str) -> String {
    if place.is_empty() {
        String::new()
    } else {
        format!(" ({place})")
    }
}

impl Config {
    /// Parses the exact bytes of a config file. Unknown keys are rejected. This does not lint:
    /// call [`lint`] for the rules of DESIGN.md section 2.
    ///
    /// Never panics: any input gives either a config or a [`ConfigError`].
    pub fn parse(bytes: &[u8]) -> Result<Config, ConfigError> {
        if bytes.len() > MAX_CONFIG_BYTES {
            return Err(ConfigError::TooLarge(bytes.len()));
        }
        let text = std::str::from_utf8(bytes)?;
        toml::from_str(text).map_err(|err| syntax_error(text, &err))
    }

    /// The program of that name, if the config has it.
    pub fn program(&self, name: &str) -> Option<&Program> {
        self.programs.iter().find(|p| p.name == name)
    }

    /// Renders the config as TOML text that [`Config::parse`] reads back to an equal config.
    pub fn to_toml(&self) -> Result<String, toml::ser::Error> {
        toml::to_string(self)
    }
}

/// Builds the [`ConfigError::Syntax`] of a TOML error, translating its byte span into a
/// line, a column and the enclosing program or counter.
fn syntax_error(text: &str, err: &toml::de::Error) -> ConfigError {
    let offset = err
        .span()
        .map(|span| span.start)
        .unwrap_or(text.len())
        .min(text.len());
    let (line, column) = line_column(text, offset);
    ConfigError::Syntax {
        line,
        column,
        place: enclosing_place(text, offset),
        message: err.message().trim().to_string(),
    }
}

/// 1-based line and column (counted in characters) of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// Names the `[[program]]` and `[[program.counter]]` table that holds a byte offset, by
/// reading table headers and `name = "..."` lines. A best effort for error messages only: it
/// falls back to `program #N` (1-based) when the name cannot be read.
fn enclosing_place(text: &str, offset: usize) -> String {
    #[derive(Clone, Copy, PartialEq)]
    enum Table {
        Top,
        Program,
        Counter,
        Other,
    }
    // Each table block: (kind, start offset, program number, counter number).
    let mut blocks: Vec<(Table, usize, usize, usize)> = vec![(Table::Top, 0, 0, 0)];
    let (mut program, mut counter) = (0usize, 0usize);
    let mut pos = 0usize;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim();
        let compact: String = trimmed.chars().filter(|c| !c.is_whitespace()).collect();
        if compact.starts_with("[[program]]") {
            program += 1;
            counter = 0;
            blocks.push((Table::Program, pos, program, 0));
        } else if compact.starts_with("[[program.counter]]") {
            counter += 1;
            blocks.push((Table::Counter, pos, program, counter));
        } else if compact.starts_with('[') {
            blocks.push((Table::Other, pos, program, counter));
        }
        pos += line.len();
    }
    let Some(index) = blocks.iter().rposition(|b| b.1 <= offset) else {
        return String::new();
    };
    let (kind, _, program_no, counter_no) = blocks[index];
    let name_in = |kind: Table, number: usize, parent: usize| -> Option<String> {
        let i = blocks.iter().position(|b| match kind {
            Table::Program => b.0 == Table::Program && b.2 == number,
            _ => b.0 == kind && b.2 == parent && b.3 == number,
        })?;
        let start = blocks[i].1;
        let end = blocks.get(i + 1).map(|b| b.1).unwrap_or(text.len());
        text.get(start..end)?
            .lines()
            .skip(1)
            .find_map(|l| quoted_value(l, "name"))
    };
    let program_text = |number: usize| match name_in(Table::Program, number, number) {
        Some(name) => format!("program {name:?}"),
        None => format!("program #{number}"),
    };
    match kind {
        Table::Top | Table::Other if program_no == 0 => String::new(),
        Table::Program | Table::Other => program_text(program_no),
        Table::Counter => {
            let counter_text = match name_in(Table::Counter, counter_no, program_no) {
                Some(name) => format!("counter {name:?}"),
                None => format!("counter #{counter_no}"),
            };
            format!("{} {counter_text}", program_text(program_no))
        }
        Table::Top => String::new(),
    }
}

/// The basic-string value of `key = "value"` on one line, if the line is that.
fn quoted_value(line: &str, key: &str) -> Option<String> {
    let rest = line.trim().strip_prefix(key)?.trim_start();
    let rest = rest.strip_prefix('=')?.trim_start();
    let rest = rest.strip_prefix('"').or_else(|| rest.strip_prefix('\''))?;
    let end = rest.find(['"', '\''])?;
    Some(rest[..end].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_column_counts_characters() {
        let text = "a = 1\nbé = x\n";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 6), (2, 1));
        // 'é' is two bytes; the offset of 'x' is 6 + 6.
        assert_eq!(line_column(text, 12), (2, 6));
        // Inside a multi-byte character: rounds down, never panics.
        assert_eq!(line_column(text, 8), (2, 2));
        assert_eq!(line_column(text, 1000), (3, 1));
    }

    #[test]
    fn enclosing_place_names_program_and_counter() {
        let text = "origin = \"o\"\n[[program]]\nname = \"rg\"\n[[program.counter]]\nname = \"a\"\nx = 1\n[[program.counter]]\nbad = 2\nname = 'b'\n[[program]]\nversions = \"*\"\n";
        assert_eq!(enclosing_place(text, 2), "");
        let at = |needle: &str| text.find(needle).unwrap();
        assert_eq!(enclosing_place(text, at("name = \"rg\"")), "program \"rg\"");
        assert_eq!(
            enclosing_place(text, at("x = 1")),
            "program \"rg\" counter \"a\""
        );
        assert_eq!(
            enclosing_place(text, at("bad")),
            "program \"rg\" counter \"b\""
        );
        assert_eq!(enclosing_place(text, at("versions")), "program #2");
    }

    #[test]
    fn quoted_value_reads_basic_and_literal_strings() {
        assert_eq!(
            quoted_value(" name = \"x\" # c", "name").as_deref(),
            Some("x")
        );
        assert_eq!(quoted_value("name='y'", "name").as_deref(), Some("y"));
        assert_eq!(quoted_value("names = \"x\"", "name"), None);
        assert_eq!(quoted_value("name = 3", "name"), None);
    }
}
