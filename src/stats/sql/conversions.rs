//! Conversions over unit rows, in SQL: which pageview or custom-event rows convert for a goal,
//! a custom property's value, and the pieces a conversion report's grouped query adds (the
//! `goal` column a row gets once per goal it converts, the components it counts).
//!
//! A conversion report (an `event:goal` or `event:props:*` dimension or filter) counts the
//! pageview and custom-event rows (kinds 1 and 2) that match, as Plausible counts events:
//! `visitors` are the distinct visitors among them (per local day, as everywhere), `events`
//! the rows. Visit rows (kind 0) take no part, so visit metrics are refused by the API.

use super::lit;
use crate::goals::{Goal, GoalKind};
use crate::stats::query::Op;

/// A goal as SQL: its name and the condition a converting unit row meets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoalRule {
    pub name: String,
    pub condition: String,
}

impl GoalRule {
    /// Page goals count pageview rows (kind 1) of matching paths, event goals custom-event rows
    /// (kind 2) of that name; engagement beacons are never unit rows, so they never convert.
    pub fn of(goal: &Goal) -> GoalRule {
        let condition = match (&goal.kind, goal.page_regex()) {
            (GoalKind::Page(_), Some(regex)) => {
                format!("(kind = 1 AND match(path, {}))", lit(&regex))
            }
            (GoalKind::Page(p), None) => format!("(kind = 1 AND path = {})", lit(p)),
            (GoalKind::Event(e), _) => format!("(kind = 2 AND name = {})", lit(e)),
        };
        GoalRule {
            name: goal.name.clone(),
            condition,
        }
    }
}

/// What a conversion report needs besides the filters: the site's goals and the custom
/// property keys its `Dimension::Prop`s index.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Conversions {
    pub goals: Vec<GoalRule>,
    pub prop_keys: Vec<String>,
}

impl Conversions {
    /// The goals an `event:goal` filter leaf selects by name (`is`: equal, `contains`: part of
    /// it; `case_sensitive: false` compares lower case, as Plausible does).
    pub fn selected(&self, op: Op, values: &[String], case_sensitive: bool) -> Vec<&GoalRule> {
        let fold = |s: &str| {
            if case_sensitive {
                s.to_string()
            } else {
                s.to_lowercase()
            }
        };
        self.goals
            .iter()
            .filter(|g| {
                let name = fold(&g.name);
                values.iter().any(|v| match op {
                    Op::Contains => name.contains(&fold(v)),
                    _ => name == fold(v),
                })
            })
            .collect()
    }

    /// An `event:goal` filter leaf: the row converts for one of the goals it selects.
    pub fn goal_filter(&self, op: Op, values: &[String], case_sensitive: bool) -> String {
        let conditions: Vec<&str> = self
            .selected(op, values, case_sensitive)
            .into_iter()
            .map(|g| g.condition.as_str())
            .collect();
        if conditions.is_empty() {
            "0".into()
        } else {
            format!("({})", conditions.join(" OR "))
        }
    }

    /// The value of custom property `index` of a row, `(none)` where the row has no such
    /// property.
    pub fn prop_value(&self, index: u8) -> String {
        let key = lit(self
            .prop_keys
            .get(usize::from(index))
            .map(String::as_str)
            .unwrap_or(""));
        format!("if(has(props_keys, {key}), props_values[indexOf(props_keys, {key})], '(none)')")
    }

    /// `ARRAY JOIN … AS goal` for an `event:goal` dimension: each row once per goal of `goals`
    /// it converts for; a row that converts for none drops out.
    pub fn goal_join(goals: &[&GoalRule]) -> String {
        if goals.is_empty() {
            return "\nARRAY JOIN emptyArrayString() AS goal".into();
        }
        let arms: Vec<String> = goals
            .iter()
            .map(|g| format!("if({}, {}, '')", g.condition, lit(&g.name)))
            .collect();
        format!(
            "\nARRAY JOIN arrayFilter(g -> g != '', [{}]) AS goal",
            arms.join(", ")
        )
    }
}

/// The additive components of a conversion report, in the places the engine reads them:
/// pageviews (0), visitors (1), nothing for the visit components, then events (the rows).
pub const COMPONENTS: [&str; 11] = [
    "countIf(kind = 1)",
    "uniqExact(day_visitor)",
    "0",
    "0",
    "0",
    "0",
    "0",
    "0",
    "0",
    "0",
    "count()",
];

/// The rows a conversion report counts.
pub const ROWS: &str = "kind IN (1, 2)";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn goals_become_row_conditions_and_filters_select_them_by_name() {
        let goals = crate::goals::parse([
            (None, Some("/afval*"), None),
            (None, Some("/contact"), None),
            (Some("PDF"), None, Some("File Download")),
        ])
        .unwrap();
        let c = Conversions {
            goals: goals.iter().map(GoalRule::of).collect(),
            prop_keys: vec!["format".into()],
        };
        assert_eq!(
            c.goals[0].condition,
            "(kind = 1 AND match(path, '^/afval.*$'))"
        );
        assert_eq!(c.goals[1].condition, "(kind = 1 AND path = '/contact')");
        assert_eq!(
            c.goals[2].condition,
            "(kind = 2 AND name = 'File Download')"
        );
        let names = |op, v: &[&str], cs| -> Vec<String> {
            let v: Vec<String> = v.iter().map(|s| s.to_string()).collect();
            c.selected(op, &v, cs)
                .iter()
                .map(|g| g.name.clone())
                .collect()
        };
        assert_eq!(names(Op::Is, &["PDF"], true), ["PDF"]);
        assert!(names(Op::Is, &["pdf"], true).is_empty());
        assert_eq!(names(Op::Is, &["pdf"], false), ["PDF"]);
        assert_eq!(
            names(Op::Contains, &["Visit"], true),
            ["Visit /afval*", "Visit /contact"]
        );
        assert_eq!(c.goal_filter(Op::Is, &["nothing".into()], true), "0");
        assert_eq!(
            c.prop_value(0),
            "if(has(props_keys, 'format'), props_values[indexOf(props_keys, 'format')], '(none)')"
        );
    }
}
