//! Arbitrary bytes as a message: never panics; what decodes re-encodes to itself.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    rumormill::fuzzing::decode(data);
});
