//! Arbitrary bytes on the decryption path: never panics; what opens is exactly
//! what sealing gives; what does not open is refused, counted, and changes nothing.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    rumormill::fuzzing::open(data);
});
