//! Fuzz harnesses (feature `fuzzing`). The cargo-fuzz targets in `fuzz/` only call
//! these, so the harnesses build and run in normal CI and cannot rot.

use crate::{ClusterName, Codec};

/// Decodes arbitrary bytes as a message. The codec expects the cluster name the
/// bytes carry (so the fuzzer reaches the body rather than stopping at a cluster
/// mismatch). Whatever decodes must re-encode to exactly the same bytes, with
/// `encoded_len` predicting the length. Returns whether the bytes decoded.
///
/// # Panics
///
/// When the property fails: that is the bug the fuzzer looks for.
pub fn decode(data: &[u8]) -> bool {
    let named = data.get(4).and_then(|&n| data.get(5..5 + usize::from(n)));
    let cluster = named.and_then(|c| ClusterName::new(c).ok());
    let codec = Codec::new(cluster.unwrap_or_else(|| ClusterName::new("fuzz").expect("short name")));
    match codec.decode(data) {
        Ok(env) => {
            let again = env.encode();
            assert_eq!(again, data, "a decoded message did not re-encode to its bytes");
            assert_eq!(env.encoded_len(), data.len(), "encoded_len disagrees with the encoding");
            true
        }
        Err(_) => false,
    }
}
