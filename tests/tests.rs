//! End-to-end tests of the `shark` binary: one test binary, one module per area.

mod browser;
mod cli;
mod common;
mod crash;
mod damage;
mod export;
mod gc;
mod gdal;
mod man;
mod md;
mod md_reference;
mod queries;
mod remote;
mod repl;
mod replay;
mod restore;
mod reuse;
mod roots;
mod safety;
mod script;
mod serve;
mod snapshots;
mod store;
mod trust;
mod undo;
mod unprivileged;
