//! Build script of the `nuaws` binary: exports the enabled cargo features (shown by `version`, as
//! nushell's own build script does) and the Nushell version read from Cargo.lock, and links
//! the binary with packed relative relocations on GNU/Linux.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=Cargo.lock");
    println!(
        "cargo:rustc-env=NU_FEATURES={}",
        std::env::var("CARGO_CFG_FEATURE").unwrap_or_default()
    );
    let lock = std::fs::read_to_string("Cargo.lock").unwrap_or_default();
    let version = lock
        .split("[[package]]")
        .find(|p| p.contains("name = \"nu-protocol\""))
        .and_then(|p| p.lines().find_map(|l| l.strip_prefix("version = \"")))
        .map(|v| v.trim_end_matches('"').to_string())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=NUAWS_NUSHELL_VERSION={version}");
    pack_relative_relocations();
}

/// The binary is position independent, so its 200,000 pointers in read-only data are relocated
/// at start: as RELA entries that is a 5 MB table, read whole by the loader into every process's
/// memory before `main`; packed as DT_RELR (glibc 2.36, binutils 2.38, lld) it is a few kB, and
/// every nuaws process is about 5 MB smaller (docs/performance.md, "Memory of a listing"). An
/// older GNU ld warns that it ignores the option and links as before.
fn pack_relative_relocations() {
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    if var("CARGO_CFG_TARGET_OS") == "linux" && var("CARGO_CFG_TARGET_ENV") == "gnu" {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}
