//! Build script of the `nuaws` binary: exports the enabled cargo features (shown by `version`, as
//! nushell's own build script does) and the Nushell version read from Cargo.lock.

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
}
