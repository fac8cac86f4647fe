//! Fuzz target `args`: see ../harness.rs and ../README.md.
#![no_main]

#[path = "../harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::args(data));
