//! Runs the fuzz harnesses over the seed corpus (the wire document's hex vectors and
//! every byte-level mutation of them), so they are exercised on every test run.
#![cfg(feature = "fuzzing")]

fn hex_vectors() -> Vec<Vec<u8>> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/wire.md")).unwrap();
    let mut out = Vec::new();
    let mut lines = doc.lines();
    while let Some(line) = lines.next() {
        if line.trim() != "```hex" {
            continue;
        }
        let mut bytes = Vec::new();
        for l in lines.by_ref() {
            if l.trim() == "```" {
                break;
            }
            let l = l.split('#').next().unwrap();
            if l.contains(':') {
                continue; // name: / length: lines
            }
            bytes.extend(l.split_whitespace().map(|h| u8::from_str_radix(h, 16).unwrap()));
        }
        out.push(bytes);
    }
    out
}

#[test]
fn decode_harness_over_vectors_and_their_mutations() {
    let vectors = hex_vectors();
    assert!(vectors.len() >= 10, "the wire document's vectors were not found");
    for v in &vectors {
        assert!(rumormill::fuzzing::decode(v), "a document vector does not decode");
        for i in 0..v.len() {
            for b in [0u8, 1, 0x7f, 0x80, 0xff, v[i].wrapping_add(1)] {
                let mut m = v.clone();
                m[i] = b;
                rumormill::fuzzing::decode(&m);
            }
            rumormill::fuzzing::decode(&v[..i]);
        }
    }
}
