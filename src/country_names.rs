//! English country names (`visit:country_name`) of the ISO 3166-1 codes tally stores
//! (`country`), from `data/countries.tsv`.
//!
//! Why that file: Plausible names countries from Debian's iso-codes list (the `common_name` where
//! there is one, else `name`: "United States", "South Korea", "Netherlands"), so the names here
//! are the same and a script's `["is", "visit:country_name", ["Estonia"]]` matches on tally too.
//! `scripts/refresh-countries.sh` writes the file from the Debian package; no crate was used
//! because the crates with ISO 3166 names spell them their own way ("United States of America",
//! "Korea, Republic of"), and the country database's `names.en` is only known for the countries
//! a lookup happened to return, while a report needs every name up front (it is computed in SQL).

use std::sync::LazyLock;

use crate::sql_text::lit;

const COUNTRIES: &str = include_str!("../data/countries.tsv");

/// `(code, name)` pairs, sorted by code.
static NAMES: LazyLock<Vec<(&'static str, &'static str)>> = LazyLock::new(|| {
    COUNTRIES
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.split_once('\t'))
        .collect()
});

/// The English name of a two-letter code (`NL` → `Netherlands`), if it is a country.
pub fn name(code: &str) -> Option<&'static str> {
    NAMES
        .binary_search_by(|(c, _)| (*c).cmp(code))
        .ok()
        .map(|i| NAMES[i].1)
}

/// The name of the code in column `column` as a ClickHouse expression; empty when the code is
/// empty or unknown, as Plausible answers a visit without a country.
pub fn sql(column: &str) -> String {
    let codes: Vec<String> = NAMES.iter().map(|(c, _)| lit(c)).collect();
    let names: Vec<String> = NAMES.iter().map(|(_, n)| lit(n)).collect();
    format!(
        "transform({column}, [{}], [{}], '')",
        codes.join(", "),
        names.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_plausibles() {
        assert_eq!(name("NL"), Some("Netherlands"));
        assert_eq!(name("US"), Some("United States"));
        assert_eq!(name("KR"), Some("South Korea"));
        assert_eq!(name("EE"), Some("Estonia"));
        assert_eq!(name("XK"), Some("Kosovo"));
        assert_eq!(name("CI"), Some("Côte d'Ivoire"));
        assert_eq!(name(""), None);
        assert_eq!(name("ZZ"), None);
        assert!(NAMES.len() >= 249, "{}", NAMES.len());
        assert!(NAMES.windows(2).all(|w| w[0].0 < w[1].0), "sorted by code");
    }

    #[test]
    fn the_sql_quotes_names() {
        let sql = sql("country");
        assert!(sql.contains(r"'Côte d\'Ivoire'"), "{}", &sql[..200]);
        assert!(sql.starts_with("transform(country, ['AD'"));
    }
}
