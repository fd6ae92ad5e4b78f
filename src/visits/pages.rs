//! The copy of stored slices ordered by page (`visit_pages`, migration 0009) for slices stored
//! before it existed: a computation writes its own copy ([`super::VisitJob`]), and this step
//! copies, a day of slices per statement, the current computation of each slice that has none,
//! oldest first. A slice's copy is named by a second marker of its computation; a copy killed
//! half-way is never named, and the next run copies the slice again under a new version.

use clickhouse::Client;
use jiff::Timestamp;

use super::sql::{self, Uncopied};
use crate::error::Error;

/// Slices one statement copies at most (a day of them: about 90,000 unit rows of the
/// benchmark's busiest site).
const SLICES_PER_STATEMENT: usize = 24;

/// What one run of the copy did: slices copied, and slices still without a copy.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Copied {
    pub copied: usize,
    pub pending: usize,
}

/// Copies at most `budget` of `site`'s uncopied slices.
pub async fn copy_uncopied(
    client: &Client,
    database: &str,
    site: &str,
    budget: usize,
) -> Result<Copied, Error> {
    let uncopied: Vec<Uncopied> = client
        .query_raw(&sql::uncopied(database, site))
        .fetch_all()
        .await?;
    let mut done = Copied {
        copied: 0,
        pending: uncopied.len(),
    };
    for group in groups(&uncopied[..budget.min(uncopied.len())]) {
        let version = crate::storage::new_version()?;
        // A slice's rows lie from its earliest visit's start to its hour's end.
        let first = group.iter().map(|u| u.first_start).min().unwrap_or(0);
        let last = group[group.len() - 1].slice;
        let lo =
            Timestamp::from_second(i64::from(first)).map_err(|e| Error::Config(e.to_string()))?;
        let hi = Timestamp::from_second(i64::from(last) + 3600)
            .map_err(|e| Error::Config(e.to_string()))?;
        let rows = sql::slice_versions(group);
        for statement in sql::copy_pages(database, site, (lo, hi), &rows, version) {
            client.query_raw(&statement).execute().await?;
        }
        client
            .query_raw(&sql::mark_copied(database, site, group, version))
            .execute()
            .await?;
        done.copied += group.len();
        done.pending -= group.len();
    }
    Ok(done)
}

/// The slices (in order) in groups of at most [`SLICES_PER_STATEMENT`] that lie within that
/// many hours, so that each statement reads about a day of stored rows.
fn groups(slices: &[Uncopied]) -> Vec<&[Uncopied]> {
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..=slices.len() {
        let ends = i == slices.len()
            || i - start == SLICES_PER_STATEMENT
            || slices[i].slice - slices[start].slice >= SLICES_PER_STATEMENT as u32 * 3600;
        if ends {
            out.push(&slices[start..i]);
            start = i;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_are_copied_a_day_at_a_time() {
        let at = |hours: &[u32]| -> Vec<Uncopied> {
            hours
                .iter()
                .map(|h| Uncopied {
                    slice: 1_700_000_000 - 1_700_000_000 % 3600 + h * 3600,
                    version: 7,
                    first_start: 1_699_990_000,
                })
                .collect()
        };
        let lens = |s: &[Uncopied]| groups(s).iter().map(|g| g.len()).collect::<Vec<_>>();
        assert!(groups(&[]).is_empty());
        assert_eq!(lens(&at(&[0, 1, 2])), [3]);
        // Hours 0 to 23 in one statement, hour 24 in the next.
        assert_eq!(lens(&at(&(0..30).collect::<Vec<_>>())), [24, 6]);
        // Slices further apart than a day are not copied together.
        assert_eq!(lens(&at(&[0, 5, 24, 30, 100])), [2, 2, 1]);
    }
}
