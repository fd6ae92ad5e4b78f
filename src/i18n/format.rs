//! Numbers, dates and plural forms as CLDR writes them for a language, through ICU4X (the
//! Unicode Consortium's Rust libraries, its CLDR data compiled into the binary): grouping and
//! decimal separators (`1,234.5`, `1.234,5`, `1 234,5` with a narrow no-break space), day and
//! month (`Mar 3`, `3 mrt`, `3 mars`), weekday names, and which plural form a count takes
//! (French says `0 visiteur`, English `0 visitors`). The formatters of a language are made once.

use fixed_decimal::Decimal;
use icu_calendar::{Date, Gregorian};
use icu_datetime::fieldsets::{self, E, MD, YM, YMD, YMDE};
use icu_datetime::FixedCalendarDateTimeFormatter;
use icu_decimal::DecimalFormatter;
use icu_locale_core::Locale;
use icu_plurals::{PluralCategory, PluralRules};

use super::Lang;

type DateFormatter<F> = FixedCalendarDateTimeFormatter<Gregorian, F>;

/// How a date is written (see the `Tr` methods of the same names).
#[derive(Debug, Clone, Copy)]
pub enum DateStyle {
    DayMonth,
    Full,
    WithWeekday,
    MonthYear,
    Weekday,
    WeekdayShort,
}

pub struct Formats {
    decimal: DecimalFormatter,
    plurals: PluralRules,
    day_month: DateFormatter<MD>,
    full: DateFormatter<YMD>,
    with_weekday: DateFormatter<YMDE>,
    month_year: DateFormatter<YM>,
    weekday: DateFormatter<E>,
    weekday_short: DateFormatter<E>,
}

impl Formats {
    /// The formatters of `lang`. ICU4X's compiled data has every language tally speaks, so
    /// making them cannot fail for these; a test makes each one.
    pub fn new(lang: Lang) -> Formats {
        let locale: Locale = lang
            .code()
            .parse()
            .unwrap_or_else(|e| panic!("locale {}: {e:?}", lang.code()));
        let fail = |what: &str| -> ! { panic!("ICU4X has no {what} data for {}", lang.code()) };
        Formats {
            decimal: DecimalFormatter::try_new((&locale).into(), Default::default())
                .unwrap_or_else(|_| fail("number")),
            plurals: PluralRules::try_new_cardinal((&locale).into())
                .unwrap_or_else(|_| fail("plural")),
            day_month: DateFormatter::try_new((&locale).into(), MD::medium())
                .unwrap_or_else(|_| fail("date")),
            full: DateFormatter::try_new((&locale).into(), YMD::medium())
                .unwrap_or_else(|_| fail("date")),
            with_weekday: DateFormatter::try_new((&locale).into(), YMDE::medium())
                .unwrap_or_else(|_| fail("date")),
            month_year: DateFormatter::try_new((&locale).into(), YM::medium())
                .unwrap_or_else(|_| fail("date")),
            weekday: DateFormatter::try_new((&locale).into(), fieldsets::E::long())
                .unwrap_or_else(|_| fail("weekday")),
            weekday_short: DateFormatter::try_new((&locale).into(), fieldsets::E::medium())
                .unwrap_or_else(|_| fail("weekday")),
        }
    }

    /// A whole number (rounded half away from zero) with digit grouping.
    pub fn count(&self, v: f64) -> String {
        self.decimal
            .format(&Decimal::from(v.round() as i64))
            .to_string()
    }

    /// `v` rounded to `digits` decimals; trailing zeros dropped unless `fixed`.
    pub fn decimal(&self, v: f64, digits: i16, fixed: bool) -> String {
        let scale = 10f64.powi(i32::from(digits));
        let mut d = Decimal::from((v * scale).round() as i64);
        // The sign stays on the outer `Decimal`; the digits are shifted and trimmed in place.
        d.absolute.multiply_pow10(-digits);
        if !fixed {
            d.absolute.trim_end();
        }
        self.decimal.format(&d).to_string()
    }

    /// The CLDR plural category (`one`, `other`, …) of the whole number nearest to `n`.
    pub fn plural_category(&self, n: f64) -> &'static str {
        match self
            .plurals
            .category_for(n.round().abs().min(u64::MAX as f64) as u64)
        {
            PluralCategory::Zero => "zero",
            PluralCategory::One => "one",
            PluralCategory::Two => "two",
            PluralCategory::Few => "few",
            PluralCategory::Many => "many",
            PluralCategory::Other => "other",
        }
    }

    pub fn date(&self, style: DateStyle, d: jiff::civil::Date) -> String {
        let Ok(date) = Date::try_new_gregorian(i32::from(d.year()), d.month() as u8, d.day() as u8)
        else {
            return d.to_string();
        };
        match style {
            DateStyle::DayMonth => self.day_month.format(&date).to_string(),
            DateStyle::Full => self.full.format(&date).to_string(),
            DateStyle::WithWeekday => self.with_weekday.format(&date).to_string(),
            DateStyle::MonthYear => self.month_year.format(&date).to_string(),
            DateStyle::Weekday => self.weekday.format(&date).to_string(),
            DateStyle::WeekdayShort => self.weekday_short.format(&date).to_string(),
        }
    }
}
