//! The subcommands: each module implements one `shark` subcommand (or one way of running
//! commands) on top of the executor, the session and the lineage database.

pub(crate) mod export;
pub(crate) mod md;
pub(crate) mod query;
pub(crate) mod replay;
pub(crate) mod run;
pub(crate) mod script;
pub(crate) mod serve;
pub(crate) mod store;
pub(crate) mod undo;
pub(crate) mod verify;
