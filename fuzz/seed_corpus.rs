//! Writes the seed corpora of the fuzz targets from the test vectors, so that no
//! corpus needs committing:
//!
//! ```sh
//! cargo run --manifest-path fuzz/Cargo.toml --no-default-features --example seed_corpus [CORPUS_DIR]
//! ```
//!
//! - `decode`: every hex vector of `docs/wire.md`, and every message of the JSON
//!   conformance vectors in `vectors/` (input and expected output) encoded;
//! - `gossiper_ops`: `rumormill::fuzzing::gossiper_ops_seeds` of all those
//!   messages (each delivered to a converged cluster), plus its own scenarios;
//! - `merge`: `rumormill::fuzzing::merge_seeds`, and the node states of every
//!   conformance vector replayed as owner histories (`merge_seeds_of`).
//!
//! Files are named after what they hold and overwritten on each run; what the
//! fuzzer added to a corpus stays.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rumormill::{
    Ack, Ack2, ClusterName, Delta, Digest, DigestPage, Envelope, Generation, Header, Key, Message, NodeId, Syn, Value,
    Version, VersionedValue,
};
use serde_json::Value as Json;

/// The hex vectors of the wire document, in order.
pub fn wire_vectors(doc: &str) -> Vec<Vec<u8>> {
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
            let l = l.split('#').next().unwrap_or_default();
            if l.contains(':') {
                continue; // name: / length: lines
            }
            bytes.extend(l.split_whitespace().map(|h| u8::from_str_radix(h, 16).expect("hex byte")));
        }
        out.push(bytes);
    }
    out
}

fn id(s: &str) -> NodeId {
    NodeId::new(s).expect("vector node ids are 1..=255 bytes")
}

fn num(j: &Json) -> u64 {
    j.as_u64().unwrap_or(0)
}

fn digest(d: &Json) -> Option<Digest> {
    let a = d.as_array()?;
    Some(Digest {
        node: id(a.first()?.as_str()?),
        generation: Generation(num(a.get(1)?)),
        max_version: Version(num(a.get(2)?)),
        purged: Version(a.get(3).map_or(0, num)),
    })
}

/// A vector's endpoint map as deltas. A delta's base is its `"from"`, else (as the
/// conformance runner does) just below its lowest version for a node the local
/// state knows at that generation, else 0.
fn deltas(map: &Json, state: &Json) -> Vec<Delta> {
    let Some(map) = map.as_object() else { return Vec::new() };
    map.iter()
        .map(|(node, e)| {
            let generation = num(&e["generation"]);
            let mut values: Vec<(Key, VersionedValue)> = e["values"]
                .as_object()
                .map(|vs| {
                    vs.iter()
                        .map(|(k, v)| {
                            let value = v["value"].as_str().map(Value::from);
                            (
                                Key::new(k).expect("vector keys are short"),
                                VersionedValue { value, version: Version(num(&v["version"])) },
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            values.sort_by_key(|(_, vv)| vv.version);
            let lowest = values.first().map_or(u64::MAX, |(_, vv)| vv.version.0);
            let known = &state[node.as_str()];
            let from = match e.get("from") {
                Some(f) => num(f),
                None if num(&known["generation"]) == generation && !known.is_null() => {
                    let max = num(&known["heartbeat"]).max(
                        known["values"]
                            .as_object()
                            .map_or(0, |vs| vs.values().map(|v| num(&v["version"])).max().unwrap_or(0)),
                    );
                    max.min(lowest.saturating_sub(1))
                }
                None => 0,
            };
            Delta {
                node: id(node),
                generation: Generation(generation),
                from: Version(from),
                purged: Version(e.get("purged").map_or(0, num)),
                heartbeat: Some(Version(num(&e["heartbeat"]))),
                values,
            }
        })
        .collect()
}

fn message(kind: &str, body: &Json, state: &Json) -> Option<Message> {
    let digests = |j: &Json| j.as_array().map(|a| a.iter().filter_map(digest).collect()).unwrap_or_default();
    Some(match kind {
        "syn" => Message::Syn(Syn { page: DigestPage::Listed(digests(&body["digests"])) }),
        "ack" => Message::Ack(Ack {
            requests: digests(&body["requests"]),
            deltas: deltas(&body["deltas"], state),
            compact: None,
            resend: None,
        }),
        "ack2" => Message::Ack2(Ack2 { deltas: deltas(&body["deltas"], state), compact: None }),
        _ => return None,
    })
}

/// The messages of one conformance vector, encoded: the input from a peer, and the
/// expected answer from the local node.
fn vector_messages(v: &Json) -> Vec<(String, Vec<u8>)> {
    let cluster = ClusterName::new("vectors").expect("short name");
    let state = &v["state"];
    let local = v["local"].as_str().unwrap_or("local");
    let peer = state.as_object().and_then(|s| s.keys().find(|k| *k != local).cloned()).unwrap_or_else(|| "peer".into());
    let header = |sender: &str| Header {
        cluster: cluster.clone(),
        sender: id(sender),
        generation: Generation(num(&state[sender]["generation"]).max(1)),
    };
    let mut out = Vec::new();
    let parts = [("input", &v["input"], peer.as_str()), ("output", &v["expect"]["output"], local)];
    for (what, j, sender) in parts {
        let Some((kind, body)) = j.as_object().and_then(|o| o.iter().next()) else { continue };
        if let Some(m) = message(kind, body, state) {
            out.push((format!("{what}-{kind}"), Envelope { header: header(sender), message: m }.encode()));
        }
    }
    out
}

/// The node states of one conformance vector (its view, its input's deltas and
/// its expected view) as owner histories the `merge` harness replays: each
/// state's fields in version order, set or deleted (tombstones), a purge where
/// the state has a purge floor, and the heartbeat last. Keys and values map onto
/// the harness's few (`STATUS` and `DC` keep theirs), so the shapes carry over,
/// not the exact versions.
fn vector_histories(v: &Json) -> Vec<Vec<rumormill::fuzzing::HistoryStep>> {
    use rumormill::fuzzing::HistoryStep;
    let byte = |s: &str| s.bytes().fold(0u8, |a, b| a.wrapping_mul(31).wrapping_add(b));
    let key = |k: &str| match k {
        "STATUS" => 6,
        "DC" => 7,
        other => byte(other) % 2,
    };
    let mut states: Vec<&Json> = Vec::new();
    for map in [&v["state"], &v["expect"]["state"]] {
        states.extend(map.as_object().into_iter().flat_map(|o| o.values()));
    }
    if let Some((_, body)) = v["input"].as_object().and_then(|o| o.iter().next()) {
        states.extend(body["deltas"].as_object().into_iter().flat_map(|o| o.values()));
    }
    let mut out = Vec::new();
    for st in states {
        let mut fields: Vec<(u64, &str, &Json)> = st["values"]
            .as_object()
            .into_iter()
            .flat_map(|o| o.iter().map(|(k, vv)| (num(&vv["version"]), k.as_str(), &vv["value"])))
            .collect();
        fields.sort_by_key(|(version, ..)| *version);
        let purged = num(&st["purged"]);
        let mut steps = Vec::new();
        let mut purge_done = purged == 0;
        for (version, k, value) in fields {
            if !purge_done && version > purged {
                steps.push(HistoryStep::Purge { grace: 0 });
                purge_done = true;
            }
            steps.push(match value.as_str() {
                Some(text) => HistoryStep::Set { key: key(k), value: byte(text) },
                None => HistoryStep::Delete { key: key(k) },
            });
        }
        if !purge_done {
            steps.push(HistoryStep::Purge { grace: 0 });
        }
        steps.push(HistoryStep::Beat);
        out.push(steps);
    }
    out
}

/// One seed input of one target.
pub struct Seed {
    /// The fuzz target (`decode`, `gossiper_ops`, `merge`).
    pub target: &'static str,
    /// The file name in the target's corpus.
    pub name: String,
    pub bytes: Vec<u8>,
}

/// Every seed of every target, from the repository at `root`. Also used by
/// `tests/fuzz_harnesses.rs`, which runs each harness over its seeds.
pub fn seeds(root: &Path) -> Vec<Seed> {
    let doc = std::fs::read_to_string(root.join("docs/wire.md")).expect("docs/wire.md");
    let wire = wire_vectors(&doc);
    assert!(wire.len() >= 10, "the wire document's vectors were not found");

    let mut files: Vec<PathBuf> = std::fs::read_dir(root.join("vectors"))
        .expect("vectors/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no conformance vectors in vectors/");
    let mut from_vectors: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut histories: BTreeMap<String, Vec<Vec<rumormill::fuzzing::HistoryStep>>> = BTreeMap::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        let v: Json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        let stem = f.file_stem().and_then(|s| s.to_str()).unwrap_or("vector");
        for (what, bytes) in vector_messages(&v) {
            from_vectors.insert(format!("vector-{stem}-{what}"), bytes);
        }
        histories.insert(stem.to_owned(), vector_histories(&v));
    }

    let mut out = Vec::new();
    let mut add = |target, name: String, bytes: Vec<u8>| out.push(Seed { target, name, bytes });
    // decode: every wire vector, and the conformance vectors' messages
    for (i, bytes) in wire.iter().enumerate() {
        add("decode", format!("wire-{i:02}"), bytes.clone());
    }
    for (name, bytes) in &from_vectors {
        add("decode", name.clone(), bytes.clone());
    }
    // gossiper_ops: its scenarios, then every message delivered to a cluster
    let mut messages = wire;
    messages.extend(from_vectors.into_values());
    for (i, s) in rumormill::fuzzing::gossiper_ops_seeds(&messages).into_iter().enumerate() {
        add("gossiper_ops", format!("seed-{i:03}"), s);
    }
    for (i, s) in rumormill::fuzzing::merge_seeds().into_iter().enumerate() {
        add("merge", format!("seed-{i:03}"), s);
    }
    // merge: each vector's states replayed as owner histories
    for (stem, h) in &histories {
        for (i, s) in rumormill::fuzzing::merge_seeds_of(h).into_iter().enumerate() {
            add("merge", format!("vector-{stem}-{i}"), s);
        }
    }
    // open: every message sealed, and the messages plain
    for (i, s) in rumormill::fuzzing::open_seeds(&messages).into_iter().enumerate() {
        add("open", format!("sealed-{i:03}"), s);
    }
    for (i, m) in messages.iter().enumerate().take(8) {
        add("open", format!("plain-{i:03}"), m.clone());
    }
    out
}

#[allow(dead_code)] // not when included by the tests
fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("fuzz/ is inside the repository").to_path_buf();
    let corpus = std::env::args().nth(1).map_or_else(|| root.join("fuzz/corpus"), PathBuf::from);
    let seeds = seeds(&root);
    let mut counts: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for s in &seeds {
        let dir = corpus.join(s.target);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        let path = dir.join(&s.name);
        std::fs::write(&path, &s.bytes).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        let c = counts.entry(s.target).or_default();
        c.0 += 1;
        if s.target == "decode" && rumormill::fuzzing::decode(&s.bytes) {
            c.1 += 1;
        }
    }
    let summary: Vec<String> = counts.iter().map(|(t, (n, _))| format!("{t} {n}")).collect();
    let (n, ok) = counts.get("decode").copied().unwrap_or_default();
    println!("seeded {}: {} (decode: {ok} of {n} decode)", corpus.display(), summary.join(", "));
}
