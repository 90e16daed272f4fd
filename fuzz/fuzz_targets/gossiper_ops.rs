//! A few Gossipers driven by arbitrary operations, invariants checked every step.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    rumormill::fuzzing::gossiper_ops(data);
});
