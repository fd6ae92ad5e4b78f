//! The ingest benchmark's parts (run by `scripts/bench-ingest.sh`): realistic beacon traffic
//! (`traffic`) and the minimal keep-alive HTTP client that sends it (`client`). The binaries are
//! `tally-load` (the load generator) and `tally-bare` (a hyper server that answers 204, the
//! limit of the HTTP stack tally is built on).
#![forbid(unsafe_code)]

pub mod client;
pub mod traffic;
