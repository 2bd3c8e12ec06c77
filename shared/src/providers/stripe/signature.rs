//! Stripe webhook signatures: accept a delivery only if some `v1` in `Stripe-Signature` equals (constant-time) HMAC-SHA256(endpoint secret, `"{t}.{raw body}"`) for some configured secret and `|now - t| <= tolerance`.
//!
//! Stripe's scheme, as implemented here:
//!
//! * The header is a comma-separated list of `key=value` pairs, e.g.
//!   `t=1746757390,v1=bc88…9f35,v0=537d…a2b0`. `t` is the Unix time at which
//!   Stripe signed; every `v1` is a lowercase hex HMAC-SHA256. During a secret
//!   rotation Stripe sends one `v1` per active secret. `v0` (a fake scheme
//!   Stripe adds to test-mode deliveries) and any scheme we do not know are
//!   ignored. So is any item that is not `key=value` (a bare word, an empty
//!   item between two commas): Stripe's own libraries (stripe-node's
//!   `parseHeader`, stripe-python's `WebhookSignature`) split on `,` and `=`
//!   and look only at the items keyed `t` and `v1`, so a header they accept
//!   must not be rejected here.
//! * The signed payload is the decimal timestamp, a `.`, and the exact raw
//!   request body bytes. The HMAC key is the UTF-8 bytes of the whole endpoint
//!   secret string as Stripe shows it, `whsec_` prefix included.
//!
//! Why not async-stripe's `Webhook::construct_event`: its parser keeps only
//! the *last* `v1` in the header, takes a single secret, and wants the body as
//! `&str`. During a rotation that rejects valid deliveries (the `v1` for our
//! secret may not be the last one) and it cannot accept the old and the new
//! secret at once, so this module implements the check itself.
//!
//! Hardening decisions (each covered by a unit test):
//!
//! * The header is at most 8 KiB; longer is `Malformed`.
//! * Only the first 16 `v1` entries (counted in header
//!   order, well-formed or not) are compared; later ones are ignored. Work is
//!   therefore bounded by `16 × secrets` constant-time 32-byte comparisons plus
//!   one HMAC per secret.
//! * A `v1` value must be exactly 64 *lowercase* hex digits; anything else
//!   (including upper-case hex, which Stripe never sends and which Stripe's own
//!   libraries do not accept either, since they compare hex strings) is skipped
//!   as a non-matching candidate, not treated as fatal.
//! * `t` must be plain ASCII decimal digits that fit in an `i64` (no sign, no
//!   spaces inside); it appears exactly once. Keys and values are trimmed of
//!   surrounding whitespace. A bare `t` or `v1` (no `=`) is ignored like any
//!   other bare item (stripe-python fails on it instead; ignoring it cannot
//!   make a delivery verify that would not verify without it).
//! * Empty secrets are never used as keys (anyone could forge an HMAC under an
//!   empty key); a secret list containing only empty secrets is `NoSecrets`.
//! * The match result is accumulated over every (`v1`, secret) pair with
//!   [`subtle::Choice`]; there is no early exit that would reveal which pair
//!   matched or how many bytes of a candidate were right.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::{Choice, ConstantTimeEq};

type HmacSha256 = Hmac<Sha256>;

/// Longest `Stripe-Signature` header we parse, in bytes. A real header with a
/// handful of signatures is a few hundred bytes.
const MAX_HEADER_LEN: usize = 8 * 1024;

/// How many `v1` entries, in header order, are compared at most.
const MAX_V1_SIGNATURES: usize = 16;

/// Length in bytes of an HMAC-SHA256 tag.
const MAC_LEN: usize = 32;

pub use crate::secret::WebhookSecret;

/// Why a delivery's signature was rejected. Messages never include the
/// header, the body or a secret.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum SignatureError {
    #[error("missing Stripe-Signature header")]
    MissingHeader,
    #[error("malformed Stripe-Signature header: {0}")]
    Malformed(&'static str),
    #[error("Stripe-Signature header has no v1 signature")]
    NoV1,
    /// `age_secs` is `now - t`: positive when the signature is in the past,
    /// negative when it claims to be from the future (saturating).
    #[error("signature timestamp {age_secs}s away from now exceeds tolerance")]
    OutsideTolerance { age_secs: i64 },
    #[error("no v1 signature matches any endpoint secret")]
    NoMatch,
    #[error("no endpoint secret configured")]
    NoSecrets,
}

/// Verify `header` (the raw Stripe-Signature value) over the exact raw `body` bytes.
/// Accept when ANY v1 matches ANY secret; v0 and unknown schemes ignored; tolerance in seconds
/// applies both to the past and to the future (`|now - t| > tolerance` => `OutsideTolerance`).
/// Returns the signed timestamp t on success.
///
/// # Errors
///
/// Checks run in this order, and the first failure is returned:
/// header absent → [`SignatureError::MissingHeader`]; unparsable (too long,
/// `t` missing, repeated or not an integer; items that are not `key=value`
/// and unknown keys are ignored) → [`SignatureError::Malformed`]; no `v1` pair at all →
/// [`SignatureError::NoV1`]; no usable (non-empty) secret →
/// [`SignatureError::NoSecrets`]; `|now_unix - t| > tolerance_secs` →
/// [`SignatureError::OutsideTolerance`]; otherwise the constant-time
/// comparison, [`SignatureError::NoMatch`] when nothing matches (this includes
/// a header whose `v1` values are all ill-formed hex).
///
/// Async-stripe's own verifier keeps only the last `v1` of the header and takes
/// one secret, which breaks during secret rotation; hence this implementation.
pub fn verify(
    header: Option<&str>,
    body: &[u8],
    secrets: &[WebhookSecret],
    now_unix: i64,
    tolerance_secs: u64,
) -> Result<i64, SignatureError> {
    let header = header.ok_or(SignatureError::MissingHeader)?;
    let parsed = ParsedHeader::parse(header)?;

    if !secrets.iter().any(is_usable) {
        return Err(SignatureError::NoSecrets);
    }

    let age = i128::from(now_unix) - i128::from(parsed.t);
    if age.unsigned_abs() > u128::from(tolerance_secs) {
        return Err(SignatureError::OutsideTolerance {
            age_secs: now_unix.saturating_sub(parsed.t),
        });
    }

    let candidates = &parsed.v1[..parsed.v1_len];
    let mut matched = Choice::from(0u8);
    for secret in secrets.iter().filter(|s| is_usable(s)) {
        let Some(expected) = mac(secret, parsed.t, body) else {
            continue;
        };
        for candidate in candidates {
            matched |= expected[..].ct_eq(&candidate[..]);
        }
    }

    if bool::from(matched) {
        Ok(parsed.t)
    } else {
        Err(SignatureError::NoMatch)
    }
}

/// Produce a header value `t={t},v1={hex}` for each secret in order (one v1 per secret, like Stripe does during rotation): used by tests and the local `send` command.
///
/// With two secrets the result is `t={t},v1={hex1},v1={hex2}`; with none it is
/// just `t={t}` (which [`verify`] rejects with [`SignatureError::NoV1`]).
/// Every secret is used as given, including an empty one (which [`verify`]
/// will never accept).
#[must_use]
pub fn sign(body: &[u8], secrets: &[WebhookSecret], t: i64) -> String {
    let mut header = format!("t={t}");
    for secret in secrets {
        if let Some(tag) = mac(secret, t, body) {
            header.push_str(",v1=");
            header.push_str(&hex::encode(tag));
        }
    }
    header
}

/// A secret we are willing to key an HMAC with.
fn is_usable(secret: &WebhookSecret) -> bool {
    !secret.expose().is_empty()
}

/// HMAC-SHA256 over `"{t}.{body}"` keyed with the secret's UTF-8 bytes.
/// `None` only if the MAC rejects the key length, which HMAC never does.
fn mac(secret: &WebhookSecret, t: i64, body: &[u8]) -> Option<[u8; MAC_LEN]> {
    let mut mac = <HmacSha256 as Mac>::new_from_slice(secret.expose().as_bytes()).ok()?;
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Some(mac.finalize().into_bytes().into())
}

/// The parts of a `Stripe-Signature` header that verification uses.
struct ParsedHeader {
    t: i64,
    /// Decoded well-formed `v1` tags among the first `MAX_V1_SIGNATURES`
    /// `v1` entries; only `v1[..v1_len]` is meaningful.
    v1: [[u8; MAC_LEN]; MAX_V1_SIGNATURES],
    v1_len: usize,
}

impl ParsedHeader {
    fn parse(header: &str) -> Result<Self, SignatureError> {
        if header.len() > MAX_HEADER_LEN {
            return Err(SignatureError::Malformed("header longer than 8 KiB"));
        }

        let mut t = None;
        let mut v1 = [[0u8; MAC_LEN]; MAX_V1_SIGNATURES];
        let mut v1_len = 0;
        let mut v1_seen = 0usize;

        for item in header.split(',') {
            // Not `key=value` (a bare word, an empty item): ignored, as Stripe's libraries do.
            let Some((key, value)) = item.split_once('=') else {
                continue;
            };
            match key.trim() {
                "t" => {
                    if t.is_some() {
                        return Err(SignatureError::Malformed("more than one t"));
                    }
                    t = Some(parse_timestamp(value.trim())?);
                }
                "v1" => {
                    if v1_seen < MAX_V1_SIGNATURES {
                        if let (Some(tag), Some(slot)) =
                            (decode_v1(value.trim()), v1.get_mut(v1_len))
                        {
                            *slot = tag;
                            v1_len += 1;
                        }
                    }
                    v1_seen = v1_seen.saturating_add(1);
                }
                // `v0`, any future scheme, an empty key: not ours to judge.
                _ => {}
            }
        }

        let t = t.ok_or(SignatureError::Malformed("missing t"))?;
        if v1_seen == 0 {
            return Err(SignatureError::NoV1);
        }
        Ok(Self { t, v1, v1_len })
    }
}

/// `t`: one or more ASCII digits that fit in an `i64`.
fn parse_timestamp(value: &str) -> Result<i64, SignatureError> {
    const NOT_AN_INTEGER: SignatureError = SignatureError::Malformed("t is not an integer");
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(NOT_AN_INTEGER);
    }
    value.parse().map_err(|_| NOT_AN_INTEGER)
}

/// A `v1` value: exactly 64 lowercase hex digits, else `None` (skipped).
fn decode_v1(value: &str) -> Option<[u8; MAC_LEN]> {
    let well_formed = value.len() == 2 * MAC_LEN
        && value
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !well_formed {
        return None;
    }
    let mut tag = [0u8; MAC_LEN];
    hex::decode_to_slice(value, &mut tag).ok()?;
    Some(tag)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: i64 = 1_700_000_000;
    const TOLERANCE: u64 = 300;
    const BODY: &[u8] = br#"{"id":"evt_test","object":"event","type":"invoice.paid"}"#;

    /// The real signed delivery, byte for byte (no trailing newline).
    const REAL_BODY: &[u8] = include_bytes!(
        "../../../tests/fixtures/stripe/2025-03-31.basil/invoice.payment_succeeded__rust-indaggo-SIGNED.json"
    );
    const REAL_VECTORS: &str = include_str!("../../../tests/fixtures/stripe/SIGNED_VECTORS.json");
    const REAL_BODY_FILE: &str =
        "2025-03-31.basil/invoice.payment_succeeded__rust-indaggo-SIGNED.json";
    const REAL_BODY_SHA256: &str =
        "a9ab6ad32102970022f487b08ebf8c807ca758b78a887dba1fd5e0ccefa89a30";

    fn secret(s: &str) -> WebhookSecret {
        WebhookSecret::new(s)
    }

    fn good() -> WebhookSecret {
        secret("whsec_good_secret_for_unit_tests")
    }

    fn other() -> WebhookSecret {
        secret("whsec_some_other_endpoint_secret")
    }

    /// The lowercase hex `v1` that `secret` produces for (`t`, `body`).
    fn v1_hex(secret: &WebhookSecret, t: i64, body: &[u8]) -> String {
        let header = sign(body, std::slice::from_ref(secret), t);
        let (_, hex) = header.split_once(",v1=").expect("sign emits a v1");
        assert_eq!(hex.len(), 64);
        hex.to_owned()
    }

    fn check(header: &str, secrets: &[WebhookSecret], now: i64) -> Result<i64, SignatureError> {
        verify(Some(header), BODY, secrets, now, TOLERANCE)
    }

    fn malformed(header: &str) -> Result<i64, SignatureError> {
        check(header, &[good()], T)
    }

    fn is_malformed(r: &Result<i64, SignatureError>) -> bool {
        matches!(r, Err(SignatureError::Malformed(_)))
    }

    /// The v1 that `good()` produces for (`T`, `BODY`).
    fn valid_v1() -> String {
        v1_hex(&good(), T, BODY)
    }

    /// A well-formed v1 that matches nothing.
    fn decoy(n: u8) -> String {
        hex::encode([n; 32])
    }

    #[test]
    fn missing_header() {
        assert_eq!(
            verify(None, BODY, &[good()], T, TOLERANCE),
            Err(SignatureError::MissingHeader)
        );
    }

    #[test]
    fn malformed_without_t() {
        let h = format!("v1={}", valid_v1());
        assert_eq!(malformed(&h), Err(SignatureError::Malformed("missing t")));
    }

    #[test]
    fn malformed_t_not_a_number() {
        let v1 = valid_v1();
        for t in [
            "abc",
            "",
            "17e8",
            "-1700000000",
            "+1700000000",
            "1 700",
            "0x10",
            "99999999999999999999",
        ] {
            let h = format!("t={t},v1={v1}");
            assert_eq!(
                malformed(&h),
                Err(SignatureError::Malformed("t is not an integer")),
                "t={t:?}"
            );
        }
    }

    #[test]
    fn bare_items_are_ignored() {
        let v1 = valid_v1();
        for h in [
            format!("t={T},v1={v1},garbage"),
            format!("garbage,t={T},v1={v1}"),
            format!("t={T},garbage,v1={v1}"),
            // A bare `v1` is not a signature and does not count towards the cap.
            format!("t={T},v1,v1={v1}"),
            // A bare `t` is not a second timestamp.
            format!("t,t={T},v1={v1}"),
            format!("t={T},v1{v1},v1={v1}"),
        ] {
            assert_eq!(malformed(&h), Ok(T), "header {h:?}");
        }
    }

    #[test]
    fn unknown_keys_are_ignored() {
        let v1 = valid_v1();
        for h in [
            format!("t={T},foo=bar,v1={v1}"),
            format!("t={T},v1={v1},={v1}"),
            format!("t={T},T={T},V1={v1},v1={v1}"),
            format!("t={T},x-y=1=2=3,v1={v1}"),
        ] {
            assert_eq!(malformed(&h), Ok(T), "header {h:?}");
        }
    }

    #[test]
    fn empty_items_are_ignored() {
        let v1 = valid_v1();
        for h in [
            format!("t={T},,v1={v1}"),
            format!("t={T},v1={v1},"),
            format!(",t={T},v1={v1}"),
            format!(",,,t={T},,,v1={v1},,,"),
            format!("t={T}, ,v1={v1}"),
        ] {
            assert_eq!(malformed(&h), Ok(T), "header {h:?}");
        }
    }

    #[test]
    fn whitespace_around_items_is_ignored() {
        let v1 = valid_v1();
        for h in [
            format!(" t={T}, v1={v1} "),
            format!("t={T} ,\tv1={v1}\t"),
            format!("t = {T} , v1 = {v1} , garbage , foo = bar"),
        ] {
            assert_eq!(malformed(&h), Ok(T), "header {h:?}");
        }
    }

    #[test]
    fn only_bare_or_unknown_items_are_rejected() {
        // Without a `t` nothing can be checked: malformed, whatever else is there.
        for h in [
            String::new(),
            "   ".to_owned(),
            ",,".to_owned(),
            "garbage".to_owned(),
            "a, b ,c".to_owned(),
            "foo=bar,=x,v0=00".to_owned(),
            format!("t,v1,{}", valid_v1()),
        ] {
            assert_eq!(
                malformed(&h),
                Err(SignatureError::Malformed("missing t")),
                "header {h:?}"
            );
        }
        // A `t` with nothing but bare and unknown items beside it has no signature.
        for h in [format!("t={T},garbage"), format!("t={T},foo=bar,v1")] {
            assert_eq!(malformed(&h), Err(SignatureError::NoV1), "header {h:?}");
        }
    }

    #[test]
    fn malformed_two_timestamps() {
        let v1 = valid_v1();
        // Even if both are equal, and even if the second is the one that was signed.
        for h in [format!("t={T},t={T},v1={v1}"), format!("t=1,v1={v1},t={T}")] {
            assert_eq!(
                malformed(&h),
                Err(SignatureError::Malformed("more than one t")),
                "header {h:?}"
            );
        }
    }

    #[test]
    fn malformed_header_too_long() {
        let valid = format!("t={T},v1={}", valid_v1());
        // Exactly at the limit: still parsed (padding with an unknown scheme).
        let pad = MAX_HEADER_LEN - valid.len() - ",x=".len();
        let at_limit = format!("{valid},x={}", "a".repeat(pad));
        assert_eq!(at_limit.len(), MAX_HEADER_LEN);
        assert_eq!(malformed(&at_limit), Ok(T));
        // One byte more: rejected before any parsing, although a valid v1 is present.
        let over = format!("{at_limit}a");
        assert_eq!(
            malformed(&over),
            Err(SignatureError::Malformed("header longer than 8 KiB"))
        );
    }

    #[test]
    fn valid_signature_accepted_with_spaces() {
        let h = format!(" t = {T} , v1 = {} ", valid_v1());
        assert_eq!(check(&h, &[good()], T), Ok(T));
    }

    #[test]
    fn wrong_secret_rejected() {
        let h = format!("t={T},v1={}", valid_v1());
        assert_eq!(check(&h, &[other()], T), Err(SignatureError::NoMatch));
    }

    #[test]
    fn tampered_body_rejected() {
        let h = format!("t={T},v1={}", valid_v1());
        assert_eq!(check(&h, &[good()], T), Ok(T));
        for i in 0..BODY.len() {
            let mut body = BODY.to_vec();
            body[i] ^= 0x01;
            assert_eq!(
                verify(Some(&h), &body, &[good()], T, TOLERANCE),
                Err(SignatureError::NoMatch),
                "byte {i} flipped"
            );
        }
    }

    #[test]
    fn timestamp_is_part_of_the_signed_payload() {
        // Same v1 presented with another t (still inside the tolerance) must fail.
        let h = format!("t={},v1={}", T + 1, valid_v1());
        assert_eq!(check(&h, &[good()], T), Err(SignatureError::NoMatch));
    }

    #[test]
    fn stale_timestamp() {
        let h = format!("t={T},v1={}", valid_v1());
        assert_eq!(check(&h, &[good()], T + 300), Ok(T));
        assert_eq!(
            check(&h, &[good()], T + 301),
            Err(SignatureError::OutsideTolerance { age_secs: 301 })
        );
    }

    #[test]
    fn future_timestamp() {
        let h = format!("t={T},v1={}", valid_v1());
        assert_eq!(check(&h, &[good()], T - 300), Ok(T));
        assert_eq!(
            check(&h, &[good()], T - 301),
            Err(SignatureError::OutsideTolerance { age_secs: -301 })
        );
    }

    #[test]
    fn extreme_timestamps_do_not_overflow() {
        let t_max = i64::MAX;
        let h = sign(BODY, &[good()], t_max);
        assert_eq!(
            verify(Some(&h), BODY, &[good()], i64::MIN, TOLERANCE),
            Err(SignatureError::OutsideTolerance { age_secs: i64::MIN })
        );
        assert_eq!(
            verify(Some(&h), BODY, &[good()], i64::MIN, u64::MAX),
            Ok(t_max)
        );
        let h0 = sign(BODY, &[good()], 0);
        assert_eq!(
            verify(Some(&h0), BODY, &[good()], i64::MAX, TOLERANCE),
            Err(SignatureError::OutsideTolerance { age_secs: i64::MAX })
        );
    }

    #[test]
    fn tolerance_checked_before_signature() {
        let h = format!("t={T},v1={}", decoy(1));
        assert_eq!(
            check(&h, &[good()], T + 1000),
            Err(SignatureError::OutsideTolerance { age_secs: 1000 })
        );
    }

    #[test]
    fn one_valid_among_several_v1() {
        let v = valid_v1();
        let (a, b) = (decoy(0xaa), decoy(0xbb));
        for h in [
            format!("t={T},v1={v},v1={a},v1={b}"),
            format!("t={T},v1={a},v1={v},v1={b}"),
            format!("t={T},v1={a},v1={b},v1={v}"),
        ] {
            assert_eq!(check(&h, &[good()], T), Ok(T), "header {h}");
            assert_eq!(
                check(&h, &[other()], T),
                Err(SignatureError::NoMatch),
                "header {h}"
            );
        }
    }

    #[test]
    fn only_second_secret_signs() {
        let h = format!("t={T},v1={}", valid_v1());
        assert_eq!(check(&h, &[other(), good()], T), Ok(T));
        assert_eq!(check(&h, &[good(), other()], T), Ok(T));
        assert_eq!(check(&h, &[other()], T), Err(SignatureError::NoMatch));
    }

    #[test]
    fn v0_only_is_no_v1() {
        let h = format!("t={T},v0={}", valid_v1());
        assert_eq!(check(&h, &[good()], T), Err(SignatureError::NoV1));
        // A bare t as well.
        assert_eq!(
            check(&format!("t={T}"), &[good()], T),
            Err(SignatureError::NoV1)
        );
    }

    #[test]
    fn unknown_scheme_ignored() {
        let v = valid_v1();
        for h in [
            format!("t={T},v9=not-hex=at=all,v1={v}"),
            format!("t={T},v1={v},v9={}", decoy(9)),
        ] {
            assert_eq!(check(&h, &[good()], T), Ok(T), "header {h}");
        }
        // Alone it cannot authenticate anything, even carrying the right MAC.
        let h = format!("t={T},v9={v}");
        assert_eq!(check(&h, &[good()], T), Err(SignatureError::NoV1));
    }

    #[test]
    fn uppercase_hex_is_not_accepted() {
        // Decision: Stripe sends lowercase; its libraries compare hex strings,
        // so an upper-case v1 never verifies there and does not here either.
        let upper = valid_v1().to_ascii_uppercase();
        assert_ne!(upper, valid_v1());
        let h = format!("t={T},v1={upper}");
        assert_eq!(check(&h, &[good()], T), Err(SignatureError::NoMatch));
        // It is skipped, not fatal: a lowercase copy next to it still verifies.
        let h = format!("t={T},v1={upper},v1={}", valid_v1());
        assert_eq!(check(&h, &[good()], T), Ok(T));
    }

    #[test]
    fn ill_formed_v1_values_are_skipped() {
        let v = valid_v1();
        let bad = [
            String::new(),
            v[..63].to_owned(),
            format!("{v}0"),
            format!("{v}{v}"),
            format!("{}g", &v[..63]),
            "zz".repeat(32),
        ];
        for b in &bad {
            let h = format!("t={T},v1={b},v1={v}");
            assert_eq!(check(&h, &[good()], T), Ok(T), "bad v1 {b:?}");
            let h = format!("t={T},v1={b}");
            assert_eq!(
                check(&h, &[good()], T),
                Err(SignatureError::NoMatch),
                "bad v1 {b:?}"
            );
        }
    }

    #[test]
    fn only_first_16_v1_are_considered() {
        let v = valid_v1();
        let decoys = |n: u8| -> String {
            (0..n)
                .map(|i| format!(",v1={}", decoy(i)))
                .collect::<Vec<_>>()
                .concat()
        };
        // The valid one is the 16th v1: accepted.
        let h = format!("t={T}{},v1={v}", decoys(15));
        assert_eq!(check(&h, &[good()], T), Ok(T));
        // The valid one is the 17th v1: ignored.
        let h = format!("t={T}{},v1={v}", decoys(16));
        assert_eq!(check(&h, &[good()], T), Err(SignatureError::NoMatch));
        // Ill-formed v1 entries count towards the cap too.
        let h = format!("t={T}{},v1={v}", ",v1=x".repeat(16));
        assert_eq!(check(&h, &[good()], T), Err(SignatureError::NoMatch));
    }

    #[test]
    fn hostile_header_within_length_limit_is_bounded_and_rejected() {
        // ~ 120 v1 entries fit in 8 KiB; none match and nothing panics.
        let mut h = format!("t={T}");
        while h.len() + 68 <= MAX_HEADER_LEN {
            h.push_str(",v1=");
            h.push_str(&decoy(7));
        }
        assert_eq!(
            check(&h, &[good(), other()], T),
            Err(SignatureError::NoMatch)
        );
        // Non-ASCII bytes and odd separators do not panic either.
        for h in [
            "t=١٧٠٠,v1=é",
            "t=1,v1=\u{0}",
            "=,=,=",
            "t==1",
            "\u{feff}t=1,v1=00",
        ] {
            assert!(check(h, &[good()], T).is_err(), "header {h:?}");
        }
    }

    #[test]
    fn no_secrets() {
        let h = format!("t={T},v1={}", valid_v1());
        assert_eq!(check(&h, &[], T), Err(SignatureError::NoSecrets));
        // An empty secret is never used as a key, even when the v1 was made with it.
        let empty = secret("");
        let h_empty = sign(BODY, std::slice::from_ref(&empty), T);
        assert_eq!(
            check(&h_empty, std::slice::from_ref(&empty), T),
            Err(SignatureError::NoSecrets)
        );
        assert_eq!(
            check(&h_empty, &[empty, good()], T),
            Err(SignatureError::NoMatch)
        );
    }

    #[test]
    fn check_order() {
        // Malformed beats NoV1 beats NoSecrets beats OutsideTolerance beats NoMatch.
        assert_eq!(
            verify(None, BODY, &[], T, 0),
            Err(SignatureError::MissingHeader)
        );
        assert!(is_malformed(&check("v0=00", &[], T + 1000)));
        assert_eq!(
            check(&format!("t={T}"), &[], T + 1000),
            Err(SignatureError::NoV1)
        );
        let h = format!("t={T},v1={}", decoy(1));
        assert_eq!(check(&h, &[], T + 1000), Err(SignatureError::NoSecrets));
        assert_eq!(
            check(&h, &[other()], T + 1000),
            Err(SignatureError::OutsideTolerance { age_secs: 1000 })
        );
        assert_eq!(check(&h, &[other()], T), Err(SignatureError::NoMatch));
    }

    #[test]
    fn sign_verify_round_trip() {
        let header = sign(BODY, &[good()], T);
        assert_eq!(header, format!("t={T},v1={}", valid_v1()));
        assert_eq!(verify(Some(&header), BODY, &[good()], T, 0), Ok(T));

        // Rotation: one v1 per secret, in order; either secret alone verifies.
        let both = sign(BODY, &[other(), good()], T);
        assert_eq!(
            both,
            format!("t={T},v1={},v1={}", v1_hex(&other(), T, BODY), valid_v1())
        );
        assert_eq!(check(&both, &[good()], T), Ok(T));
        assert_eq!(check(&both, &[other()], T), Ok(T));
        assert_eq!(
            check(&both, &[secret("whsec_third")], T),
            Err(SignatureError::NoMatch)
        );

        assert_eq!(sign(BODY, &[], T), format!("t={T}"));

        // Arbitrary (non-UTF-8) bodies round-trip.
        let binary = [0u8, 0xff, 0xfe, b'.', b'\n'];
        let h = sign(&binary, &[good()], T);
        assert_eq!(verify(Some(&h), &binary, &[good()], T, 0), Ok(T));
        assert_eq!(
            verify(Some(&h), &binary[..4], &[good()], T, 0),
            Err(SignatureError::NoMatch)
        );
    }

    #[test]
    fn secret_is_redacted_in_debug() {
        let s = secret("whsec_DO_NOT_PRINT_ME");
        let debug = format!("{s:?}");
        assert_eq!(debug, "WebhookSecret(<redacted>)");
        assert!(!debug.contains("DO_NOT_PRINT_ME"));
        let pretty = format!("{:#?}", vec![s.clone()]);
        assert!(!pretty.contains("DO_NOT_PRINT_ME"));
        assert_eq!(s.expose(), "whsec_DO_NOT_PRINT_ME");
        // Error messages never carry secrets or header contents either.
        for e in [
            SignatureError::Malformed("t is not an integer"),
            SignatureError::OutsideTolerance { age_secs: 5 },
            SignatureError::NoMatch,
        ] {
            assert!(!e.to_string().contains("whsec_"));
        }
    }

    /// The real Stripe delivery, its real header and its (published, test-mode) secret.
    struct RealVector {
        header: String,
        secret: WebhookSecret,
        t: i64,
    }

    fn real_vector() -> RealVector {
        use sha2::Digest;

        let doc: serde_json::Value =
            serde_json::from_str(REAL_VECTORS).expect("SIGNED_VECTORS.json is JSON");
        let vector = &doc["vectors"][0];
        assert_eq!(vector["body_file"], REAL_BODY_FILE);

        // The included fixture is the untouched original.
        assert_eq!(hex::encode(Sha256::digest(REAL_BODY)), REAL_BODY_SHA256);
        assert_eq!(REAL_BODY.last(), Some(&b'}'), "no trailing newline");

        let header = vector["stripe_signature"]
            .as_str()
            .expect("stripe_signature")
            .to_owned();
        let secret = WebhookSecret::new(vector["secret"].as_str().expect("secret"));
        let t = header
            .split(',')
            .find_map(|pair| pair.strip_prefix("t="))
            .expect("header has t")
            .parse()
            .expect("t is an integer");
        RealVector { header, secret, t }
    }

    #[test]
    fn real_signed_vector_verifies() {
        let RealVector { header, secret, t } = real_vector();
        assert_eq!(t, 1_746_757_390);
        assert!(header.contains(",v0="), "the real header also carries a v0");

        assert_eq!(
            verify(
                Some(&header),
                REAL_BODY,
                std::slice::from_ref(&secret),
                t,
                TOLERANCE
            ),
            Ok(t)
        );
        // During a rotation the real secret may be second.
        assert_eq!(
            verify(
                Some(&header),
                REAL_BODY,
                &[other(), secret.clone()],
                t,
                TOLERANCE
            ),
            Ok(t)
        );
        // sign() reproduces Stripe's v1 exactly.
        let ours = sign(REAL_BODY, std::slice::from_ref(&secret), t);
        assert!(header.starts_with(&ours), "{ours} vs {header}");
    }

    #[test]
    fn real_signed_vector_rejected_when_stale() {
        let RealVector { header, secret, t } = real_vector();
        assert_eq!(
            verify(
                Some(&header),
                REAL_BODY,
                std::slice::from_ref(&secret),
                t + 300,
                300
            ),
            Ok(t)
        );
        assert_eq!(
            verify(Some(&header), REAL_BODY, &[secret], t + 301, 300),
            Err(SignatureError::OutsideTolerance { age_secs: 301 })
        );
    }

    #[test]
    fn real_signed_vector_rejected_when_body_reserialized() {
        let RealVector { header, secret, t } = real_vector();
        let parsed: serde_json::Value = serde_json::from_slice(REAL_BODY).expect("body is JSON");
        for reserialized in [
            serde_json::to_vec(&parsed).expect("serialize"),
            serde_json::to_vec_pretty(&parsed).expect("serialize"),
        ] {
            assert_ne!(reserialized.as_slice(), REAL_BODY);
            assert_eq!(
                verify(
                    Some(&header),
                    &reserialized,
                    std::slice::from_ref(&secret),
                    t,
                    TOLERANCE
                ),
                Err(SignatureError::NoMatch)
            );
        }
        // So does the classic editor accident: a trailing newline.
        let mut with_newline = REAL_BODY.to_vec();
        with_newline.push(b'\n');
        assert_eq!(
            verify(
                Some(&header),
                &with_newline,
                std::slice::from_ref(&secret),
                t,
                TOLERANCE
            ),
            Err(SignatureError::NoMatch)
        );
        // And the wrong secret.
        assert_eq!(
            verify(Some(&header), REAL_BODY, &[good()], t, TOLERANCE),
            Err(SignatureError::NoMatch)
        );
    }

    #[test]
    fn real_signed_vector_v0_alone_is_not_enough() {
        let RealVector { header, secret, t } = real_vector();
        let v0_only: String = header
            .split(',')
            .filter(|pair| !pair.starts_with("v1="))
            .collect::<Vec<_>>()
            .join(",");
        assert!(v0_only.contains("v0="));
        assert_eq!(
            verify(Some(&v0_only), REAL_BODY, &[secret], t, TOLERANCE),
            Err(SignatureError::NoV1)
        );
    }
}
