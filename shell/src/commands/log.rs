//! `shark log`: recent runs, newest first, as `git log --oneline` lists commits: a header,
//! aligned columns (run, start, how it ran or which run it reused, status, command), filters
//! (`--failed`, `--path`, `--grep`, `--since`), and a pager on a terminal.

use std::collections::HashSet;
use std::io::{IsTerminal, Write};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use shark_lineage::Run;

use super::query::{
    emit, human_duration, one_line, open_db, remote_of, run_summary_json, status_words,
};
use crate::cli::LogArgs;
use crate::error::CliError;
use crate::home::Home;

/// `shark log`.
pub(crate) fn log(home: &Home, args: &LogArgs) -> Result<i32, CliError> {
    let db = open_db(home)?;
    let db_fail = |e| CliError::failed("cannot query the lineage database", e);
    let since = args.since.as_deref().map(parse_since).transpose()?;
    let filtered = args.failed || args.path.is_some() || args.grep.is_some() || since.is_some();
    let touching: Option<HashSet<i64>> = match &args.path {
        Some(p) => {
            let abs =
                std::path::absolute(p).map_err(|e| CliError::failed("cannot resolve path", e))?;
            let text = abs.to_string_lossy();
            let mut ids: HashSet<i64> = HashSet::new();
            ids.extend(
                db.runs_reading(&text)
                    .map_err(db_fail)?
                    .iter()
                    .map(|r| r.id.0),
            );
            ids.extend(
                db.runs_writing(&text)
                    .map_err(db_fail)?
                    .iter()
                    .map(|r| r.id.0),
            );
            Some(ids)
        }
        None => None,
    };
    // With filters, look through every run; the count applies to what is shown.
    let window = if filtered { usize::MAX } else { args.count };
    let runs: Vec<Run> = db
        .recent(window)
        .map_err(db_fail)?
        .into_iter()
        .filter(|r| !args.failed || r.exit_code != Some(0))
        .filter(|r| touching.as_ref().is_none_or(|ids| ids.contains(&r.id.0)))
        .filter(|r| {
            args.grep
                .as_ref()
                .is_none_or(|g| r.command.contains(g.as_str()))
        })
        .filter(|r| since.is_none_or(|t| r.started >= t))
        .take(args.count)
        .collect();
    let text = match args.json {
        true => runs
            .iter()
            .map(|r| format!("{}\n", run_summary_json(r)))
            .collect(),
        false => table(&runs),
    };
    page(&text, args.no_pager || args.json)
}

/// The runs as aligned columns under a header.
pub(crate) fn table(runs: &[Run]) -> String {
    if runs.is_empty() {
        return String::new();
    }
    let rows: Vec<[String; 5]> = runs
        .iter()
        .map(|r| {
            let how = match (r.reused_from, remote_of(r)) {
                (Some(from), _) => format!("reused #{}", from.0),
                (None, Some(_)) => format!("remote {}", human_duration(r.duration)),
                (None, None) => format!("ran {}", human_duration(r.duration)),
            };
            [
                r.id.0.to_string(),
                started(r.started),
                how,
                status_words(r),
                one_line(&r.command),
            ]
        })
        .collect();
    let header = ["RUN", "STARTED (UTC)", "RAN/REUSED", "STATUS", "COMMAND"];
    let width = |i: usize| {
        rows.iter()
            .map(|r| r[i].chars().count())
            .chain([header[i].len()])
            .max()
            .unwrap_or(0)
    };
    let widths = [width(0), width(1), width(2), width(3)];
    let line = |cells: [&str; 5]| {
        format!(
            "{:>w0$}  {:<w1$}  {:<w2$}  {:<w3$}  {}\n",
            cells[0],
            cells[1],
            cells[2],
            cells[3],
            cells[4],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3]
        )
        .trim_end()
        .to_owned()
            + "\n"
    };
    let mut out = line(header);
    for r in &rows {
        out.push_str(&line([&r[0], &r[1], &r[2], &r[3], &r[4]]));
    }
    out
}

/// `2026-11-30 14:02:11`: the start of a run, to the second.
fn started(t: SystemTime) -> String {
    let full = shark_lineage::rfc3339(t);
    full.get(..19).unwrap_or(&full).replace('T', " ")
}

/// Shows `text` through a pager when stdout is a terminal and it does not fit the screen, as
/// git does: `$SHARK_PAGER`, else `$PAGER`, else `less -FRX`.
fn page(text: &str, never: bool) -> Result<i32, CliError> {
    let stdout = std::io::stdout();
    let rows = rustix::termios::tcgetwinsize(&stdout).map_or(0, |w| usize::from(w.ws_row));
    if never || !stdout.is_terminal() || text.lines().count() < rows {
        emit(text)?;
        return Ok(0);
    }
    let pager = std::env::var("SHARK_PAGER")
        .or_else(|_| std::env::var("PAGER"))
        .unwrap_or_else(|_| "less -FRX".into());
    let child = std::process::Command::new("/bin/sh")
        .args(["-c", &pager])
        .stdin(std::process::Stdio::piped())
        .spawn();
    let Ok(mut child) = child else {
        emit(text)?;
        return Ok(0);
    };
    if let Some(mut input) = child.stdin.take() {
        // The pager may quit before reading everything.
        let _ = input.write_all(text.as_bytes());
    }
    let _ = child.wait();
    Ok(0)
}

/// `--since`: a date, a date and time (UTC), or a time ago (`45s`, `30m`, `2h`, `3d`, `1w`).
fn parse_since(text: &str) -> Result<SystemTime, CliError> {
    let bad = || {
        CliError::usage(
            format!("--since {text:?} is neither a date nor a time ago"),
            Some("give 2026-11-30, 2026-11-30T14:00:00Z, or 30m, 2h, 3d, 1w".into()),
        )
    };
    if let Some((n, unit)) = text.split_at_checked(text.len().saturating_sub(1)) {
        if let (Ok(n), Some(secs)) = (n.parse::<u64>(), unit_seconds(unit)) {
            let ago = Duration::from_secs(n.saturating_mul(secs));
            return Ok(SystemTime::now().checked_sub(ago).unwrap_or(UNIX_EPOCH));
        }
    }
    let (date, time) = text.split_once(['T', ' ']).unwrap_or((text, "00:00:00"));
    let num = |s: &str| s.parse::<i64>().map_err(|_| bad());
    let d: Vec<&str> = date.split('-').collect();
    let t: Vec<&str> = time.trim_end_matches('Z').split(':').collect();
    let [y, m, day] = d.as_slice() else {
        return Err(bad());
    };
    let (h, min, s) = match t.as_slice() {
        [h, m] => (num(h)?, num(m)?, 0),
        [h, m, s] => (num(h)?, num(m)?, num(s.split('.').next().unwrap_or("0"))?),
        _ => return Err(bad()),
    };
    let (y, m, day) = (num(y)?, num(m)?, num(day)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || h > 23 || min > 59 || s > 60 {
        return Err(bad());
    }
    let secs = days_from_civil(y, m, day) * 86_400 + h * 3600 + min * 60 + s;
    let secs = u64::try_from(secs).map_err(|_| bad())?;
    Ok(UNIX_EPOCH + Duration::from_secs(secs))
}

fn unit_seconds(unit: &str) -> Option<u64> {
    match unit {
        "s" => Some(1),
        "m" => Some(60),
        "h" => Some(3600),
        "d" => Some(86_400),
        "w" => Some(7 * 86_400),
        _ => None,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_dates_and_times_ago() {
        let t = parse_since("2024-05-01T12:34:56Z").unwrap();
        assert_eq!(shark_lineage::rfc3339(t), "2024-05-01T12:34:56.000Z");
        let t = parse_since("2024-03-01").unwrap();
        assert_eq!(shark_lineage::rfc3339(t), "2024-03-01T00:00:00.000Z");
        let ago = SystemTime::now()
            .duration_since(parse_since("2h").unwrap())
            .unwrap();
        assert!((7190..=7210).contains(&ago.as_secs()), "{ago:?}");
        for bad in ["yesterday", "2024-13-01", "5x", ""] {
            assert!(parse_since(bad).is_err(), "{bad}");
        }
    }
}
