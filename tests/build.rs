//! Builds the plugins the end-to-end tests load from files: the shipped
//! ones and the misbehaving test plugin.

use vsam_plugin_builder::{PluginCrate, build};

fn main() {
    build(&[
        PluginCrate {
            package: "vsam-plugin-sql",
            dir: "plugins/sql",
            env: "VSAM_TEST_SQL_WASM",
        },
        PluginCrate {
            package: "vsam-plugin-csv",
            dir: "plugins/csv",
            env: "VSAM_TEST_CSV_WASM",
        },
        PluginCrate {
            package: "vsam-plugin-s3",
            dir: "plugins/s3",
            env: "VSAM_TEST_S3_WASM",
        },
        PluginCrate {
            package: "vsam-example-memory",
            dir: "examples/memory-plugin",
            env: "VSAM_TEST_MEMORY_WASM",
        },
        PluginCrate {
            package: "vsam-example-log",
            dir: "examples/log-plugin",
            env: "VSAM_TEST_LOG_WASM",
        },
        PluginCrate {
            package: "vsam-test-faulty-plugin",
            dir: "tests/plugins/faulty",
            env: "VSAM_TEST_FAULTY_WASM",
        },
        PluginCrate {
            package: "vsam-test-careless-plugin",
            dir: "tests/plugins/careless",
            env: "VSAM_TEST_CARELESS_WASM",
        },
    ]);
}
