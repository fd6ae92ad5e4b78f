//! Reading stored unit rows by page (`visit_pages`, ordered by site, page and time) for a
//! report with a page filter: the filter's pages become a condition on the table's order, so
//! only their rows are read, where `visits` (ordered by site and time) is read whole for the
//! period. Every row of `visits` is there once with its own page, except that a visit row is
//! there once per page the visit viewed: [`Key::one_copy`] keeps one copy per visit, the one a
//! report over `visits` would have counted the visit on.

use super::dimensions::leaf;
use super::{lit, Scope};
use crate::stats::query::{Dimension, Filter, Op};

/// The page filter a read by page is keyed on: the first top-level positive page filter
/// (`is`, `contains`, `matches`), which every row a report counts matches (a pageview or
/// event on its own page, a visit on one of its pages, or on its entry page when grouped by
/// page). Negative, nested (`or`, `not`) or no page filters leave no key: such a report
/// reads `visits`.
#[derive(Debug, Clone, Copy)]
pub struct Key<'f> {
    op: Op,
    values: &'f [String],
    case_sensitive: bool,
    /// The filter's position in the report's filters. A read by page need not test it: a
    /// pageview's or event's copy carries its own page, which is among [`Key::pages`] only if
    /// it matches; a visit's copy kept by [`Key::one_copy`] is on a matching page of the visit
    /// (its entry page when grouped by page).
    pub index: usize,
}

impl<'f> Key<'f> {
    pub fn of(filters: &'f [Filter]) -> Option<Key<'f>> {
        filters.iter().enumerate().find_map(|(index, f)| match f {
            Filter::Leaf {
                op: op @ (Op::Is | Op::Contains | Op::Matches),
                dimension: Dimension::Page,
                values,
                case_sensitive,
            } if !values.is_empty() => Some(Key {
                op: *op,
                values,
                case_sensitive: *case_sensitive,
                index,
            }),
            _ => None,
        })
    }

    /// The pages read: an exact value as itself; a pattern (`contains`, `matches`, a
    /// wildcard, a case-insensitive `is`) as the pages of the period's UTC days that match it
    /// in `visit_page_days`, which lists every page of `visit_pages` per day. ClickHouse uses
    /// either form of `IN` on the table's order.
    pub fn pages(&self, s: &Scope) -> String {
        let exact = self.op == Op::Is
            && self.case_sensitive
            && self.values.iter().all(|v| !v.contains('*'));
        if exact {
            let values: Vec<String> = self.values.iter().map(|v| lit(v)).collect();
            return format!("page_path IN ({})", values.join(", "));
        }
        format!(
            "page_path IN (SELECT page_path FROM {days} WHERE site = {site} \
             AND day >= toDate({from}) AND day <= toDate({to}) AND {matching})",
            days = s.table("visit_page_days"),
            site = s.site,
            from = s.from,
            to = s.to,
            matching = self.test("page_path"),
        )
    }

    /// Keeps one copy of each visit row: its entry page's when the report is grouped by page
    /// (the filter then tests a visit by its entry page), else the first of its pages that the
    /// key matches (the filter tests a visit by its pages; each copy has all of them). That
    /// copy's page matches the key, so it is among the rows read. `None` when the report reads
    /// no visit rows.
    pub fn one_copy(&self, s: &Scope) -> Option<String> {
        if !s.unit_kinds.has(0) {
            return None;
        }
        Some(if s.pages_grouped {
            "(kind != 0 OR (page_path = path AND page_host = host))".to_string()
        } else {
            format!(
                "(kind != 0 OR page_no = arrayFirstIndex(pp -> {}, pages_path))",
                self.test("pp")
            )
        })
    }

    fn test(&self, expr: &str) -> String {
        leaf(self.op, expr, self.values, self.case_sensitive, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::sql::{example_scope, UnitKinds};

    fn page(op: Op, values: &[&str], case_sensitive: bool) -> Filter {
        Filter::Leaf {
            op,
            dimension: Dimension::Page,
            values: values.iter().map(|v| v.to_string()).collect(),
            case_sensitive,
        }
    }

    #[test]
    fn issue_14_the_first_positive_page_filter_is_the_key() {
        let country = Filter::Leaf {
            op: Op::Is,
            dimension: Dimension::Country,
            values: vec!["NL".into()],
            case_sensitive: true,
        };
        assert!(Key::of(&[]).is_none());
        assert!(Key::of(std::slice::from_ref(&country)).is_none());
        assert!(Key::of(&[page(Op::IsNot, &["/a"], true)]).is_none());
        assert!(Key::of(&[page(Op::ContainsNot, &["/a"], true)]).is_none());
        assert!(Key::of(&[Filter::Not(Box::new(page(Op::Is, &["/a"], true)))]).is_none());
        assert!(Key::of(&[Filter::Or(vec![page(Op::Is, &["/a"], true)])]).is_none());
        let s = example_scope();
        let filters = [
            country,
            page(Op::IsNot, &["/b"], true),
            page(Op::Is, &["/a", "/c"], true),
        ];
        let key = Key::of(&filters).unwrap();
        assert_eq!(key.pages(&s), "page_path IN ('/a', '/c')");
        assert_eq!(key.index, 2);
    }

    #[test]
    fn issue_14_a_pattern_is_read_as_the_pages_it_matches() {
        let s = example_scope();
        for (filter, matching) in [
            (
                page(Op::Contains, &["/blog/"], true),
                "(position(page_path, '/blog/') > 0)",
            ),
            (
                page(Op::Is, &["/blog/*"], true),
                "(match(page_path, '^/blog/.*$'))",
            ),
            (
                page(Op::Is, &["/About"], false),
                "(lowerUTF8(page_path) = lowerUTF8('/About'))",
            ),
        ] {
            let filters = [filter];
            let pages = Key::of(&filters).unwrap().pages(&s);
            assert!(
                pages.starts_with("page_path IN (SELECT page_path FROM db.visit_page_days WHERE site = 'a.example' AND day >= toDate("),
                "{pages}"
            );
            assert!(pages.ends_with(&format!(" AND {matching})")), "{pages}");
        }
    }

    #[test]
    fn issue_14_a_visit_is_counted_on_one_copy() {
        let filters = [page(Op::Contains, &["/blog/"], true)];
        let key = Key::of(&filters).unwrap();
        let mut s = example_scope();
        assert_eq!(
            key.one_copy(&s).unwrap(),
            "(kind != 0 OR page_no = arrayFirstIndex(pp -> (position(pp, '/blog/') > 0), pages_path))"
        );
        s.pages_grouped = true;
        assert_eq!(
            key.one_copy(&s).unwrap(),
            "(kind != 0 OR (page_path = path AND page_host = host))"
        );
        s.unit_kinds = UnitKinds::PAGEVIEWS;
        assert!(key.one_copy(&s).is_none());
    }
}
