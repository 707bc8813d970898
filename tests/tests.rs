//! End-to-end tests of the `shark` binary: one test binary, one module per area.

mod cli;
mod common;
mod crash;
mod fidelity;
mod gc;
mod gdal;
mod man;
mod md;
mod queries;
mod repl;
mod replay;
mod reuse;
mod roots;
mod script;
mod store;
mod unprivileged;
