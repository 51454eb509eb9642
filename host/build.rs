//! Builds the plugins that ship inside vsamrd (the SQL, CSV and object-store
//! backends and the in-memory example) so `vsamrd` runs with no file beside it.

use vsam_plugin_builder::{PluginCrate, build};

fn main() {
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
