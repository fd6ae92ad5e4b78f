//! ClickHouse SQL text: how values from requests and the config are written into queries.
//! Every value is a literal built here ([`lit`], [`datetime`]); names of tables, columns,
//! dimensions and metrics come from fixed tables in the code, never from a request. Also how a
//! ClickHouse `Date` travels in rows ([`day_number`], [`date_of_day`]).

use std::fmt::Write;

use jiff::civil::Date;
use jiff::{Timestamp, ToSpan};

const EPOCH: Date = Date::constant(1970, 1, 1);

/// A date as a ClickHouse `Date` column holds it: days since 1970-01-01 (0 outside its range).
pub fn day_number(d: Date) -> u16 {
    let days = d
        .since((jiff::Unit::Day, EPOCH))
        .map(|s| s.get_days())
        .unwrap_or(0);
    u16::try_from(days).unwrap_or(0)
}

/// The date of a ClickHouse `Date` value (days since 1970-01-01).
pub fn date_of_day(days: u16) -> Date {
    EPOCH.checked_add(i64::from(days).days()).unwrap_or(EPOCH)
}

/// A ClickHouse string literal holding exactly `s`.
pub fn lit(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\x{:02X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// A UTC instant, to the second.
pub fn datetime(t: Timestamp) -> String {
    format!("toDateTime({}, 'UTC')", t.as_second())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_cannot_be_broken_out_of() {
        assert_eq!(lit("plain"), "'plain'");
        assert_eq!(lit("o'clock"), "'o\\'clock'");
        assert_eq!(lit("a\\' OR 1=1 --"), "'a\\\\\\' OR 1=1 --'");
        assert_eq!(lit("line\nbreak\0"), "'line\\x0Abreak\\x00'");
        assert_eq!(
            datetime("2026-03-29T01:00:00Z".parse().unwrap()),
            "toDateTime(1774746000, 'UTC')"
        );
    }
}
