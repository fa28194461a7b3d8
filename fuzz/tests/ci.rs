//! Every fuzz target for its CI budget (a few seconds each; `XLVS_FUZZ_SECS` for longer runs):
//! the checked-in corpus is replayed first (each entry a regression test), then mutated with a
//! fixed seed. Targets on a loaded data plane need root and are recorded skipped without it.

use xlvs_fuzz::engine::check;
use xlvs_fuzz::targets::{frames, fwmark_import, ipvsadm, keepalived_conf, syncd, vrrp};

#[test]
fn keepalived_conf() {
    check(&keepalived_conf::TARGET, &mut keepalived_conf::run);
}

#[test]
fn vrrp_decoder() {
    check(&vrrp::TARGET, &mut vrrp::run);
}

#[test]
fn sync_decoder() {
    check(&syncd::TARGET, &mut syncd::run);
}

#[test]
fn iptables_import() {
    check(&fwmark_import::IPTABLES, &mut fwmark_import::iptables);
}

#[test]
fn nft_import() {
    check(&fwmark_import::NFT, &mut fwmark_import::nft);
}

/// Argument vectors, then `-R` files, on one loaded data plane.
#[test]
fn ipvsadm() {
    if !xlvs_tests::require_root() {
        return;
    }
    let mut h = ipvsadm::Ipvsadm::load();
    check(&ipvsadm::ARGV, &mut |i: &[u8]| h.argv(i));
    check(&ipvsadm::RESTORE, &mut |i: &[u8]| h.restore(i));
}

/// Malformed, random and well-formed frames through the XDP program, every output checked.
#[test]
fn frames() {
    if !xlvs_tests::require_root() {
        return;
    }
    let mut bed = frames::bed::Bed::load();
    check(&frames::TARGET, &mut |i: &[u8]| frames::run(&mut bed, i));
}
