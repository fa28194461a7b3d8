//! Builds the XDP program (crate `ebpf`) for bpfel-unknown-none with the pinned nightly toolchain
//! (`xlvs-ebpf`, made by scripts/setup.sh) and bpf-linker, then leaves the object in OUT_DIR for
//! `include_bytes_aligned!`. The BPF target dir is shared by every profile of the host build, so
//! the program is compiled once, not once per profile.
//!
//! XLVS_EBPF_SKIP=1 writes an empty object instead (for `cargo check`/clippy on machines without the
//! toolchain); such a build cannot load the data plane and says so at run time.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const PROGRAM: &str = "xlvs-xdp";

fn main() {
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    let object = out_dir.join(PROGRAM);
    println!("cargo:rerun-if-env-changed=XLVS_EBPF_SKIP");
    println!("cargo:rerun-if-env-changed=XLVS_EBPF_TOOLCHAIN");
    if env::var("XLVS_EBPF_SKIP").is_ok_and(|v| v == "1" || v == "true") {
        std::fs::write(&object, b"").expect("write empty object");
        return;
    }
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("manifest dir"));
    let ebpf_dir = manifest.join("../ebpf");
    let common_dir = manifest.join("../ebpf-common");
    for dir in [&ebpf_dir, &common_dir] {
        println!("cargo:rerun-if-changed={}", dir.display());
    }
    let toolchain = env::var("XLVS_EBPF_TOOLCHAIN").unwrap_or_else(|_| "xlvs-ebpf".into());
    let target_dir = bpf_target_dir(&out_dir);

    let mut cmd = Command::new("rustup");
    cmd.args(["run", &toolchain, "cargo", "build", "--quiet", "--release"])
        .args(["--package", "ebpf", "--bin", PROGRAM])
        .args(["--target", "bpfel-unknown-none", "-Z", "build-std=core"])
        .arg("--target-dir")
        .arg(&target_dir)
        .current_dir(&ebpf_dir)
        // BTF needs debuginfo for every crate (core included); v3 gives 32-bit jumps and atomics.
        .env(
            "CARGO_ENCODED_RUSTFLAGS",
            [
                "--cfg=bpf_target_arch=\"x86_64\"",
                "-Cdebuginfo=2",
                "-Clink-arg=--btf",
                "-Ctarget-cpu=v3",
            ]
            .join("\x1f"),
        );
    for key in [
        "RUSTC",
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTFLAGS",
        "CARGO_TARGET_DIR",
    ] {
        cmd.env_remove(key);
    }
    let output = cmd.output().unwrap_or_else(|e| {
        fail(&format!(
            "cannot run `rustup run {toolchain} cargo`: {e}; run scripts/setup.sh first"
        ))
    });
    if !output.status.success() {
        fail(&format!(
            "building the XDP program failed (toolchain {toolchain}; run scripts/setup.sh if it is missing):\n{}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let built = target_dir.join("bpfel-unknown-none/release").join(PROGRAM);
    if let Err(e) = std::fs::copy(&built, &object) {
        fail(&format!(
            "copy {} -> {}: {e}",
            built.display(),
            object.display()
        ));
    }
}

/// Reports a build failure without a build-script backtrace burying the compiler's message.
fn fail(msg: &str) -> ! {
    eprintln!("{msg}");
    std::process::exit(1);
}

/// `<target>/bpf` for an OUT_DIR of the form `<target>/<profile>/build/<pkg>-<hash>/out`.
fn bpf_target_dir(out_dir: &Path) -> PathBuf {
    out_dir
        .ancestors()
        .nth(4)
        .map(|t| t.join("bpf"))
        .unwrap_or_else(|| out_dir.join("bpf"))
}
