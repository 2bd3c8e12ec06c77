//! The five `PAYPAL-*` transmission headers of a delivery, read and checked, and the string
//! PayPal signs: `transmission_id|transmission_time|webhook_id|crc32(body)`.

use super::PaypalRejection;
use base64::Engine;
use rustls::pki_types::SignatureVerificationAlgorithm;

pub const TRANSMISSION_ID: &str = "PAYPAL-TRANSMISSION-ID";
pub const TRANSMISSION_TIME: &str = "PAYPAL-TRANSMISSION-TIME";
pub const TRANSMISSION_SIG: &str = "PAYPAL-TRANSMISSION-SIG";
pub const CERT_URL: &str = "PAYPAL-CERT-URL";
pub const AUTH_ALGO: &str = "PAYPAL-AUTH-ALGO";

/// Longest header value read. PayPal's API schema caps these fields at 50–500 characters;
/// a 4096-bit RSA signature is 684 base64 characters.
const MAX_HEADER_LEN: usize = 2048;

/// Longest transmission id accepted: PayPal's schema says 50 characters; it becomes a DynamoDB
/// key (`PAYPAL_TX#{id}`), so it is kept well under the key's 2,048 bytes.
const MAX_TRANSMISSION_ID_LEN: usize = 255;

/// An RSA PKCS#1 signature is as long as the key's modulus: 2048 to 8192 bits (the range the
/// verifier accepts). Anything else cannot verify, so it is refused before any fetch.
const RSA_SIGNATURE_BYTES: std::ops::RangeInclusive<usize> = 256..=1024;

/// The algorithms `PAYPAL-AUTH-ALGO` may name: RSA PKCS#1 v1.5 with SHA-256 or stronger.
/// `SHA1withRSA` (and anything else) is refused before a certificate is fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthAlgo {
    Sha256WithRsa,
    Sha384WithRsa,
    Sha512WithRsa,
}

impl AuthAlgo {
    fn parse(value: &str) -> Result<Self, PaypalRejection> {
        // Java's names, as PayPal sends them; case is not significant in them.
        let is = |name: &str| value.eq_ignore_ascii_case(name);
        if is("SHA256withRSA") {
            Ok(Self::Sha256WithRsa)
        } else if is("SHA384withRSA") {
            Ok(Self::Sha384WithRsa)
        } else if is("SHA512withRSA") {
            Ok(Self::Sha512WithRsa)
        } else if is("SHA1withRSA") || is("MD5withRSA") {
            Err(PaypalRejection::WeakAlgorithm)
        } else {
            Err(PaypalRejection::UnknownAlgorithm)
        }
    }

    /// The header value, for the API mode's request.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sha256WithRsa => "SHA256withRSA",
            Self::Sha384WithRsa => "SHA384withRSA",
            Self::Sha512WithRsa => "SHA512withRSA",
        }
    }

    /// webpki's verifier for it (keys of 2048 to 8192 bits).
    pub fn webpki(self) -> &'static dyn SignatureVerificationAlgorithm {
        use webpki::aws_lc_rs as alg;
        match self {
            Self::Sha256WithRsa => alg::RSA_PKCS1_2048_8192_SHA256,
            Self::Sha384WithRsa => alg::RSA_PKCS1_2048_8192_SHA384,
            Self::Sha512WithRsa => alg::RSA_PKCS1_2048_8192_SHA512,
        }
    }
}

/// A delivery's transmission headers, checked for form (not yet for authenticity).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmission {
    pub id: String,
    /// Exactly as sent: it is part of the signed string.
    pub time: String,
    /// `time` in Unix seconds.
    pub time_unix: i64,
    /// As sent (base64), for the API mode.
    pub sig_base64: String,
    pub sig: Vec<u8>,
    pub cert_url: String,
    pub algo: AuthAlgo,
}

/// One header's value: present once, visible ASCII, not too long.
fn header<'h>(
    headers: &'h http::HeaderMap,
    name: &'static str,
) -> Result<&'h str, PaypalRejection> {
    let mut values = headers.get_all(name).iter();
    let value = values.next().ok_or(PaypalRejection::MissingHeader(name))?;
    let malformed = PaypalRejection::MalformedHeader(name);
    if values.next().is_some() || value.len() > MAX_HEADER_LEN {
        return Err(malformed);
    }
    let value = value.to_str().map_err(|_| malformed.clone())?.trim();
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(malformed);
    }
    Ok(value)
}

impl Transmission {
    /// Reads the five headers. The algorithm is judged here, so a weak or unknown one is
    /// refused before anything is fetched.
    pub fn from_headers(headers: &http::HeaderMap) -> Result<Self, PaypalRejection> {
        let id = header(headers, TRANSMISSION_ID)?;
        // `|` separates the signed fields: an id holding one could shift them.
        if id.contains('|') || id.len() > MAX_TRANSMISSION_ID_LEN {
            return Err(PaypalRejection::MalformedHeader(TRANSMISSION_ID));
        }
        let time = header(headers, TRANSMISSION_TIME)?;
        let time_unix =
            parse_rfc3339(time).ok_or(PaypalRejection::MalformedHeader(TRANSMISSION_TIME))?;
        let sig_base64 = header(headers, TRANSMISSION_SIG)?;
        let sig = base64::engine::general_purpose::STANDARD
            .decode(sig_base64)
            .ok()
            .filter(|sig| RSA_SIGNATURE_BYTES.contains(&sig.len()))
            .ok_or(PaypalRejection::MalformedHeader(TRANSMISSION_SIG))?;
        let cert_url = header(headers, CERT_URL)?;
        let algo = AuthAlgo::parse(header(headers, AUTH_ALGO)?)?;
        Ok(Self {
            id: id.to_owned(),
            time: time.to_owned(),
            time_unix,
            sig_base64: sig_base64.to_owned(),
            sig,
            cert_url: cert_url.to_owned(),
            algo,
        })
    }

    /// Refuses a transmission more than `tolerance_secs` away from `now` (past or future).
    pub fn check_age(&self, now: i64, tolerance_secs: u64) -> Result<(), PaypalRejection> {
        let age = i128::from(now) - i128::from(self.time_unix);
        if age.unsigned_abs() > u128::from(tolerance_secs) {
            return Err(PaypalRejection::OutsideTolerance {
                age_secs: now.saturating_sub(self.time_unix),
            });
        }
        Ok(())
    }

    /// The string PayPal signs, with our webhook id and the CRC32 of the exact raw body.
    pub fn signed_string(&self, webhook_id: &str, body: &[u8]) -> String {
        format!(
            "{}|{}|{}|{}",
            self.id,
            self.time,
            webhook_id,
            crc32fast::hash(body)
        )
    }
}

/// Four bytes that, appended to `prefix`, give the CRC-32 `target`: how a forger makes a body
/// match a captured signature (tests and fuzzing). CRC-32 is affine over GF(2) for a fixed
/// length, so the suffix solves 32 linear equations.
#[cfg(any(test, feature = "testing"))]
pub fn crc32_suffix(prefix: &[u8], target: u32) -> [u8; 4] {
    let crc = |x: u32| {
        let mut h = crc32fast::Hasher::new();
        h.update(prefix);
        h.update(&x.to_le_bytes());
        h.finalize()
    };
    let base = crc(0);
    // basis[b]: (effect on the CRC with leading bit b, suffix bits that produce it)
    let mut basis: [Option<(u32, u32)>; 32] = [None; 32];
    for i in 0..32 {
        let (mut effect, mut bits) = (crc(1 << i) ^ base, 1u32 << i);
        for b in (0..32).rev() {
            if effect >> b & 1 == 0 {
                continue;
            }
            match basis[b] {
                Some((e, c)) => (effect, bits) = (effect ^ e, bits ^ c),
                None => {
                    basis[b] = Some((effect, bits));
                    break;
                }
            }
        }
    }
    let (mut want, mut suffix) = (target ^ base, 0u32);
    for b in (0..32).rev() {
        if want >> b & 1 == 1 {
            let (e, c) = basis[b].expect("four free bytes reach every CRC-32");
            (want, suffix) = (want ^ e, suffix ^ c);
        }
    }
    suffix.to_le_bytes()
}

/// An RFC 3339 date-time (`2016-09-21T22:00:46Z`, fractions and `±hh:mm` offsets allowed) in
/// Unix seconds, fractions dropped; `None` when it is not one.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let digits = |from: usize, len: usize| -> Option<i64> {
        let part = b.get(from..from + len)?;
        part.iter()
            .all(u8::is_ascii_digit)
            .then(|| part.iter().fold(0i64, |n, d| n * 10 + i64::from(d - b'0')))
    };
    let sep = |at: usize, allowed: &[u8]| b.get(at).is_some_and(|c| allowed.contains(c));
    if !(sep(4, b"-") && sep(7, b"-") && sep(10, b"Tt") && sep(13, b":") && sep(16, b":")) {
        return None;
    }
    let (year, month, day) = (digits(0, 4)?, digits(5, 2)?, digits(8, 2)?);
    let (hour, minute, second) = (digits(11, 2)?, digits(14, 2)?, digits(17, 2)?);
    let mut rest = 19;
    if b.get(rest) == Some(&b'.') {
        rest += 1;
        let start = rest;
        while b.get(rest).is_some_and(u8::is_ascii_digit) {
            rest += 1;
        }
        if rest == start {
            return None;
        }
    }
    let offset = match b.get(rest..)? {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let (h, m) = (digits(rest + 1, 2)?, digits(rest + 4, 2)?);
            if h > 23 || m > 59 {
                return None;
            }
            let magnitude = h * 3600 + m * 60;
            if *sign == b'+' {
                magnitude
            } else {
                -magnitude
            }
        }
        _ => return None,
    };
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        _ => return None,
    };
    if day < 1 || day > days_in_month || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_times_read_as_unix_seconds() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("2015-05-18T15:45:13Z"), Some(1_431_963_913));
        assert_eq!(parse_rfc3339("2016-09-21T22:00:46Z"), Some(1_474_495_246));
        assert_eq!(
            parse_rfc3339("2016-09-21T22:00:46.123Z"),
            Some(1_474_495_246)
        );
        assert_eq!(
            parse_rfc3339("2016-09-22T00:00:46+02:00"),
            Some(1_474_495_246)
        );
        assert_eq!(
            parse_rfc3339("2024-02-29T00:00:00-00:30"),
            Some(1_709_166_600)
        );
        for bad in [
            "",
            "2016-09-21",
            "2016-09-21 22:00:46Z",
            "2016-09-21T22:00:46",
            "2016-02-30T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2016-13-01T00:00:00Z",
            "2016-09-21T24:00:00Z",
            "2016-09-21T22:00:46.Z",
            "2016-09-21T22:00:46+2:00",
            "2016-09-21T22:00:46Zjunk",
            "+016-09-21T22:00:46Z",
            "2016-09-21T22:00:46+24:00",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn algorithms_sha256_and_stronger_only() {
        assert_eq!(
            AuthAlgo::parse("SHA256withRSA"),
            Ok(AuthAlgo::Sha256WithRsa)
        );
        assert_eq!(
            AuthAlgo::parse("sha512withrsa"),
            Ok(AuthAlgo::Sha512WithRsa)
        );
        assert_eq!(
            AuthAlgo::parse("SHA384withRSA"),
            Ok(AuthAlgo::Sha384WithRsa)
        );
        assert_eq!(
            AuthAlgo::parse("SHA1withRSA"),
            Err(PaypalRejection::WeakAlgorithm)
        );
        for unknown in ["SHA256withECDSA", "RSA", "none", "SHA256withRSA/PSS"] {
            assert_eq!(
                AuthAlgo::parse(unknown),
                Err(PaypalRejection::UnknownAlgorithm),
                "{unknown}"
            );
        }
    }

    #[test]
    fn the_signed_string_uses_the_crc32_of_the_raw_body_in_decimal() {
        let t = Transmission {
            id: "d938e770-8046-11e6-8103-6b62a8a99ac4".into(),
            time: "2016-09-21T22:00:46Z".into(),
            time_unix: 1_474_495_246,
            sig_base64: String::new(),
            sig: Vec::new(),
            cert_url: String::new(),
            algo: AuthAlgo::Sha256WithRsa,
        };
        // CRC-32 (IEEE) of "123456789" is the standard check value 0xCBF43926.
        assert_eq!(
            t.signed_string("WH1", b"123456789"),
            "d938e770-8046-11e6-8103-6b62a8a99ac4|2016-09-21T22:00:46Z|WH1|3421780262"
        );
    }
}
