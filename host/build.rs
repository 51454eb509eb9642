//! Builds the plugins that ship inside vsamrd (the SQL and CSV backends and
//! the in-memory example) so `vsamrd` runs with no file beside it.

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
            package: "vsam-example-memory",
            dir: "examples/memory-plugin",
            env: "VSAM_BUILTIN_MEMORY",
        },
    ]);
}
