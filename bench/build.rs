//! Builds the log example plugin, whose per-call cost the benchmark
//! compares with the same store written in Python.

use vsam_plugin_builder::{PluginCrate, build};

fn main() {
    build(&[PluginCrate {
        package: "vsam-example-log",
        dir: "examples/log-plugin",
        env: "VSAM_BENCH_LOG_WASM",
    }]);
}
