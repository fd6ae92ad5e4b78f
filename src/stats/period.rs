//! Periods: a `date_range` resolved to UTC instants in the site's time zone, and its time labels.
//!
//! Days are civil days in the site's zone, so a DST day is 23 or 25 hours long; every boundary is
//! computed with `jiff` from local midnights, never by adding 24 hours.

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan, Zoned};

use super::query::{Comparison, DateRange, Dimension};
use crate::error::StatsError;

/// How far back "realtime" looks.
pub const REALTIME_SECONDS: i64 = 5 * 60;

/// A resolved period: `[from, to)` in UTC, and the local dates it spans (for labels).
#[derive(Debug, Clone, PartialEq)]
pub struct Period {
    pub from: Timestamp,
    pub to: Timestamp,
    pub tz: TimeZone,
}

impl Period {
    /// The whole local days `first ..= last`.
    pub fn days(first: Date, last: Date, tz: &TimeZone) -> Result<Period, StatsError> {
        let from = start_of_day(first, tz)?;
        let to = start_of_day(next_day(last)?, tz)?;
        Ok(Period {
            from,
            to,
            tz: tz.clone(),
        })
    }

    /// Resolves a requested range. `first_event` is asked only for `all`.
    pub fn resolve(
        range: &DateRange,
        tz: &TimeZone,
        now: Timestamp,
        first_event: Option<Timestamp>,
    ) -> Result<Period, StatsError> {
        let today = now.to_zoned(tz.clone()).date();
        let overflow = |_| StatsError::Invalid("#/date_range: out of range".into());
        match range {
            DateRange::Day => Period::days(today, today, tz),
            DateRange::Yesterday => {
                let y = today.yesterday().map_err(overflow)?;
                Period::days(y, y, tz)
            }
            DateRange::LastDays(n) => {
                let last = today.yesterday().map_err(overflow)?;
                let first = today.checked_sub(i64::from(*n).days()).map_err(overflow)?;
                Period::days(first, last, tz)
            }
            DateRange::LastMonths(n) => {
                let this_month = today.first_of_month();
                let first = this_month
                    .checked_sub(i64::from(*n).months())
                    .map_err(overflow)?;
                let last = this_month.yesterday().map_err(overflow)?;
                Period::days(first, last, tz)
            }
            DateRange::Month => Period::days(today.first_of_month(), today.last_of_month(), tz),
            DateRange::Year => Period::days(today.first_of_year(), today.last_of_year(), tz),
            DateRange::All => {
                let first = first_event
                    .map(|t| t.to_zoned(tz.clone()).date())
                    .unwrap_or(today)
                    .min(today);
                Period::days(first, today, tz)
            }
            DateRange::Realtime => Ok(Period {
                from: now
                    .checked_sub(REALTIME_SECONDS.seconds())
                    .map_err(overflow)?,
                to: now.checked_add(1.second()).map_err(overflow)?,
                tz: tz.clone(),
            }),
            // Plausible's `24h`: the 24 hours up to now (its `build_24h_range`); the instant now
            // is included, as in realtime.
            DateRange::Last24Hours => Ok(Period {
                from: now.checked_sub(24.hours()).map_err(overflow)?,
                to: now.checked_add(1.second()).map_err(overflow)?,
                tz: tz.clone(),
            }),
            DateRange::Dates(a, b) => Period::days(*a, *b, tz),
            DateRange::Instants(a, b) => Ok(Period {
                from: *a,
                // The last instant is inclusive, as in Plausible (`…T23:59:59`).
                to: b.checked_add(1.second()).map_err(overflow)?,
                tz: tz.clone(),
            }),
        }
    }

    /// The period compared with this one.
    pub fn compared(&self, mode: Comparison) -> Result<Period, StatsError> {
        let overflow = |_| StatsError::Invalid("#/include/comparisons: out of range".into());
        match mode {
            Comparison::PreviousPeriod => {
                // Whole local days shift by whole local days, so DST does not skew the window.
                if let Some((first, last)) = self.whole_days() {
                    let n = first.until(last).map_err(overflow)?.get_days() + 1;
                    let pf = first.checked_sub(n.days()).map_err(overflow)?;
                    let pl = first.yesterday().map_err(overflow)?;
                    return Period::days(pf, pl, &self.tz);
                }
                let len = self.to.duration_since(self.from);
                Ok(Period {
                    from: self.from.checked_sub(len).map_err(overflow)?,
                    to: self.from,
                    tz: self.tz.clone(),
                })
            }
            Comparison::YearOverYear => {
                let shift = |t: Timestamp| {
                    t.to_zoned(self.tz.clone())
                        .checked_sub(1.year())
                        .map(|z| z.timestamp())
                        .map_err(overflow)
                };
                Ok(Period {
                    from: shift(self.from)?,
                    to: shift(self.to)?,
                    tz: self.tz.clone(),
                })
            }
        }
    }

    /// `(first, last)` local dates when the period is exactly whole local days.
    pub fn whole_days(&self) -> Option<(Date, Date)> {
        let f = self.from.to_zoned(self.tz.clone());
        let t = self.to.to_zoned(self.tz.clone());
        let first = f.date();
        let last = t.date().yesterday().ok()?;
        let aligned = start_of_day(first, &self.tz).ok()? == self.from
            && start_of_day(t.date(), &self.tz).ok()? == self.to
            && first <= last;
        aligned.then_some((first, last))
    }

    /// What `time` means for this period (Plausible's rule, by length).
    pub fn time_dimension(&self) -> Dimension {
        let hours = self.to.duration_since(self.from).as_secs() / 3600;
        if hours <= 48 {
            Dimension::Hour
        } else if hours <= 40 * 24 + 1 {
            Dimension::Day
        } else if hours <= 52 * 7 * 24 + 1 {
            Dimension::Week
        } else {
            Dimension::Month
        }
    }

    /// Every label of a time-series dimension in this period, in order, without repeats.
    pub fn labels(&self, dim: Dimension) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let mut push = |s: String| {
            if out.last() != Some(&s) {
                out.push(s);
            }
        };
        let first_date = self.from.to_zoned(self.tz.clone()).date();
        match dim {
            Dimension::Hour => {
                // Walk UTC hours; a local hour that occurs twice (autumn) is one label, one that
                // does not occur (spring) has none.
                let mut t = self.from;
                while t < self.to {
                    push(
                        t.to_zoned(self.tz.clone())
                            .strftime("%Y-%m-%d %H:00:00")
                            .to_string(),
                    );
                    let z: Zoned = t.to_zoned(self.tz.clone());
                    let next_hour = z
                        .with()
                        .minute(0)
                        .second(0)
                        .subsec_nanosecond(0)
                        .build()
                        .ok()
                        .and_then(|z| z.timestamp().checked_add(1.hour()).ok());
                    match next_hour {
                        Some(n) if n > t => t = n,
                        _ => break,
                    }
                }
            }
            Dimension::Day | Dimension::Week | Dimension::Month => {
                let last = self
                    .to
                    .checked_sub(1.second())
                    .map(|t| t.to_zoned(self.tz.clone()).date())
                    .unwrap_or(first_date);
                let mut d = first_date;
                while d <= last {
                    let label = match dim {
                        Dimension::Day => d,
                        Dimension::Week => week_start(d).max(first_date),
                        _ => d.first_of_month(),
                    };
                    push(label.to_string());
                    match d.tomorrow() {
                        Ok(n) => d = n,
                        Err(_) => break,
                    }
                }
            }
            _ => {}
        }
        out
    }

    /// The period as Plausible echoes it: local datetimes with offset, the last one inclusive.
    pub fn echo(&self) -> [String; 2] {
        let fmt = |t: Timestamp| {
            t.to_zoned(self.tz.clone())
                .strftime("%Y-%m-%dT%H:%M:%S%:z")
                .to_string()
        };
        let last = self.to.checked_sub(1.second()).unwrap_or(self.to);
        [fmt(self.from), fmt(last)]
    }
}

pub fn start_of_day(d: Date, tz: &TimeZone) -> Result<Timestamp, StatsError> {
    d.to_zoned(tz.clone())
        .and_then(|z| z.start_of_day())
        .map(|z| z.timestamp())
        .map_err(|_| StatsError::Invalid("#/date_range: date out of range".into()))
}

fn next_day(d: Date) -> Result<Date, StatsError> {
    d.tomorrow()
        .map_err(|_| StatsError::Invalid("#/date_range: date out of range".into()))
}

/// Monday of the week of `d`.
pub fn week_start(d: Date) -> Date {
    let back = i64::from(d.weekday().to_monday_zero_offset());
    d.checked_sub(back.days()).unwrap_or(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ams() -> TimeZone {
        TimeZone::get("Europe/Amsterdam").unwrap()
    }
    fn date(s: &str) -> Date {
        s.parse().unwrap()
    }
    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn dst_days_have_23_and_25_hours_and_matching_labels() {
        let spring = Period::days(date("2026-03-29"), date("2026-03-29"), &ams()).unwrap();
        assert_eq!(spring.from, ts("2026-03-28T23:00:00Z"));
        assert_eq!(spring.to, ts("2026-03-29T22:00:00Z"));
        let labels = spring.labels(Dimension::Hour);
        assert_eq!(labels.len(), 23);
        assert!(!labels.contains(&"2026-03-29 02:00:00".to_string()));
        assert_eq!(labels[2], "2026-03-29 03:00:00");

        let autumn = Period::days(date("2026-10-25"), date("2026-10-25"), &ams()).unwrap();
        assert_eq!(autumn.to.duration_since(autumn.from).as_secs(), 25 * 3600);
        let labels = autumn.labels(Dimension::Hour);
        assert_eq!(labels.len(), 24, "{labels:?}");
        assert_eq!(labels[2], "2026-10-25 02:00:00");
        assert_eq!(labels[3], "2026-10-25 03:00:00");
    }

    #[test]
    fn relative_ranges_follow_plausible() {
        let now = ts("2026-05-08T10:00:00Z");
        let tz = ams();
        let p = Period::resolve(&DateRange::LastDays(7), &tz, now, None).unwrap();
        assert_eq!(
            p.whole_days(),
            Some((date("2026-05-01"), date("2026-05-07")))
        );
        let p = Period::resolve(&DateRange::LastMonths(3), &tz, now, None).unwrap();
        assert_eq!(
            p.whole_days(),
            Some((date("2026-02-01"), date("2026-04-30")))
        );
        let p = Period::resolve(&DateRange::Month, &tz, now, None).unwrap();
        assert_eq!(
            p.whole_days(),
            Some((date("2026-05-01"), date("2026-05-31")))
        );
        let p = Period::resolve(&DateRange::Yesterday, &tz, now, None).unwrap();
        assert_eq!(
            p.whole_days(),
            Some((date("2026-05-07"), date("2026-05-07")))
        );
        assert_eq!(p.echo()[0], "2026-05-07T00:00:00+02:00");
        assert_eq!(p.echo()[1], "2026-05-07T23:59:59+02:00");
        // Just after local midnight, "day" is the new local day although UTC is still on the old.
        let p = Period::resolve(&DateRange::Day, &tz, ts("2026-05-07T22:30:00Z"), None).unwrap();
        assert_eq!(
            p.whole_days(),
            Some((date("2026-05-08"), date("2026-05-08")))
        );
    }

    /// Each relative range as Plausible's `Plausible.Stats.QueryPeriod` resolves it (its doc
    /// tests' dates): `Nd` the N days before today, `Nmo` the N whole months before this one,
    /// `month` / `year` the whole current month / year, `all` up to and with today, `24h` the 24
    /// hours up to now; at a month's first day and across DST changes.
    #[test]
    fn every_relative_range_includes_or_excludes_today_as_plausible() {
        let tz = ams();
        let at = |now: &str, r: DateRange| {
            Period::resolve(&r, &tz, ts(now), Some(ts("2025-11-02T12:00:00Z")))
                .unwrap()
                .whole_days()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .unwrap()
        };
        let d = |a: &str, b: &str| (a.to_string(), b.to_string());
        // 2026-03-01 00:30 in Amsterdam (still February in UTC): today is March 1.
        let now = "2026-02-28T23:30:00Z";
        assert_eq!(
            at(now, DateRange::LastDays(7)),
            d("2026-02-22", "2026-02-28")
        );
        assert_eq!(
            at(now, DateRange::LastDays(28)),
            d("2026-02-01", "2026-02-28")
        );
        assert_eq!(
            at(now, DateRange::LastDays(30)),
            d("2026-01-30", "2026-02-28")
        );
        assert_eq!(
            at(now, DateRange::LastDays(91)),
            d("2025-11-30", "2026-02-28")
        );
        assert_eq!(
            at(now, DateRange::LastMonths(6)),
            d("2025-09-01", "2026-02-28")
        );
        assert_eq!(
            at(now, DateRange::LastMonths(12)),
            d("2025-03-01", "2026-02-28")
        );
        assert_eq!(at(now, DateRange::Month), d("2026-03-01", "2026-03-31"));
        assert_eq!(at(now, DateRange::Year), d("2026-01-01", "2026-12-31"));
        assert_eq!(at(now, DateRange::Day), d("2026-03-01", "2026-03-01"));
        assert_eq!(at(now, DateRange::All), d("2025-11-02", "2026-03-01"));
        // A week across the spring change: 7 local days, one of them 23 hours.
        let p = Period::resolve(
            &DateRange::LastDays(7),
            &tz,
            ts("2026-04-01T10:00:00Z"),
            None,
        )
        .unwrap();
        assert_eq!(p.from, ts("2026-03-24T23:00:00Z"));
        assert_eq!(p.to, ts("2026-03-31T22:00:00Z"));
        assert_eq!(p.to.duration_since(p.from).as_secs(), (7 * 24 - 1) * 3600);
        // 24h: the instants, not local days, so 24 hours across the autumn change too.
        let now = ts("2026-10-25T12:00:00Z");
        let p = Period::resolve(&DateRange::Last24Hours, &tz, now, None).unwrap();
        assert_eq!(p.from, ts("2026-10-24T12:00:00Z"));
        assert_eq!(p.to, ts("2026-10-25T12:00:01Z"));
        assert_eq!(p.whole_days(), None);
        assert_eq!(p.time_dimension(), Dimension::Hour);
        // Hourly labels: 25 UTC hours touched, the repeated local 02:00 once.
        let labels = p.labels(Dimension::Hour);
        assert_eq!(
            labels.first().map(String::as_str),
            Some("2026-10-24 14:00:00")
        );
        assert_eq!(
            labels.last().map(String::as_str),
            Some("2026-10-25 13:00:00")
        );
        assert_eq!(labels.len(), 24, "{labels:?}");
    }

    #[test]
    fn previous_period_is_the_same_number_of_days_before() {
        let p = Period::days(date("2026-03-29"), date("2026-04-04"), &ams()).unwrap();
        let c = p.compared(Comparison::PreviousPeriod).unwrap();
        assert_eq!(
            c.whole_days(),
            Some((date("2026-03-22"), date("2026-03-28")))
        );
        let y = p.compared(Comparison::YearOverYear).unwrap();
        assert_eq!(
            y.whole_days(),
            Some((date("2025-03-29"), date("2025-04-04")))
        );
    }

    #[test]
    fn weeks_start_on_monday_but_not_before_the_period() {
        let p = Period::days(date("2026-03-25"), date("2026-04-07"), &ams()).unwrap();
        assert_eq!(
            p.labels(Dimension::Week),
            vec!["2026-03-25", "2026-03-30", "2026-04-06"]
        );
        assert_eq!(p.time_dimension(), Dimension::Day);
    }
}
