//! `/run/ID`: one run in full.

use std::fmt::Write;

use axum::extract::{Path, State};
use axum::response::{Html, IntoResponse, Response};
use shark_lineage::{LineageError, Run, RunId};
use shark_store::Digest;

use crate::html::{self, esc};
use crate::Shared;

/// Bytes of stdout or stderr shown on the page; the rest is a download.
const STREAM_SHOWN: usize = 64 * 1024;

/// The page of run `id`.
pub(crate) async fn page(State(state): State<Shared>, Path(id): Path<String>) -> Response {
    let Ok(id) = id.parse::<RunId>() else {
        return crate::bad_request(&format!("malformed run id {id:?}"));
    };
    let loaded = state.db(|db| Ok::<_, LineageError>((db.run(id)?, db.reuses_of(id, 20)?)));
    let (run, reuses) = match loaded {
        Ok(found) => found,
        Err(LineageError::NoSuchRun { .. }) => return crate::not_found(&format!("no run {id}")),
        Err(e) => return crate::failed("cannot load the run", &e),
    };
    let mut body = summary(&state, &run);
    if !reuses.is_empty() {
        let links: Vec<String> = reuses.iter().map(|r| html::run_link(r.id)).collect();
        let _ = writeln!(body, "<p>Reused by {}.</p>", links.join(", "));
    }
    body.push_str(&streams(&state, &run));
    body.push_str(&items(&run));
    Html(html::page(&format!("Run {id}"), "", &body)).into_response()
}

fn summary(state: &Shared, run: &Run) -> String {
    let why = match (run.reused_from, run.reason.as_deref()) {
        (Some(from), _) => format!("reused {} instead of running", html::run_link(from)),
        (None, Some(reason)) => (state.config.describe_reason)(reason)
            .map(|s| format!("ran because {}", esc(&s)))
            .unwrap_or_else(|| format!("ran ({})", esc(reason))),
        (None, None) => "ran".into(),
    };
    let mut s = String::from("<table class=\"summary\">");
    let mut row = |k: &str, v: String| {
        let _ = write!(s, "<tr><th>{k}</th><td>{v}</td></tr>");
    };
    row("command", format!("<pre>{}</pre>", esc(&run.command)));
    row("directory", html::file_link(&run.cwd));
    row("status", html::status(run));
    row("started", shark_lineage::rfc3339(run.started));
    row("took", html::duration(run.duration));
    row(
        "cpu",
        format!(
            "user {}, system {}, peak memory {} KiB",
            html::duration(run.user_time),
            html::duration(run.sys_time),
            run.max_rss_kib
        ),
    );
    row("why", why);
    if run.network {
        row("network", "on (never reused)".into());
    }
    s.push_str("</table>\n");
    s
}

fn streams(state: &Shared, run: &Run) -> String {
    let mut s = String::new();
    for (name, digest) in [("stdout", run.stdout), ("stderr", run.stderr)] {
        let Some(d) = digest.filter(|d| *d != Digest::of_bytes(b"")) else {
            continue;
        };
        let _ = write!(s, "<h2>{name}</h2>");
        match state.store.read_to_vec(&d) {
            Ok(bytes) => {
                let shown = &bytes[..bytes.len().min(STREAM_SHOWN)];
                let _ = write!(
                    s,
                    "<pre id=\"{name}\">{}</pre>",
                    esc(&String::from_utf8_lossy(shown))
                );
                if bytes.len() > STREAM_SHOWN {
                    let _ = write!(
                        s,
                        "<p><a href=\"/blob/{d}?name={name}.txt\">all {} bytes</a></p>",
                        bytes.len()
                    );
                }
            }
            Err(e) => {
                let _ = write!(
                    s,
                    "<p class=\"bad\">not in the store: {}</p>",
                    esc(&e.to_string())
                );
            }
        }
    }
    s
}

fn items(run: &Run) -> String {
    let mut s = format!("<h2>Inputs ({})</h2><table id=\"inputs\"><tr><th>kind</th><th>digest</th><th>path</th></tr>", run.inputs.len());
    for i in &run.inputs {
        let kind = format!("{:?}", i.kind).to_lowercase();
        let _ = write!(
            s,
            "<tr><td>{kind}</td><td>{}</td><td>{}</td></tr>",
            html::digest(&i.digest),
            html::file_link(&i.path)
        );
    }
    let _ = write!(s, "</table><h2>Outputs ({})</h2><table id=\"outputs\"><tr><th>kind</th><th>digest</th><th>path</th><th></th></tr>", run.outputs.len());
    for o in &run.outputs {
        let kind = format!("{:?}", o.kind).to_lowercase();
        let download = match (o.kind, o.digest) {
            (shark_lineage::OutputKind::File, Some(d)) => format!(
                "<a href=\"/blob/{d}?name={}\">download</a>",
                html::query_value(o.path.rsplit('/').next().unwrap_or("file"))
            ),
            _ => String::new(),
        };
        let _ = write!(
            s,
            "<tr><td>{kind}</td><td>{}</td><td>{}</td><td>{download}</td></tr>",
            html::digest(&o.digest),
            html::file_link(&o.path)
        );
    }
    s.push_str("</table>\n");
    s
}
