//! `shark-web`: the read-only web view of a shark home and a folder (`shark serve`).
//!
//! Server-rendered HTML (axum on a single-threaded tokio runtime; no JavaScript but a
//! reload while a document runs), with these pages:
//!
//! | path | what |
//! |---|---|
//! | `/` | the run log, filtered by command text and outcome, fifty runs a page |
//! | `/run/ID` | one run: command, status, timings, why it ran or what it reused, inputs and outputs with digests, stdout and stderr |
//! | `/file?path=P` | a file: its current content (inside the folder) and every recorded version, each with the run that made it, a preview, a download and its lineage graph |
//! | `/browse?dir=D` | the folder's files |
//! | `/graph?path=P&digest=D` | the lineage graph, as SVG (Graphviz `dot` when installed, else drawn here), every node a link |
//! | `/docs`, `/doc?path=P` | Shark markdown documents run with `shark md`, rendered with each block's results; reloaded while `shark md` runs |
//! | `/blob/D`, `/thumb/D.png`, `/prov?path=P&digest=D` | a stored version's bytes (a download with `?name=`), a GeoTIFF thumbnail (GDAL), the lineage as PROV-JSON |
//!
//! Nothing here writes: the lineage database is only queried ([`shark_lineage::Db`]) and
//! the store only read ([`shark_store::Store::open_read_only`]). What shark knows about
//! documents comes from the caller through [`Documents`], so this crate does not depend on
//! the shell that runs them.
//!
//! ```no_run
//! # use std::sync::Arc;
//! let config = shark_web::Config {
//!     db_path: "/home/me/.local/share/shark/lineage.db".into(),
//!     store_dir: "/home/me/.local/share/shark/store".into(),
//!     folder: "/home/me/project".into(),
//!     documents: Arc::new(shark_web::NoDocuments),
//!     describe_reason: Arc::new(|_| None),
//! };
//! let listener = std::net::TcpListener::bind("127.0.0.1:8080").unwrap();
//! shark_web::serve(config, listener).unwrap();
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod docs;
mod files;
mod graph;
mod html;
mod log;
mod preview;
mod run;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use shark_lineage::Db;
use shark_store::Store;

pub use docs::{DocCommand, DocSegment, DocStatus, DocSummary, DocView, Documents, NoDocuments};

/// Turns a run's recorded reason into a sentence (see [`Config::describe_reason`]).
pub type DescribeReason = dyn Fn(&str) -> Option<String> + Send + Sync;

/// What to serve.
#[derive(Clone)]
pub struct Config {
    /// The lineage database.
    pub db_path: PathBuf,
    /// The store.
    pub store_dir: PathBuf,
    /// The folder whose files `/browse` lists and whose current files may be shown.
    pub folder: PathBuf,
    /// The documents `shark md` ran.
    pub documents: Arc<dyn Documents>,
    /// Turns a run's recorded reason (opaque text) into a sentence, when the caller can.
    pub describe_reason: Arc<DescribeReason>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("db_path", &self.db_path)
            .field("store_dir", &self.store_dir)
            .field("folder", &self.folder)
            .finish_non_exhaustive()
    }
}

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// The lineage database cannot be opened.
    #[error("cannot open the lineage database")]
    Db(#[from] shark_lineage::LineageError),
    /// The store cannot be opened.
    #[error("cannot open the store")]
    Store(#[from] shark_store::StoreError),
    /// Listening or serving failed.
    #[error("cannot serve HTTP")]
    Io(#[from] std::io::Error),
}

/// Everything a request handler reads.
pub(crate) struct State {
    pub(crate) config: Config,
    db: Mutex<Db>,
    pub(crate) store: Store,
}

pub(crate) type Shared = Arc<State>;

impl State {
    /// Runs `f` with the database (one connection, one request at a time).
    pub(crate) fn db<T>(&self, f: impl FnOnce(&Db) -> T) -> T {
        let db = self.db.lock().unwrap_or_else(|e| e.into_inner());
        f(&db)
    }

    /// Whether `path` lies inside the served folder.
    pub(crate) fn in_folder(&self, path: &Path) -> bool {
        path.starts_with(&self.config.folder)
    }
}

/// Serves `config` on `listener` until the process ends.
pub fn serve(config: Config, listener: TcpListener) -> Result<(), WebError> {
    let db = Db::open(&config.db_path)?;
    let store = Store::open_read_only(&config.store_dir)?;
    let state = Arc::new(State {
        config,
        db: Mutex::new(db),
        store,
    });
    listener.set_nonblocking(true)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        axum::serve(listener, router(state)).await
    })?;
    Ok(())
}

fn router(state: Shared) -> Router {
    Router::new()
        .route("/", get(log::page))
        .route("/run/{id}", get(run::page))
        .route("/file", get(files::file_page))
        .route("/browse", get(files::browse))
        .route("/graph", get(graph::page))
        .route("/blob/{digest}", get(preview::blob))
        .route("/thumb/{file}", get(preview::thumbnail))
        .route("/prov", get(graph::prov))
        .route("/docs", get(docs::list))
        .route("/doc", get(docs::page))
        .route("/style.css", get(html::style))
        .fallback(|| async { not_found("no such page") })
        .with_state(state)
}

/// A 404 page saying what was not found.
pub(crate) fn not_found(what: &str) -> Response {
    let body = html::page("Not found", "", &format!("<p>{}</p>", html::esc(what)));
    (StatusCode::NOT_FOUND, Html(body)).into_response()
}

/// A 400 page for a malformed request.
pub(crate) fn bad_request(what: &str) -> Response {
    let body = html::page("Bad request", "", &format!("<p>{}</p>", html::esc(what)));
    (StatusCode::BAD_REQUEST, Html(body)).into_response()
}

/// A 500 page for a failure on this side.
pub(crate) fn failed(what: &str, e: &dyn std::error::Error) -> Response {
    let mut text = format!("{what}: {e}");
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    let body = html::page("Error", "", &format!("<p>{}</p>", html::esc(&text)));
    (StatusCode::INTERNAL_SERVER_ERROR, Html(body)).into_response()
}
