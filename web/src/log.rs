//! `/`: the run log, newest first, filtered by command text and outcome, a page at a time.

use std::fmt::Write;

use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use shark_lineage::{RunFilter, RunId, RunOutcome};

use crate::html::{self, esc};
use crate::Shared;

/// Runs on one page.
const PAGE: usize = 50;

/// The log's query string.
#[derive(Debug, Deserialize, Default)]
pub(crate) struct LogQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    outcome: String,
    before: Option<i64>,
}

fn outcome(name: &str) -> Option<RunOutcome> {
    Some(match name {
        "" | "all" => RunOutcome::All,
        "ran" => RunOutcome::Ran,
        "reused" => RunOutcome::Reused,
        "failed" => RunOutcome::Failed,
        _ => return None,
    })
}

/// The run log page.
pub(crate) async fn page(State(state): State<Shared>, Query(q): Query<LogQuery>) -> Response {
    let Some(kind) = outcome(&q.outcome) else {
        return crate::bad_request(&format!("unknown outcome {:?}", q.outcome));
    };
    let filter = RunFilter {
        text: q.q.clone(),
        outcome: kind,
        before: q.before.map(RunId),
    };
    let runs = match state.db(|db| db.runs_where(&filter, PAGE)) {
        Ok(runs) => runs,
        Err(e) => return crate::failed("cannot list runs", &e),
    };
    let mut body = filter_form(&q);
    body.push_str(
        "<table id=\"runs\"><tr><th>run</th><th>started</th><th>how</th><th>status</th>\
         <th>command</th></tr>\n",
    );
    for r in &runs {
        let how = match r.reused_from {
            Some(from) => format!(
                "<span class=\"reused\">reused {}</span>",
                html::run_link(from)
            ),
            None => format!("ran {}", html::duration(r.duration)),
        };
        let _ = writeln!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{how}</td><td>{}</td><td><code>{}</code></td></tr>",
            html::run_link(r.id),
            shark_lineage::rfc3339(r.started),
            html::status(r),
            esc(&html::one_line(&r.command)),
        );
    }
    body.push_str("</table>\n");
    if runs.is_empty() {
        body.push_str("<p>No runs match.</p>\n");
    }
    if let (true, Some(last)) = (runs.len() == PAGE, runs.last()) {
        let _ = write!(
            body,
            "<p><a rel=\"next\" href=\"/?q={}&amp;outcome={}&amp;before={}\">Older runs</a></p>",
            html::query_value(&q.q),
            html::query_value(&q.outcome),
            last.id
        );
    }
    Html(html::page("Runs", "", &body)).into_response()
}

fn filter_form(q: &LogQuery) -> String {
    let mut options = String::new();
    for (value, label) in [
        ("all", "all"),
        ("ran", "ran"),
        ("reused", "reused"),
        ("failed", "failed"),
    ] {
        let selected = if q.outcome == value { " selected" } else { "" };
        let _ = write!(
            options,
            "<option value=\"{value}\"{selected}>{label}</option>"
        );
    }
    format!(
        "<form class=\"filter\" method=\"get\" action=\"/\">\
         <input name=\"q\" placeholder=\"command contains…\" value=\"{}\">\
         <select name=\"outcome\">{options}</select><button>Filter</button></form>\n",
        esc(&q.q)
    )
}
