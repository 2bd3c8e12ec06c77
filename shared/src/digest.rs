//! Hashing and compression of bytes: the ledger's body hashes, parked bodies, stable message
//! ids and the order-evidence digests. A leaf module (no crate imports), so nothing cycles.

use sha2::{Digest, Sha256};

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A short digest of a JSON value, for equality checks only (never to identify a secret).
pub fn json_digest(value: &serde_json::Value) -> String {
    if value.is_null() {
        // Absent and null compare equal: Stripe reports an added key's previous value as null.
        return "null".to_owned();
    }
    // serde_json's map is ordered by key, so equal values serialise to equal bytes.
    let bytes = serde_json::to_vec(value).unwrap_or_default();
    sha256_hex(&bytes)[..12].to_owned()
}

pub fn gzip(raw: &[u8]) -> Option<Vec<u8>> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(raw).ok()?;
    enc.finish().ok()
}

/// Decompresses at most 16 MiB (a parked body is at most Lambda's 6 MB).
pub fn gunzip(data: &[u8]) -> Option<Vec<u8>> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(data)
        .take(16 * 1024 * 1024)
        .read_to_end(&mut out)
        .ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn equal_json_gives_equal_digests_whatever_the_key_order() {
        let a: serde_json::Value = serde_json::from_str(r#"{"a":1,"b":[1,2]}"#).expect("json");
        let b: serde_json::Value = serde_json::from_str(r#"{"b":[1,2],"a":1}"#).expect("json");
        assert_eq!(json_digest(&a), json_digest(&b));
        assert_ne!(json_digest(&json!("x")), json_digest(&json!("y")));
        assert_eq!(json_digest(&json!(null)), "null");
    }

    #[test]
    fn gzip_round_trips() {
        let raw = b"{\"id\":\"evt_1\"}".repeat(100);
        assert_eq!(gunzip(&gzip(&raw).expect("gzip")), Some(raw));
    }
}
