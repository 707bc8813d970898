//! The lineage queries: `shark log`, `show`, `lineage`, `why`.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};
use shark_lineage::{Db, Input, LineageNode, LineageOptions, Output, Run, RunId};
use shark_store::Digest;

use crate::cli::{LineageArgs, LogArgs, ShowArgs, WhyArgs};
use crate::error::{is_broken_pipe, CliError};
use crate::exec::reason::Reason;
use crate::home::Home;

fn open_db(home: &Home) -> Result<Db, CliError> {
    Db::open(&home.db_path()).map_err(|e| CliError::failed("cannot open the lineage database", e))
}

fn db_fail(e: shark_lineage::LineageError) -> CliError {
    CliError::failed("cannot query the lineage database", e)
}

/// Writes `text` to stdout; a reader that went away is not an error.
pub(crate) fn emit(text: &str) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if !is_broken_pipe(&e) => Err(CliError::failed("cannot write to stdout", e)),
        _ => Ok(()),
    }
}

pub(crate) fn parse_run(text: &str) -> Result<RunId, CliError> {
    text.trim_start_matches('#')
        .parse::<i64>()
        .map(RunId)
        .map_err(|_| {
            CliError::usage(
                format!("malformed run id {text:?}"),
                Some("run ids are the numbers listed by `shark log`".into()),
            )
        })
}

pub(crate) fn load_run(db: &Db, id: RunId) -> Result<Run, CliError> {
    db.run(id).map_err(|e| match e {
        shark_lineage::LineageError::NoSuchRun { .. } => CliError::usage(
            format!("no run {id} in this shark home"),
            Some("list runs with `shark log`".into()),
        ),
        other => db_fail(other),
    })
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn hex(d: &Option<Digest>) -> Value {
    d.map_or(Value::Null, |d| Value::String(d.to_string()))
}

fn run_summary_json(r: &Run) -> Value {
    json!({
        "id": r.id.0,
        "command": r.command,
        "cwd": r.cwd,
        "exit_code": r.exit_code,
        "signal": r.signal,
        "cached": r.reused_from.is_some(),
        "reused_from": r.reused_from.map(|id| id.0),
        "started": shark_lineage::rfc3339(r.started),
        "duration_ms": ms(r.duration),
        "remote": remote_of(r).map(|(server, host, run)| json!({"server": server, "host": host, "run": run})),
    })
}

/// For a run whose result came from a remote cache: the server, the machine that ran it and
/// its run id there.
fn remote_of(r: &Run) -> Option<(String, String, i64)> {
    match r.reason.as_deref().and_then(Reason::from_json)? {
        Reason::Remote { server, host, run } => Some((server, host, run)),
        _ => None,
    }
}

/// `shark log`.
pub(crate) fn log(home: &Home, args: &LogArgs) -> Result<i32, CliError> {
    let db = open_db(home)?;
    let runs = db.recent(args.count).map_err(db_fail)?;
    let mut text = String::new();
    for r in &runs {
        if args.json {
            text.push_str(&run_summary_json(r).to_string());
        } else {
            let how = match (r.reused_from, remote_of(r)) {
                (Some(from), _) => format!("reused {from}"),
                (None, Some(_)) => format!("remote {}", human_duration(r.duration)),
                (None, None) => format!("ran {}", human_duration(r.duration)),
            };
            let status = status_words(r);
            text.push_str(&format!(
                "{:>5}  {}  {:<14} {:<8} {}",
                r.id,
                shark_lineage::rfc3339(r.started),
                how,
                status,
                one_line(&r.command)
            ));
        }
        text.push('\n');
    }
    emit(&text)?;
    Ok(0)
}

fn status_words(r: &Run) -> String {
    match (r.exit_code, r.signal) {
        (Some(0), _) => "ok".into(),
        (Some(c), _) => format!("exit {c}"),
        (None, Some(s)) => format!("signal {s}"),
        (None, None) => "?".into(),
    }
}

/// A duration for people: `850 ms`, `3.2 s`, `4 min 12 s`.
pub(crate) fn human_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{:.1} s", d.as_secs_f64())
    } else {
        format!("{} min {} s", ms / 60_000, (ms % 60_000) / 1000)
    }
}

fn input_json(i: &Input) -> Value {
    json!({"path": i.path, "kind": format!("{:?}", i.kind).to_lowercase(), "digest": hex(&i.digest)})
}

fn output_json(o: &Output) -> Value {
    json!({
        "path": o.path,
        "kind": format!("{:?}", o.kind).to_lowercase(),
        "digest": hex(&o.digest),
        "mode": o.mode.map(|m| format!("{m:o}")),
        "target": o.symlink_target,
    })
}

/// `shark show RUN`.
pub(crate) fn show(home: &Home, args: &ShowArgs) -> Result<i32, CliError> {
    let db = open_db(home)?;
    let run = load_run(&db, parse_run(&args.run)?)?;
    let text = if args.json {
        let mut v = run_summary_json(&run);
        v["argv"] = json!(run.argv);
        v["weak_key"] = json!(run.weak_key.to_string());
        v["stdout"] = hex(&run.stdout);
        v["stderr"] = hex(&run.stderr);
        v["user_ms"] = json!(ms(run.user_time));
        v["sys_ms"] = json!(ms(run.sys_time));
        v["max_rss_kib"] = json!(run.max_rss_kib);
        v["inputs"] = run.inputs.iter().map(input_json).collect();
        v["outputs"] = run.outputs.iter().map(output_json).collect();
        format!("{v}\n")
    } else {
        show_text(&run)
    };
    emit(&text)?;
    Ok(0)
}

fn show_text(r: &Run) -> String {
    let mut s = format!("run {}  {}\n", r.id, r.command);
    s.push_str(&format!("  cwd      {}\n", r.cwd));
    s.push_str(&format!(
        "  started  {}\n",
        shark_lineage::rfc3339(r.started)
    ));
    s.push_str(&format!("  took     {}\n", human_duration(r.duration)));
    s.push_str(&format!("  status   {}\n", status_words(r)));
    if let Some(from) = r.reused_from {
        s.push_str(&format!("  reused   run {from}\n"));
    }
    s.push_str(&format!("  inputs   {}\n", r.inputs.len()));
    for i in &r.inputs {
        s.push_str(&item_line(&format!("{:?}", i.kind), i.digest, &i.path));
    }
    s.push_str(&format!("  outputs  {}\n", r.outputs.len()));
    for o in &r.outputs {
        s.push_str(&item_line(&format!("{:?}", o.kind), o.digest, &o.path));
    }
    s
}

/// One input or output of `shark show`: kind, short digest (or `-`), path.
fn item_line(kind: &str, digest: Option<Digest>, path: &str) -> String {
    let d = digest.map_or_else(|| "-".into(), |d| d.short(12));
    format!("    {:<8} {:<12} {}\n", kind.to_lowercase(), d, path)
}

/// The absolute form of a user-given path, and its current content digest.
fn current_file(path: &Path) -> Result<(String, Digest, std::path::PathBuf), CliError> {
    let abs = std::path::absolute(path).map_err(|e| CliError::failed("cannot resolve path", e))?;
    let meta = std::fs::metadata(&abs)
        .map_err(|e| CliError::usage(format!("cannot read {}: {e}", path.display()), None))?;
    if !meta.is_file() {
        return Err(CliError::usage(
            format!("{} is not a regular file", path.display()),
            Some("lineage is recorded for files".into()),
        ));
    }
    let digest = shark_store::Digest::of_file(&abs)
        .map_err(|e| CliError::failed(format!("cannot read {}", abs.display()), e))?;
    let text = abs.to_string_lossy().into_owned();
    Ok((text, digest, abs))
}

/// `shark lineage PATH`.
pub(crate) fn lineage(home: &Home, args: &LineageArgs) -> Result<i32, CliError> {
    if args.prov {
        emit(&super::export::prov(home, &args.path, args.system)?)?;
        return Ok(0);
    }
    let db = open_db(home)?;
    let (path, digest, _) = current_file(&args.path)?;
    let opts = LineageOptions {
        include_system: args.system,
        max_depth: args.depth,
    };
    let tree = db.lineage(&path, &digest, &opts).map_err(db_fail)?;
    if tree.run.is_none()
        && db.runs_reading(&path).map_err(db_fail)?.is_empty()
        && db.runs_writing(&path).map_err(db_fail)?.is_empty()
    {
        return Err(CliError::usage(
            format!("{path}: no recorded run has read or written it"),
            Some("shark records files that commands run through it read or write".into()),
        ));
    }
    let text = if args.json {
        format!("{}\n", lineage_json(&tree))
    } else if args.dot {
        lineage_dot(&tree)
    } else if tree.run.is_none() {
        format!(
            "{path}: no recorded run produced its current content ({})\n",
            digest.short(12)
        )
    } else {
        let mut s = String::new();
        lineage_text(&tree, "", true, true, &mut s);
        s
    };
    emit(&text)?;
    Ok(0)
}

fn lineage_json(n: &LineageNode) -> Value {
    json!({
        "path": n.path,
        "digest": hex(&n.digest),
        "run": n.run.as_ref().map(run_summary_json),
        "inputs": n.inputs.iter().map(lineage_json).collect::<Vec<_>>(),
    })
}

fn lineage_text(n: &LineageNode, prefix: &str, last: bool, root: bool, out: &mut String) {
    let branch = if root {
        ""
    } else if last {
        "└─ "
    } else {
        "├─ "
    };
    let what = match &n.run {
        Some(r) => format!("run {} `{}`", r.id, one_line(&r.command)),
        None => "source".into(),
    };
    let d = n.digest.map(|d| d.short(12)).unwrap_or_else(|| "-".into());
    out.push_str(&format!("{prefix}{branch}{}  {d}  ← {what}\n", n.path));
    let child_prefix = if root {
        String::new()
    } else {
        format!("{prefix}{}", if last { "   " } else { "│  " })
    };
    for (i, c) in n.inputs.iter().enumerate() {
        lineage_text(c, &child_prefix, i + 1 == n.inputs.len(), false, out);
    }
}

fn lineage_dot(root: &LineageNode) -> String {
    let mut s =
        String::from("digraph lineage {\n  rankdir=BT;\n  node [fontname=\"monospace\"];\n");
    let mut seen = std::collections::HashSet::new();
    dot_node(root, &mut s, &mut seen);
    s.push_str("}\n");
    s
}

fn dot_quote(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

fn dot_node(n: &LineageNode, s: &mut String, seen: &mut std::collections::HashSet<String>) {
    let file = dot_quote(&n.path);
    if !seen.insert(format!("f{}", n.path)) {
        return;
    }
    s.push_str(&format!("  {file} [shape=note];\n"));
    if let Some(r) = &n.run {
        let run = dot_quote(&format!("run {}: {}", r.id, one_line(&r.command)));
        if seen.insert(format!("r{}", r.id)) {
            s.push_str(&format!("  {run} [shape=box];\n"));
        }
        s.push_str(&format!("  {run} -> {file};\n"));
        for c in &n.inputs {
            s.push_str(&format!("  {} -> {run};\n", dot_quote(&c.path)));
            dot_node(c, s, seen);
        }
    }
}

/// `shark why PATH|RUN`.
pub(crate) fn why(home: &Home, args: &WhyArgs) -> Result<i32, CliError> {
    let db = open_db(home)?;
    let run = target_run(&db, &args.target)?;
    emit(&why_text(&db, &run))?;
    Ok(0)
}

/// The run a `RUN|PATH` argument names: a run id, or the newest run of the command that
/// produced a file's current content.
pub(crate) fn target_run(db: &Db, target: &str) -> Result<Run, CliError> {
    Ok(if looks_like_run(target) {
        load_run(db, parse_run(target)?)?
    } else {
        let (path, digest, _) = current_file(Path::new(target))?;
        match db.producer_of(&path, &digest).map_err(db_fail)? {
            Some(r) => {
                // Explain the newest run of that command, which may be a later reuse.
                db.last_run_of(&r.weak_key).map_err(db_fail)?.unwrap_or(r)
            }
            None => {
                return Err(CliError::usage(
                    format!("{path}: no recorded run produced its current content"),
                    Some("see `shark lineage` for what is known about it".into()),
                ))
            }
        }
    })
}

fn looks_like_run(t: &str) -> bool {
    let t = t.trim_start_matches('#');
    !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) && !Path::new(t).exists()
}

fn why_text(db: &Db, run: &Run) -> String {
    let head = format!("run {} `{}`", run.id, one_line(&run.command));
    if let Some(from) = run.reused_from {
        let orig = db.run(from).ok();
        let saved = orig
            .as_ref()
            .map(|orig| format!(", saving {}", human_duration(orig.duration)))
            .unwrap_or_default();
        let remote = match orig.as_ref().and_then(remote_of) {
            Some((server, host, _)) => {
                format!(" (a result computed on {host}, from the remote cache {server})")
            }
            None => String::new(),
        };
        return format!(
            "{head} was reused: it reused run {from}{remote} instead of running{saved}\n"
        );
    }
    if let Some((server, host, id)) = remote_of(run) {
        return format!(
            "{head} came from the remote cache {server}: it ran on {host} (run {id} there) and its inputs hold here\n"
        );
    }
    let why = run
        .reason
        .as_deref()
        .and_then(Reason::from_json)
        .map(|r| r.describe())
        .unwrap_or_else(|| "no reason was recorded".into());
    let mut text = format!("{head} ran because {why}\n");
    if let Some(never) = run
        .unreusable
        .as_deref()
        .filter(|_| run.exit_code == Some(0))
    {
        text.push_str(&format!("it will not be reused: {never}\n"));
    }
    text
}

/// A command on one line, for listings: its first line, and ` …` when there is more.
fn one_line(command: &str) -> String {
    let mut lines = command.lines();
    let first = lines.next().unwrap_or_default().trim_end();
    match lines.next() {
        Some(_) => format!("{first} …"),
        None => first.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::one_line;

    #[test]
    fn multi_line_commands_are_cut_to_their_first_line() {
        assert_eq!(one_line("sort a > b"), "sort a > b");
        assert_eq!(
            one_line("for t in 0 1; do  \n  echo $t\ndone"),
            "for t in 0 1; do …"
        );
        assert_eq!(one_line(""), "");
    }
}
