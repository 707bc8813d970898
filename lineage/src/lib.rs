//! `shark-lineage`: the SQLite lineage database.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
