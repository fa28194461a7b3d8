//! Fuzzing that runs in CI: a bounded, seeded mutation engine ([`engine`]) over corpora kept in
//! `fuzz/corpus/<target>/`, and the harness of every target ([`targets`]): keepalived.conf,
//! ipvsadm argument vectors and `-R` files, the VRRP and connection-sync decoders, the
//! iptables-save and `nft list ruleset` importers, and the XDP packet path through
//! BPF_PROG_TEST_RUN with every emitted frame checked. `fuzz/tests/ci.rs` runs each for a few
//! seconds (`cargo test -p xlvs-fuzz`); `fuzz/libfuzzer/` runs the same harnesses under
//! cargo-fuzz for long local runs.

pub mod engine;
pub mod libfuzzer;
pub mod targets;
