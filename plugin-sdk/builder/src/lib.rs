//! Builds plugin crates of this workspace for `wasm32-wasip2` from a build
//! script, the way Substrate's wasm-builder builds runtimes: a nested cargo
//! with its own target directory (so it never waits on the outer build's
//! lock), the `plugin` profile, and a clean environment.
//!
//! The build script then embeds or points at the `.wasm` files through
//! environment variables given by [`build`].
#![warn(missing_docs)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// One plugin crate to build and the environment variable that receives the
/// path of its component.
pub struct PluginCrate<'a> {
    /// Cargo package name.
    pub package: &'a str,
    /// Directory of the crate, relative to the workspace root.
    pub dir: &'a str,
    /// Variable set with `cargo:rustc-env` to the `.wasm` path.
    pub env: &'a str,
}

/// The workspace root, found from the calling crate's manifest directory.
pub fn workspace_root() -> PathBuf {
    let manifest =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("run from a build script"));
    manifest
        .ancestors()
        .find(|dir| {
            std::fs::read_to_string(dir.join("Cargo.toml"))
                .map(|text| text.contains("[workspace]"))
                .unwrap_or(false)
        })
        .expect("the crate lives in a cargo workspace")
        .to_path_buf()
}

/// Builds the plugins and tells cargo where they are and when to rebuild.
///
/// Panics with the nested cargo's output when the build fails, so the error
/// shows in the outer build.
pub fn build(plugins: &[PluginCrate<'_>]) {
    let root = workspace_root();
    let target_dir = root.join("target").join("plugins");
    for watched in [
        "plugin-sdk/src",
        "plugin-sdk/wit",
        "plugin-sdk/Cargo.toml",
        "Cargo.lock",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    for plugin in plugins {
        println!("cargo:rerun-if-changed={}", root.join(plugin.dir).display());
    }
    println!("cargo:rerun-if-env-changed=VSAM_PLUGIN_PROFILE");

    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(&root)
        .args([
            "build",
            "--profile",
            "plugin",
            "--target",
            "wasm32-wasip2",
            "--target-dir",
        ])
        .arg(&target_dir);
    for plugin in plugins {
        command.args(["-p", plugin.package]);
    }
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if (name.starts_with("CARGO_") && name != "CARGO_HOME" && name != "CARGO_MAKEFLAGS")
            || name.starts_with("__CARGO")
            || name.starts_with("RUSTC_")
            || name == "RUSTFLAGS"
        {
            command.env_remove(name.as_ref());
        }
    }
    let output = command
        .output()
        .expect("cargo could not be started to build the plugins");
    if !output.status.success() {
        panic!(
            "building the WebAssembly plugins failed (is the wasm32-wasip2 target installed? \
             `rustup target add wasm32-wasip2`):\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    for plugin in plugins {
        let file = component_path(&target_dir, plugin.package);
        assert!(
            file.exists(),
            "plugin {} was built but {} is missing",
            plugin.package,
            file.display()
        );
        println!("cargo:rustc-env={}={}", plugin.env, file.display());
    }
}

fn component_path(target_dir: &Path, package: &str) -> PathBuf {
    target_dir
        .join("wasm32-wasip2")
        .join("plugin")
        .join(format!("{}.wasm", package.replace('-', "_")))
}
