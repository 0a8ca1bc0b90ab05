//! Benchmarks for the ESP dataplane: see benches/esp.rs and RESULTS.md.
