//! Runs the JSON conformance vectors: every `*.json` in `vectors/`, and in each
//! directory listed (colon-separated) in `RUMORMILL_VECTORS`.
//!
//! Schema: `../shared/vectors/README.md`, repeated in `vectors/README.md`, with
//! three optional extensions for rumormill's own rules: an ENDPOINT may carry
//! `"purged": u64` (the owner's purge floor, default 0), an ENDPOINT inside
//! input deltas may carry `"from": u64` (the version the delta is based on), and
//! a DIGEST may carry a fourth element, its purge floor. Vectors assume no size
//! limit.
//!
//! Reference vectors carry no base version (the reference derives everything from
//! versions): without `"from"`, a delta for a node the local view knows at the
//! same generation is taken as based just below its lowest version or at the
//! view's max version, whichever is lower; any other delta as based at 0.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng;
use rumormill::{
    Ack, Ack2, Budget, Delta, Digest, DigestPage, EndpointState, Generation, Key, NodeId, Syn, Timestamp, Value,
    Version, VersionedValue, View, build_ack2, handle_ack, handle_ack2, handle_syn,
};
use serde::Deserialize;

#[derive(Deserialize)]
struct Vector {
    name: String,
    #[allow(dead_code)]
    description: String,
    local: String,
    now_ms: u64,
    state: BTreeMap<String, Endpoint>,
    input: Input,
    expect: Expect,
}

#[derive(Deserialize, Clone, Debug, PartialEq)]
struct Endpoint {
    generation: u64,
    heartbeat: u64,
    values: BTreeMap<String, ValueJ>,
    #[serde(default)]
    purged: Option<u64>,
    /// Input deltas only: the version the delta is based on.
    #[serde(default)]
    from: Option<u64>,
}

#[derive(Deserialize, Clone, Debug, PartialEq)]
struct ValueJ {
    value: Option<String>,
    version: u64,
}

#[derive(Deserialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[serde(untagged)]
enum DigestJ {
    Reference(String, u64, u64),
    Purged(String, u64, u64, u64),
}

impl DigestJ {
    fn parts(&self) -> (String, u64, u64, u64) {
        match self {
            DigestJ::Reference(n, g, v) => (n.clone(), *g, *v, 0),
            DigestJ::Purged(n, g, v, p) => (n.clone(), *g, *v, *p),
        }
    }
}

#[derive(Deserialize)]
enum Input {
    #[serde(rename = "syn")]
    Syn { digests: Vec<DigestJ> },
    #[serde(rename = "ack")]
    Ack { requests: Vec<DigestJ>, deltas: BTreeMap<String, Endpoint> },
    #[serde(rename = "ack2")]
    Ack2 { deltas: BTreeMap<String, Endpoint> },
}

#[derive(Deserialize)]
struct Expect {
    output: Option<Output>,
    #[serde(default)]
    state: Option<BTreeMap<String, Endpoint>>,
}

#[derive(Deserialize, Debug)]
enum Output {
    #[serde(rename = "ack")]
    Ack { requests: Vec<DigestJ>, deltas: BTreeMap<String, Endpoint> },
    #[serde(rename = "ack2")]
    Ack2 { deltas: BTreeMap<String, Endpoint> },
}

fn id(s: &str) -> NodeId {
    NodeId::new(s).expect("vector node ids are 1..=255 bytes")
}

fn to_state(e: &Endpoint) -> EndpointState {
    EndpointState::from_parts(
        Generation(e.generation),
        Version(e.heartbeat),
        e.values.iter().map(|(k, v)| {
            (
                Key::new(k).expect("vector keys are 1..=255 bytes"),
                VersionedValue { value: v.value.as_deref().map(Value::from), version: Version(v.version) },
            )
        }),
        Version(e.purged.unwrap_or(0)),
    )
}

fn to_endpoint(
    generation: Generation,
    heartbeat: Version,
    values: &[(Key, VersionedValue)],
    purged: Version,
) -> Endpoint {
    Endpoint {
        generation: generation.0,
        heartbeat: heartbeat.0,
        values: values
            .iter()
            .map(|(k, vv)| {
                let value = vv.value.as_ref().map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
                (k.as_str().to_owned(), ValueJ { value, version: vv.version.0 })
            })
            .collect(),
        purged: Some(purged.0),
        from: None,
    }
}

fn view_to_map(view: &View) -> BTreeMap<String, Endpoint> {
    view.iter()
        .map(|(id, s)| {
            let values: Vec<_> = s.values().iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            (id.to_string(), to_endpoint(s.generation(), s.heartbeat(), &values, s.purged()))
        })
        .collect()
}

fn deltas_to_map(deltas: &[Delta]) -> Result<BTreeMap<String, Endpoint>, String> {
    deltas
        .iter()
        .map(|d| {
            let hb = d.heartbeat.ok_or_else(|| format!("delta for {} has no heartbeat", d.node))?;
            Ok((d.node.to_string(), to_endpoint(d.generation, hb, &d.values, d.purged)))
        })
        .collect()
}

/// The vector's deltas as rumormill deltas, based as the module docs say.
fn to_deltas(view: &View, deltas: &BTreeMap<String, Endpoint>) -> Vec<Delta> {
    deltas
        .iter()
        .map(|(node, e)| {
            let node = id(node);
            let mut values: Vec<(Key, VersionedValue)> = to_state(e).values().clone().into_iter().collect();
            values.sort_by_key(|(_, vv)| vv.version);
            let lowest = values.first().map_or(u64::MAX, |(_, vv)| vv.version.0);
            let from = match (e.from, view.get(&node)) {
                (Some(from), _) => Version(from),
                (None, Some(s)) if s.generation().0 == e.generation => {
                    Version(s.max_version().0.min(lowest.saturating_sub(1)))
                }
                _ => Version::ZERO,
            };
            Delta {
                node,
                generation: Generation(e.generation),
                from,
                purged: Version(e.purged.unwrap_or(0)),
                heartbeat: Some(Version(e.heartbeat)),
                values,
            }
        })
        .collect()
}

fn to_digest(d: &DigestJ) -> Digest {
    let (n, g, v, p) = d.parts();
    Digest { node: id(&n), generation: Generation(g), max_version: Version(v), purged: Version(p) }
}

fn digest_set(ds: &[Digest]) -> BTreeSet<(String, u64, u64, u64)> {
    ds.iter().map(|d| (d.node.to_string(), d.generation.0, d.max_version.0, d.purged.0)).collect()
}

/// Endpoints compare on what the vector states; `purged` only where it gives one.
fn same_endpoints(expected: &BTreeMap<String, Endpoint>, got: &BTreeMap<String, Endpoint>) -> bool {
    expected.len() == got.len()
        && expected.iter().all(|(node, e)| {
            got.get(node).is_some_and(|g| {
                g.generation == e.generation
                    && g.heartbeat == e.heartbeat
                    && g.values == e.values
                    && e.purged.is_none_or(|p| g.purged == Some(p))
            })
        })
}

fn run(v: &Vector) -> Result<(), String> {
    let local = id(&v.local);
    let mut view = View::from_states(local, v.state.iter().map(|(n, e)| (id(n), to_state(e))))
        .map_err(|e| format!("bad vector state: {e}"))?;
    let now = Timestamp::from_millis(v.now_ms);
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let budget = Budget::unlimited();

    match (&v.input, &v.expect.output) {
        (Input::Syn { digests }, expected) => {
            let syn = Syn { page: DigestPage::Listed(digests.iter().map(to_digest).collect()) };
            let built = handle_syn(&view, &syn, budget, &mut rng);
            let Ack { requests, deltas, compact, resend } = built.message;
            if compact.is_some() || resend.is_some() {
                return Err("a listed SYN got a compact answer or a resend".into());
            }
            let Some(Output::Ack { requests: want_requests, deltas: want_deltas }) = expected else {
                return Err(format!("a SYN is always answered with an ACK; the vector expects {expected:?}"));
            };
            let want: Vec<Digest> = want_requests.iter().map(to_digest).collect();
            if digest_set(&requests) != digest_set(&want) {
                return Err(format!("requests: got {:?}, want {:?}", digest_set(&requests), digest_set(&want)));
            }
            let got = deltas_to_map(&deltas)?;
            if !same_endpoints(want_deltas, &got) {
                return Err(format!("ACK deltas:\n  got  {got:?}\n  want {want_deltas:?}"));
            }
        }
        (Input::Ack { requests, deltas }, expected) => {
            let ack = Ack {
                requests: requests.iter().map(to_digest).collect(),
                deltas: to_deltas(&view, deltas),
                compact: None,
                resend: None,
            };
            let received = handle_ack(&view, &ack);
            view.apply(&received.deltas, now);
            let Ack2 { deltas, compact } = build_ack2(&view, &received.requests, budget, &mut rng).message;
            if compact.is_some() {
                return Err("full requests got a compact answer".into());
            }
            let Some(Output::Ack2 { deltas: want }) = expected else {
                return Err(format!("an ACK is always answered with an ACK2; the vector expects {expected:?}"));
            };
            let got = deltas_to_map(&deltas)?;
            if !same_endpoints(want, &got) {
                return Err(format!("ACK2 deltas:\n  got  {got:?}\n  want {want:?}"));
            }
        }
        (Input::Ack2 { deltas }, expected) => {
            if let Some(out) = expected {
                return Err(format!("nothing answers an ACK2; the vector expects {out:?}"));
            }
            let ack2 = Ack2 { deltas: to_deltas(&view, deltas), compact: None };
            let received = handle_ack2(&view, &ack2);
            view.apply(&received.deltas, now);
        }
    }
    if let Some(want) = &v.expect.state {
        let got = view_to_map(&view);
        if !same_endpoints(want, &got) {
            return Err(format!("state after:\n  got  {got:?}\n  want {want:?}"));
        }
    }
    Ok(())
}

fn vector_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read vector directory {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
}

/// Runs without the test harness (`harness = false` in Cargo.toml), so that the
/// `N passed, M failed` line is printed on every run, not only on failure.
fn main() {
    if let Err(e) = conformance_vectors() {
        eprintln!("{e}");
        std::process::exit(1);
    }
}

fn conformance_vectors() -> Result<(), String> {
    let mut dirs = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("vectors")];
    if let Ok(extra) = std::env::var("RUMORMILL_VECTORS") {
        dirs.extend(extra.split(':').filter(|s| !s.is_empty()).map(PathBuf::from));
    }
    let (mut passed, mut failed) = (0usize, Vec::new());
    for dir in &dirs {
        for file in vector_files(dir) {
            let outcome = std::fs::read_to_string(&file)
                .map_err(|e| format!("cannot be read: {e}"))
                .and_then(|text| serde_json::from_str::<Vector>(&text).map_err(|e| format!("does not parse: {e}")))
                .and_then(|v| run(&v).map_err(|e| format!("{}: {e}", v.name)));
            match outcome {
                Ok(()) => passed += 1,
                Err(e) => failed.push(format!("{}: {e}", file.display())),
            }
        }
    }
    for f in &failed {
        println!("FAILED {f}");
    }
    println!("conformance: {passed} passed, {} failed", failed.len());
    if passed == 0 {
        return Err(format!("no vectors found in {dirs:?}"));
    }
    if !failed.is_empty() {
        return Err(format!("{} of {} vectors failed", failed.len(), passed + failed.len()));
    }
    Ok(())
}
