//! Joins and applies of arbitrary states and deltas, against the join laws.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    rumormill::fuzzing::merge(data);
});
