//! `shark-sandbox`: runs one command in Linux namespaces and reports what it read and wrote.
#![warn(missing_docs)]
