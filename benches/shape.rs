//! Benchmarks of the geometry layer: tap-map construction and traversal.
fn main() {}
