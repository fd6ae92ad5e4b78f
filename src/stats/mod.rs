//! Reports: a typed question in ([`Query`]), a typed answer out ([`Answer`]).
//!
//! - `query`: the question's vocabulary (metrics, dimensions, filters, date ranges);
//! - `period`: a date range resolved to UTC instants in the site's time zone;
//! - `engine`: the report engine ([`Stats`]): rollups or raw events, per group;
//! - `prefiltered`: a dashboard page's filtered unit rows, selected once for its panels;
//! - `answer`: metrics from components, order, pages, comparisons;
//! - `sql`: the report SQL (raw-event visits, rollup reads);
//! - `api`: the stats API's JSON, the one adapter between JSON and the typed query and answer;
//! - `access`: who may read which site; `aggregate_mode`: what aggregate-only mode can answer.
//!
//! Metric definitions are in `docs/http-api.md` ("Definitions").

pub mod access;
pub mod aggregate_mode;
pub mod answer;
pub mod api;
pub mod engine;
pub mod period;
pub mod prefiltered;
pub mod query;
pub mod sql;

pub use answer::{Answer, Compared, Row};
pub use engine::Stats;
pub use query::{DateRange, Dimension, Filter, Metric, Op, Query};
