//! Integration tests: the real `tally` binary, a real ClickHouse, a real HTTP client.
//! Run them with `scripts/test.sh`, which starts the ClickHouse server they need.

mod aggregate;
mod audit;
mod check_config;
mod cluster;
mod corpora;
mod dashboard;
mod exclusions;
mod export;
mod faults;
mod goals;
mod grafana;
mod hostile;
mod ingest;
mod languages;
mod lifecycle;
mod plausible_examples;
mod privacy;
mod reports;
mod retention;
mod rollups;
mod salts;
mod schema;
mod scrubbing;
mod sources;
mod spool;
mod stored_visits;
mod support;
mod ua_data;
mod visits;
