//! `/docs` and `/doc?path=P`: Shark markdown documents as `shark md` last ran them, prose
//! rendered, each block followed by its commands' runs, status and output. While `shark md`
//! is running the page reloads itself every two seconds.
//!
//! The shell knows documents (their parsing and the records of their runs); it hands them
//! over as plain values through [`Documents`].

use std::fmt::Write;
use std::path::{Path, PathBuf};

use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;

use crate::html::{self, esc};
use crate::Shared;

/// Where a document's last run stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DocStatus {
    /// `shark md` is running it now.
    Running,
    /// Every block ran (or was reused).
    Done,
    /// A command failed with this status and the document stopped.
    Failed(i32),
}

/// A document in the list.
#[derive(Clone, Debug)]
pub struct DocSummary {
    /// Its path.
    pub path: PathBuf,
    /// Where its last run stands.
    pub status: DocStatus,
}

/// One command of a block as it last ran.
#[derive(Clone, Debug)]
pub struct DocCommand {
    /// The command line.
    pub text: String,
    /// The run recorded for it.
    pub run: i64,
    /// The run it reused, if it was reused.
    pub reused_from: Option<i64>,
    /// Its exit status, when known.
    pub exit_code: Option<i32>,
    /// What it printed (possibly cut).
    pub stdout: String,
}

/// A piece of a document.
#[derive(Clone, Debug)]
pub enum DocSegment {
    /// Markdown prose.
    Prose(String),
    /// A shark block.
    Block {
        /// Its info string (`shark-run`, `shark-import`, ...).
        info: String,
        /// The line of its opening fence.
        line: usize,
        /// Its body.
        body: String,
        /// Its commands as they last ran; empty when it has not run (yet).
        commands: Vec<DocCommand>,
    },
}

/// A document to show.
#[derive(Clone, Debug)]
pub struct DocView {
    /// Its path.
    pub path: PathBuf,
    /// Where its last run stands.
    pub status: DocStatus,
    /// Whether the document changed since that run.
    pub changed: bool,
    /// Its content with the results.
    pub segments: Vec<DocSegment>,
}

/// Where the web view learns about documents.
pub trait Documents: Send + Sync {
    /// The documents that ran, most recent first.
    fn list(&self) -> Vec<DocSummary>;
    /// One document with its last run's results, if it ran.
    fn get(&self, path: &Path) -> Option<DocView>;
}

/// No documents at all.
#[derive(Clone, Copy, Debug)]
pub struct NoDocuments;

impl Documents for NoDocuments {
    fn list(&self) -> Vec<DocSummary> {
        Vec::new()
    }
    fn get(&self, _: &Path) -> Option<DocView> {
        None
    }
}

fn status_html(status: DocStatus) -> String {
    match status {
        DocStatus::Running => "<span class=\"running\">running</span>".into(),
        DocStatus::Done => "<span class=\"ok\">done</span>".into(),
        DocStatus::Failed(code) => format!("<span class=\"bad\">stopped: exit {code}</span>"),
    }
}

/// The list of documents.
pub(crate) async fn list(State(state): State<Shared>) -> Response {
    let docs = state.config.documents.list();
    let mut body = String::from("<table id=\"docs\"><tr><th>document</th><th>last run</th></tr>");
    for d in &docs {
        let p = d.path.to_string_lossy();
        let _ = write!(
            body,
            "<tr><td><a class=\"path\" href=\"/doc?path={}\">{}</a></td><td>{}</td></tr>",
            html::query_value(&p),
            esc(&p),
            status_html(d.status)
        );
    }
    body.push_str("</table>");
    if docs.is_empty() {
        body.push_str("<p>No document has been run with <code>shark md</code> yet.</p>");
    }
    Html(html::page("Documents", "", &body)).into_response()
}

/// The query string of `/doc`.
#[derive(Debug, Deserialize)]
pub(crate) struct DocQuery {
    path: String,
}

/// One document with its results.
pub(crate) async fn page(State(state): State<Shared>, Query(q): Query<DocQuery>) -> Response {
    let path = crate::files::absolute(&state, &q.path);
    let Some(doc) = state.config.documents.get(&path) else {
        return crate::not_found(&format!(
            "{}: not a document shark md has run",
            path.display()
        ));
    };
    let mut body = format!("<p id=\"status\">Last run: {}", status_html(doc.status));
    if doc.changed {
        body.push_str(" (the document changed since)");
    }
    body.push_str("</p>\n");
    // While the document runs, the first block without results is the one running.
    let mut running = doc.status == DocStatus::Running;
    for segment in &doc.segments {
        match segment {
            DocSegment::Prose(text) => body.push_str(&markdown(text)),
            DocSegment::Block {
                info,
                line,
                body: code,
                commands,
            } => {
                let now = running && commands.is_empty();
                running &= !now;
                block(&mut body, info, *line, code, commands, now);
            }
        }
    }
    let head = match doc.status {
        DocStatus::Running => "<meta http-equiv=\"refresh\" content=\"2\">",
        _ => "",
    };
    let title = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    Html(html::page(&title, head, &body)).into_response()
}

fn block(
    out: &mut String,
    info: &str,
    line: usize,
    code: &str,
    commands: &[DocCommand],
    running: bool,
) {
    let _ = write!(
        out,
        "<div class=\"block\" id=\"line-{line}\"><p><code>{}</code>, line {line}</p><pre>{}</pre>",
        esc(info),
        esc(code)
    );
    match (commands.is_empty(), running) {
        (true, true) => out.push_str("<p class=\"running\">Running…</p>"),
        (true, false) => out.push_str("<p>Not run.</p>"),
        _ => {}
    }
    for c in commands {
        let how = match c.reused_from {
            Some(from) => format!(
                "<span class=\"reused\">reused <a href=\"/run/{from}\">run {from}</a></span>"
            ),
            None => "ran".into(),
        };
        let status = match c.exit_code {
            Some(0) => "<span class=\"ok\">ok</span>".into(),
            Some(code) => format!("<span class=\"bad\">exit {code}</span>"),
            None => "<span class=\"running\">running</span>".into(),
        };
        let _ = write!(
            out,
            "<p class=\"command\"><a href=\"/run/{run}\">run {run}</a> {how} {status} <code>{}</code></p>",
            esc(&html::one_line(&c.text)),
            run = c.run
        );
        if !c.stdout.is_empty() {
            let _ = write!(out, "<pre class=\"output\">{}</pre>", esc(&c.stdout));
        }
    }
    out.push_str("</div>\n");
}

/// Markdown prose as HTML; raw HTML in it is shown as text, never interpreted.
fn markdown(text: &str) -> String {
    use pulldown_cmark::{Event, Parser};
    let events = Parser::new(text).map(|e| match e {
        Event::Html(h) | Event::InlineHtml(h) => Event::Text(h),
        e => e,
    });
    let mut out = String::new();
    pulldown_cmark::html::push_html(&mut out, events);
    out
}

#[cfg(test)]
mod tests {
    use super::markdown;

    #[test]
    fn prose_is_rendered_and_raw_html_is_text() {
        let html = markdown("# Title\n\nSome *words* <script>x</script>\n");
        assert!(html.contains("<h1>Title</h1>"), "{html}");
        assert!(html.contains("<em>words</em>"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
    }
}
