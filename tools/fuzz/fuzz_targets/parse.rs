//! Fuzz target `parse`: arbitrary bytes through datagram and stream framing, every typed accessor,
//! request screening and response writing. Nothing may panic; see `src/exercise.rs`.

#![no_main]
// The repository's clippy.toml keeps files out of the sans-I/O core; this is a separate program,
// and `fuzz_target!` expands to a `File::create` for libFuzzer's RUST_LIBFUZZER_DEBUG_PATH.
#![allow(clippy::disallowed_methods)]

#[path = "../src/exercise.rs"]
mod exercise;

libfuzzer_sys::fuzz_target!(|data: &[u8]| exercise::exercise(data));
