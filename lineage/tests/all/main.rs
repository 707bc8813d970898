//! Integration tests of `shark-lineage`, on real database files; one binary, one module per
//! concern.

mod browse;
mod common;
mod concurrency;
mod graph;
mod queries;
mod rebuild;
mod record;
mod scale;
mod schema;
