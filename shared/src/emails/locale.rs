//! The customer's language: which templates to use (Stripe's `preferred_locales`, the first
//! that has templates) and how dates and amounts read in it. English and French are built in;
//! a team's own templates may add any language, whose dates and amounts then read as in
//! English unless its language is one of these.

use super::money::Money;

/// The language every kind has templates in.
pub const DEFAULT_LOCALE: &str = "en";

/// A locale tag as templates are named by it: lower case, `-` between parts (`fr`, `fr-ca`).
pub fn normalise(tag: &str) -> Option<String> {
    let tag = tag.trim().replace('_', "-").to_ascii_lowercase();
    let ok = !tag.is_empty()
        && tag.len() <= 16
        && tag
            .split('-')
            .all(|part| !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric()));
    ok.then_some(tag)
}

/// The tags to try for one preferred locale, most specific first: `fr-CA` → `fr-ca`, `fr`.
pub fn fallbacks(tag: &str) -> Vec<String> {
    let Some(tag) = normalise(tag) else {
        return Vec::new();
    };
    let mut out = vec![tag.clone()];
    if let Some((language, _)) = tag.split_once('-') {
        out.push(language.to_owned());
    }
    out
}

/// How one language writes dates and amounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Formats {
    months: [&'static str; 12],
    decimal: char,
    /// Between groups of three digits.
    group: &'static str,
    /// How the first day of a month is written (`1er` in French).
    first: &'static str,
    /// The symbol before the amount (`€12.00`) or after it (`12,00 €`).
    symbol_first: bool,
}

const ENGLISH: Formats = Formats {
    months: [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ],
    decimal: '.',
    group: ",",
    first: "1",
    symbol_first: true,
};

const FRENCH: Formats = Formats {
    months: [
        "janvier",
        "février",
        "mars",
        "avril",
        "mai",
        "juin",
        "juillet",
        "août",
        "septembre",
        "octobre",
        "novembre",
        "décembre",
    ],
    decimal: ',',
    // A narrow no-break space, as French typography groups digits.
    group: "\u{202f}",
    first: "1er",
    symbol_first: false,
};

impl Formats {
    /// The formats of a locale tag's language (English for a language not built in).
    pub fn of(tag: &str) -> Formats {
        match tag.split('-').next().unwrap_or_default() {
            "fr" => FRENCH,
            _ => ENGLISH,
        }
    }

    /// A Unix time as the UTC calendar day: `4 January 2025`, `4 janvier 2025`.
    pub fn date(&self, unix: i64) -> String {
        let (year, month, day) = civil(unix);
        let month = self.months[usize::try_from(month - 1).unwrap_or(0).min(11)];
        if day == 1 {
            format!("{} {month} {year}", self.first)
        } else {
            format!("{day} {month} {year}")
        }
    }

    /// An amount with its currency: `€1,234.50`, `1 234,50 €`, `¥1,500`, `BHD 1.234`.
    pub fn money(&self, money: &Money) -> String {
        let decimals = money.currency.decimals();
        let magnitude = money.minor.unsigned_abs();
        let unit = 10u64.pow(decimals);
        let (whole, fraction) = (magnitude / unit, magnitude % unit);
        let mut number = group(whole, self.group);
        if decimals > 0 {
            number.push(self.decimal);
            number.push_str(&format!("{fraction:0width$}", width = decimals as usize));
        }
        let sign = if money.minor < 0 { "-" } else { "" };
        let code = money.currency.code();
        match (symbol(code), self.symbol_first) {
            (Some(s), true) => format!("{sign}{s}{number}"),
            (Some(s), false) => format!("{sign}{number}\u{a0}{s}"),
            (None, true) => format!("{sign}{code}\u{a0}{number}"),
            (None, false) => format!("{sign}{number}\u{a0}{code}"),
        }
    }
}

/// The symbols that name one currency unambiguously; every other currency shows its code.
fn symbol(code: &str) -> Option<&'static str> {
    Some(match code {
        "EUR" => "€",
        "GBP" => "£",
        "JPY" => "¥",
        "USD" => "US$",
        _ => return None,
    })
}

fn group(mut n: u64, separator: &str) -> String {
    let mut parts = Vec::new();
    loop {
        if n < 1000 {
            parts.push(n.to_string());
            break;
        }
        parts.push(format!("{:03}", n % 1000));
        n /= 1000;
    }
    parts.reverse();
    parts.join(separator)
}

/// Year, month (1–12) and day of a Unix time in UTC (proleptic Gregorian, 400-year eras).
pub(crate) fn civil(unix: i64) -> (i64, i64, i64) {
    let days = unix.div_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emails::money::Currency;

    fn money(minor: i64, code: &str) -> Money {
        Money::new(minor, Currency::parse(code).expect("code"))
    }

    #[test]
    fn dates_read_in_each_language() {
        let t = 1_735_948_800; // 2025-01-04
        assert_eq!(Formats::of("en").date(t), "4 January 2025");
        assert_eq!(Formats::of("fr-ca").date(t), "4 janvier 2025");
        assert_eq!(Formats::of("de").date(t), "4 January 2025");
        assert_eq!(Formats::of("en").date(951_782_400), "29 February 2000");
        assert_eq!(Formats::of("fr").date(1_764_590_400), "1er décembre 2025");
        assert_eq!(Formats::of("en").date(1_764_590_400), "1 December 2025");
    }

    #[test]
    fn amounts_read_in_each_language_and_currency_class() {
        let en = Formats::of("en");
        let fr = Formats::of("fr");
        assert_eq!(en.money(&money(123_450, "eur")), "€1,234.50");
        assert_eq!(fr.money(&money(123_450, "eur")), "1\u{202f}234,50\u{a0}€");
        assert_eq!(en.money(&money(1_500, "jpy")), "¥1,500");
        assert_eq!(fr.money(&money(1_500, "jpy")), "1\u{202f}500\u{a0}¥");
        assert_eq!(en.money(&money(1_234, "bhd")), "BHD\u{a0}1.234");
        assert_eq!(fr.money(&money(1_234, "bhd")), "1,234\u{a0}BHD");
        assert_eq!(en.money(&money(-500, "usd")), "-US$5.00");
        assert_eq!(
            en.money(&money(i64::MIN, "usd")),
            "-US$92,233,720,368,547,758.08"
        );
    }

    #[test]
    fn a_preferred_locale_falls_back_to_its_language() {
        assert_eq!(fallbacks("fr-CA"), ["fr-ca", "fr"]);
        assert_eq!(fallbacks(" EN "), ["en"]);
        assert!(fallbacks("../etc").is_empty());
        assert!(fallbacks("").is_empty());
    }
}
