//! Two link options for release builds that shrink what the server keeps
//! resident without changing its code (instructions per request do not
//! move; bench/README.md, "The code the server runs, laid out together"):
//!
//! - `symbol-order.txt`, the functions the server runs (start-up and every
//!   kind of request the bench sends), which the linker lays out side by
//!   side at the start of `.text`. The kernel maps a binary's cached code
//!   64 KiB around every page a process touches, so a few thousand functions
//!   scattered over 9 MiB of code kept most of it resident; laid out
//!   together, about 3.3 MiB less. `just bench --layout` regenerates the
//!   file; names no longer in the binary (a toolchain or dependency update
//!   changes their hashes) are skipped.
//! - Packed relative relocations (`-z pack-relative-relocs`, DT_RELR): the
//!   dynamic loader reads every relocation of the position-independent
//!   binary at start, and 22,000 of them took 536 KiB as RELA entries,
//!   resident for good; packed, 10 KiB. The loader must know DT_RELR (glibc
//!   2.36 or later), so only when the build machine's glibc does.
//!
//! Only where the linker is LLD: rustc's own `rust-lld`, the default for
//! x86_64-unknown-linux-gnu since Rust 1.90, unless a linker is configured.
//! `PROJECTS_API_LINK_TUNING=off` links without either.

use std::env;
use std::path::Path;
use std::process::Command;

const ORDER_FILE: &str = "symbol-order.txt";
/// The first Rust release that links x86_64-unknown-linux-gnu with rust-lld.
const LLD_BY_DEFAULT_SINCE: (u32, u32) = (1, 90);
/// The first glibc whose loader applies DT_RELR relocations.
const RELR_SINCE_GLIBC: (u32, u32) = (2, 36);
const BIN: &str = "projects-api";

fn main() {
    println!("cargo::rerun-if-changed={ORDER_FILE}");
    println!("cargo::rerun-if-env-changed=PROJECTS_API_LINK_TUNING");
    if !links_with_rust_lld() {
        return;
    }
    let order = Path::new(&env::var("CARGO_MANIFEST_DIR").unwrap_or_default()).join(ORDER_FILE);
    if order.is_file() {
        println!(
            "cargo::rustc-link-arg-bin={BIN}=-Wl,--symbol-ordering-file={}",
            order.display()
        );
        println!("cargo::rustc-link-arg-bin={BIN}=-Wl,--no-warn-symbol-ordering");
    }
    if glibc_version().is_some_and(|version| version >= RELR_SINCE_GLIBC) {
        println!("cargo::rustc-link-arg-bin={BIN}=-Wl,-z,pack-relative-relocs");
    }
}

/// A release build for x86_64-unknown-linux-gnu by a rustc that links with
/// its own LLD, with no linker configured over that default.
fn links_with_rust_lld() -> bool {
    let var = |key: &str| env::var(key).unwrap_or_default();
    if var("PROJECTS_API_LINK_TUNING") == "off"
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
    let rustc = var("RUSTC");
    let version = output_of(if rustc.is_empty() { "rustc" } else { &rustc }, &["-vV"]);
    version
        .as_deref()
        .and_then(|text| text.lines().find_map(|line| line.strip_prefix("release: ")))
        .and_then(major_minor)
        .is_some_and(|version| version >= LLD_BY_DEFAULT_SINCE)
}

/// The build machine's glibc, from `getconf GNU_LIBC_VERSION` ("glibc 2.36").
fn glibc_version() -> Option<(u32, u32)> {
    let text = output_of("getconf", &["GNU_LIBC_VERSION"])?;
    major_minor(text.trim().strip_prefix("glibc ")?)
}

fn output_of(program: &str, args: &[&str]) -> Option<String> {
    let output = Command::new(program).args(args).output().ok()?;
    if !output.status.success() {
        return None;
    }
    String::from_utf8(output.stdout).ok()
}

/// (major, minor) of "1.95.0", "2.36" or "1.96.0-nightly".
fn major_minor(version: &str) -> Option<(u32, u32)> {
    let mut parts = version.split(['.', '-']);
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}
