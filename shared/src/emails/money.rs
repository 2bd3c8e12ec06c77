//! Amounts for people: minor units (as Stripe sends them) shown in the currency's major unit.
//!
//! One format, chosen to be unambiguous in every locale: an optional `-`, the digits without
//! any grouping separator, a `.` before exactly as many decimals as the currency has, a space,
//! the ISO 4217 code in upper case: `12.34 EUR`, `1200 JPY`, `1.234 BHD`, `-0.05 USD`. No
//! thousands separator because `1,200` reads as 1.2 in half of Europe; no symbol because `$`
//! names a dozen currencies.
//!
//! How many decimals an amount has is Stripe's rule, not ISO's
//! (<https://docs.stripe.com/currencies#zero-decimal> and `#three-decimal`): the zero-decimal
//! list below is sent as whole units, the three-decimal list in thousandths, every other
//! currency in hundredths — including ISK, HUF and TWD, which Stripe keeps at two decimals in
//! the API for backwards compatibility (its "special cases"; for ISK: "an ISK amount of `100`
//! will continue to represent 1 króna",
//! <https://support.stripe.com/questions/deprecation-of-fractional-isk-charges-and-refunds>).

use serde::{Deserialize, Serialize};
use std::fmt;

/// Stripe's zero-decimal currencies (docs.stripe.com/currencies#zero-decimal).
const ZERO_DECIMAL: [&str; 16] = [
    "BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND", "VUV",
    "XAF", "XOF", "XPF",
];
/// Stripe's three-decimal currencies (docs.stripe.com/currencies#three-decimal).
const THREE_DECIMAL: [&str; 5] = ["BHD", "JOD", "KWD", "OMR", "TND"];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a currency is three ASCII letters (ISO 4217)")]
pub struct CurrencyError;

/// An ISO 4217 code, kept upper-case (Stripe sends it lower-case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency([u8; 3]);

impl Currency {
    pub fn parse(code: &str) -> Result<Self, CurrencyError> {
        match code.trim().as_bytes() {
            &[a, b, c] if [a, b, c].iter().all(u8::is_ascii_alphabetic) => Ok(Self([
                a.to_ascii_uppercase(),
                b.to_ascii_uppercase(),
                c.to_ascii_uppercase(),
            ])),
            _ => Err(CurrencyError),
        }
    }

    pub fn code(&self) -> &str {
        // Three ASCII letters by construction.
        std::str::from_utf8(&self.0).unwrap_or("???")
    }

    /// How many decimals Stripe's minor unit has for this currency (0, 2 or 3).
    pub fn decimals(&self) -> u32 {
        if ZERO_DECIMAL.contains(&self.code()) {
            0
        } else if THREE_DECIMAL.contains(&self.code()) {
            3
        } else {
            2
        }
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl TryFrom<String> for Currency {
    type Error = CurrencyError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Currency> for String {
    fn from(c: Currency) -> Self {
        c.code().to_owned()
    }
}

/// An amount in minor units of its currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Money {
    pub minor: i64,
    pub currency: Currency,
}

impl Money {
    pub fn new(minor: i64, currency: Currency) -> Self {
        Self { minor, currency }
    }
}

impl fmt::Display for Money {
    /// The module's format; total over every `i64` (the magnitude is taken unsigned, so
    /// `i64::MIN` does not overflow).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.minor < 0 { "-" } else { "" };
        let magnitude = self.minor.unsigned_abs();
        let code = self.currency.code();
        match self.currency.decimals() {
            0 => write!(f, "{sign}{magnitude} {code}"),
            d => {
                let unit = 10u64.pow(d);
                let (whole, fraction) = (magnitude / unit, magnitude % unit);
                write!(
                    f,
                    "{sign}{whole}.{fraction:0width$} {code}",
                    width = d as usize
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(minor: i64, code: &str) -> String {
        Money::new(minor, Currency::parse(code).expect("code")).to_string()
    }

    #[test]
    fn two_decimal_currencies_show_hundredths() {
        assert_eq!(show(1234, "eur"), "12.34 EUR");
        assert_eq!(show(0, "usd"), "0.00 USD");
        assert_eq!(show(1, "usd"), "0.01 USD");
        assert_eq!(show(-5, "usd"), "-0.05 USD");
        assert_eq!(show(-1234, "gbp"), "-12.34 GBP");
        assert_eq!(show(100_000_000, "usd"), "1000000.00 USD");
        // Stripe's special cases stay two-decimal in the API: 500 is 5 ISK.
        assert_eq!(show(500, "isk"), "5.00 ISK");
        assert_eq!(show(1050, "huf"), "10.50 HUF");
    }

    #[test]
    fn zero_decimal_currencies_show_whole_units() {
        for code in ZERO_DECIMAL {
            assert_eq!(show(1200, code), format!("1200 {code}"));
        }
        assert_eq!(show(0, "jpy"), "0 JPY");
        assert_eq!(show(1, "krw"), "1 KRW");
        assert_eq!(show(-5, "jpy"), "-5 JPY");
    }

    #[test]
    fn three_decimal_currencies_show_thousandths() {
        for code in THREE_DECIMAL {
            assert_eq!(show(1234, code), format!("1.234 {code}"));
        }
        assert_eq!(show(0, "bhd"), "0.000 BHD");
        assert_eq!(show(1, "kwd"), "0.001 KWD");
        assert_eq!(show(-5, "bhd"), "-0.005 BHD");
        assert_eq!(show(12_340, "bhd"), "12.340 BHD");
    }

    #[test]
    fn the_extremes_of_i64_format_without_panicking() {
        assert_eq!(show(i64::MAX, "usd"), "92233720368547758.07 USD");
        assert_eq!(show(i64::MIN, "usd"), "-92233720368547758.08 USD");
        assert_eq!(show(i64::MIN, "jpy"), "-9223372036854775808 JPY");
        assert_eq!(show(i64::MAX, "bhd"), "9223372036854775.807 BHD");
        assert_eq!(show(i64::MIN, "bhd"), "-9223372036854775.808 BHD");
    }

    #[test]
    fn a_currency_is_three_letters_kept_upper_case() {
        assert_eq!(
            Currency::parse(" usd ").map(|c| c.to_string()),
            Ok("USD".into())
        );
        for bad in ["", "us", "usdx", "u$d", "12€", "ÉUR"] {
            assert_eq!(Currency::parse(bad), Err(CurrencyError), "{bad}");
        }
        let json = serde_json::to_string(&Money::new(5, Currency::parse("bhd").expect("bhd")));
        assert_eq!(
            json.as_deref().ok(),
            Some(r#"{"minor":5,"currency":"BHD"}"#)
        );
        assert!(serde_json::from_str::<Currency>(r#""toolong""#).is_err());
    }
}
