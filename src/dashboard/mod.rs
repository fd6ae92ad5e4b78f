//! The built-in dashboard for the web team: server-rendered pages served by tally itself.
//!
//! Each view is one GET whose URL holds its whole state (`view`); its numbers are asked of the
//! report engine in-process with typed queries (`panels`), rendered to HTML with inline SVG
//! charts (`page`, `charts`, `html`) in the request's language (`crate::i18n`), and each panel's
//! numbers can be downloaded as CSV (`export`). `routes` decides which page answers and who may see it
//! (`auth`: users with argon2 password hashes and sessions, a trusted proxy's user header, or a
//! per-site share link; `sessions`: where sessions are kept, in ClickHouse for every collector;
//! `login`: the login and logout forms). Assets (stylesheet, a small
//! optional script, icon) are embedded in the binary (`assets`); pages load nothing from
//! anywhere else (`Content-Security-Policy: default-src 'self'`, set in `headers`).

mod assets;
mod auth;
mod charts;
mod export;
mod headers;
mod html;
mod login;
mod page;
mod panels;
mod respond;
mod routes;
mod sessions;
mod view;

pub use routes::{owns, Dashboard};
pub use sessions::{credential_of, maintain as maintain_sessions, Live, SessionStore};
