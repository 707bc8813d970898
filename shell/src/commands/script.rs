//! `shark SCRIPT [ARGS...]` (and `#!/usr/bin/env shark`): each top-level command of the
//! script is a step, memoized on its own, with the shell state carried from step to step.

use std::ffi::OsString;
use std::io::{IsTerminal, Read};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::error::CliError;
use crate::home::Home;
use crate::script;
use crate::session::{LineOptions, Session};
use crate::state::program::Step;

/// Runs the script at `path` with `$0` = `path` and `args` as positional parameters.
pub(crate) fn run_file(
    home: &Home,
    path: &Path,
    args: Vec<OsString>,
    fresh: bool,
) -> Result<i32, CliError> {
    let text = match std::fs::read(path) {
        Ok(text) => text,
        Err(e) => {
            // As bash: a script that cannot be read is "not found" (127) or "cannot execute" (126).
            let code = if e.kind() == std::io::ErrorKind::NotFound {
                127
            } else {
                126
            };
            eprintln!("shark: {}: {}", path.display(), crate::error::chain(&e));
            if code == 127 && path.components().count() == 1 {
                eprintln!("hint: not a subcommand either; see shark --help");
            }
            return Ok(code);
        }
    };
    let mut all = vec![path.as_os_str().to_owned()];
    all.extend(args);
    run_text(home, &text, all, fresh)
}

/// Runs a script read from standard input (`shark` with no arguments and stdin not a terminal).
pub(crate) fn run_stdin(home: &Home) -> Result<i32, CliError> {
    let mut text = Vec::new();
    std::io::stdin()
        .read_to_end(&mut text)
        .map_err(|e| CliError::failed("cannot read a script from standard input", e))?;
    run_text(home, &text, Vec::new(), false)
}

/// Runs `text` step by step; `args` are `$0` and the positional parameters (none: `$0` is
/// `bash`); `fresh` runs every step even if a recorded run could be reused.
pub(crate) fn run_text(
    home: &Home,
    text: &[u8],
    args: Vec<OsString>,
    fresh: bool,
) -> Result<i32, CliError> {
    let spans = script::spans(text);
    let mut session = Session::open(home, args)?.as_whole_unit();
    let progress = Progress::new(spans.len());
    let mut code = 0;
    let opts = LineOptions {
        fresh,
        network: false,
    };
    for (i, span) in spans.iter().enumerate() {
        let text = &text[span.start..span.end];
        let shown = String::from_utf8_lossy(text);
        progress.start(i, &shown);
        let step = Step {
            text,
            line: span.line,
            last: i + 1 == spans.len(),
            dollar0: None,
            unparsed: !span.parses,
        };
        let result = session.run_step(&step, opts)?;
        progress.done(
            i,
            &shown,
            result.reused.map(|(_, saved)| saved),
            result.took,
        );
        code = result.code;
        if result.exited {
            break;
        }
    }
    progress.finish();
    Ok(code)
}

/// One status line on a terminal's stderr: which step, ran or reused, elapsed time.
struct Progress {
    enabled: bool,
    /// Whether a transient "running" line may be drawn: not when the steps' own output goes
    /// to the same terminal, where it would be interleaved with it.
    transient: bool,
    total: usize,
    started: Instant,
}

impl Progress {
    fn new(total: usize) -> Progress {
        let enabled = std::io::stderr().is_terminal() && std::env::var_os("SHARK_QUIET").is_none();
        Progress {
            enabled,
            transient: enabled && !std::io::stdout().is_terminal(),
            total,
            started: Instant::now(),
        }
    }

    fn start(&self, i: usize, text: &str) {
        if self.transient {
            eprint!(
                "\r\x1b[K[{}/{}] running: {}",
                i + 1,
                self.total,
                first_line(text)
            );
        }
    }

    fn done(&self, i: usize, text: &str, saved: Option<Duration>, took: Duration) {
        if !self.enabled {
            return;
        }
        let what = match saved {
            Some(saved) => format!(
                "reused (saved {})",
                crate::commands::query::human_duration(saved)
            ),
            None => format!("ran {}", crate::commands::query::human_duration(took)),
        };
        // Replace the transient line; otherwise never erase what a step printed.
        let clear = if self.transient { "\r\x1b[K" } else { "" };
        eprintln!(
            "{clear}[{}/{}] {what}: {}",
            i + 1,
            self.total,
            first_line(text)
        );
    }

    fn finish(&self) {
        if self.enabled {
            eprintln!(
                "shark: {} steps in {}",
                self.total,
                crate::commands::query::human_duration(self.started.elapsed())
            );
        }
    }
}

fn first_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or("");
    let mut short: String = line.chars().take(60).collect();
    if short.len() < line.len() || text.lines().nth(1).is_some() {
        short.push_str(" …");
    }
    short
}
