//! Builds the plugins that ship inside vsamrd (the SQL, CSV and object-store
//! backends and the in-memory example) so `vsamrd` runs with no file beside it.

use vsam_plugin_builder::{PluginCrate, build};

/// The git revision the server is built from (`vsamrd --version`), or what
/// says it is not known (a build outside a git checkout).
fn git_revision() -> String {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .ok()
            .filter(|out| out.status.success())
            .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    match git(&["rev-parse", "--short=12", "HEAD"]) {
        Some(revision) => match git(&["status", "--porcelain", "--untracked-files=no"]) {
            Some(changes) if !changes.is_empty() => format!("{revision} with local changes"),
            _ => revision,
        },
        None => "unknown revision".to_string(),
    }
}

fn main() {
    println!("cargo:rustc-env=VSAMRD_GIT_REVISION={}", git_revision());
    for watched in ["../.git/HEAD", "../.git/index", "../.git/refs"] {
        println!("cargo:rerun-if-changed={watched}");
    }
    build(&[
        PluginCrate {
            package: "vsam-plugin-sql",
            dir: "plugins/sql",
            env: "VSAM_BUILTIN_SQL",
        },
        PluginCrate {
            package: "vsam-plugin-csv",
            dir: "plugins/csv",
            env: "VSAM_BUILTIN_CSV",
        },
        PluginCrate {
            package: "vsam-plugin-s3",
            dir: "plugins/s3",
            env: "VSAM_BUILTIN_S3",
        },
        PluginCrate {
            package: "vsam-example-memory",
            dir: "examples/memory-plugin",
            env: "VSAM_BUILTIN_MEMORY",
        },
    ]);
}
