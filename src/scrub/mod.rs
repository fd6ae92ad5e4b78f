//! Personal data kept out of paths, query values and referrer hosts: the built-in detectors
//! (`detectors`: e-mail addresses, BSNs, IBANs, phone numbers, UUIDs, long numbers, secret-looking
//! tokens → placeholders such as `:email`) and the per-site rewrite rules that run before them
//! (`rules`). A rule can coarsen a path but never bring data back: the detectors always run on
//! its result.

mod detectors;
mod rules;

pub use detectors::{host_is_personal, scrub_path, scrub_value};
pub use rules::{Pattern, Rule, Rules};
