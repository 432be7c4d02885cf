//! Release builds hand the linker `symbol-order.txt`, the functions the
//! server runs (start-up and every kind of request the bench measures), so
//! that it lays them out side by side at the start of `.text`.
//!
//! Why: the kernel maps a binary's cached code 64 KiB around every page a
//! process touches, so a few thousand functions scattered over 9 MiB of code
//! keep most of it resident. Laid out together they fit in about 4 MiB; the
//! server's resident set under read load drops by about 3.5 MiB (bench/README.md,
//! "The code the server runs, laid out together"). The code itself is the
//! same: instructions per request do not change.
//!
//! Only where the linker is LLD, which understands `--symbol-ordering-file`:
//! rustc's own `rust-lld`, the default for x86_64-unknown-linux-gnu since
//! Rust 1.90, unless a linker is configured. `just bench --layout`
//! regenerates the file; names no longer in the binary (a toolchain or
//! dependency update changes their hashes) are skipped.
//! `PROJECTS_API_SYMBOL_ORDER=off` links without it.

use std::env;
use std::path::Path;
use std::process::Command;

const ORDER_FILE: &str = "symbol-order.txt";
/// The first Rust release that links x86_64-unknown-linux-gnu with rust-lld.
const LLD_BY_DEFAULT_SINCE: (u32, u32) = (1, 90);

fn main() {
    println!("cargo::rerun-if-changed={ORDER_FILE}");
    println!("cargo::rerun-if-env-changed=PROJECTS_API_SYMBOL_ORDER");
    let order = Path::new(&env::var("CARGO_MANIFEST_DIR").unwrap_or_default()).join(ORDER_FILE);
    if !order.is_file() || !links_with_rust_lld() {
        return;
    }
    println!(
        "cargo::rustc-link-arg-bin=projects-api=-Wl,--symbol-ordering-file={}",
        order.display()
    );
    println!("cargo::rustc-link-arg-bin=projects-api=-Wl,--no-warn-symbol-ordering");
}

/// A release build for x86_64-unknown-linux-gnu by a rustc that links with
/// its own LLD, with no linker configured over that default.
fn links_with_rust_lld() -> bool {
    let var = |key: &str| env::var(key).unwrap_or_default();
    if var("PROJECTS_API_SYMBOL_ORDER") == "off"
        || var("PROFILE") != "release"
        || var("TARGET") != "x86_64-unknown-linux-gnu"
        // Cargo sets RUSTC_LINKER when `target.<triple>.linker` is configured.
        || env::var_os("RUSTC_LINKER").is_some()
    {
        return false;
    }
    let flags = var("CARGO_ENCODED_RUSTFLAGS");
    if ["linker", "link-self-contained", "fuse-ld"]
        .iter()
        .any(|flag| flags.contains(flag))
    {
        return false;
    }
    rustc_version(&var("RUSTC")).is_some_and(|version| version >= LLD_BY_DEFAULT_SINCE)
}

/// (major, minor) of `rustc -vV`'s `release:` line.
fn rustc_version(rustc: &str) -> Option<(u32, u32)> {
    let output = Command::new(if rustc.is_empty() { "rustc" } else { rustc })
        .arg("-vV")
        .output()
        .ok()?;
    let text = String::from_utf8(output.stdout).ok()?;
    let release = text
        .lines()
        .find_map(|line| line.strip_prefix("release: "))?;
    let mut parts = release.split(['.', '-']);
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}
