//! Checks that a component is a backend plugin of the contract this host
//! speaks, before it is instantiated, with what to do when it is not.

use anyhow::Result;

/// Refuses bytes that are not a WebAssembly component, with what they are
/// instead (a half-written file, a core module, something else).
pub(super) fn check_component_header(name: &str, bytes: &[u8]) -> Result<()> {
    const MAGIC: &[u8] = b"\0asm";
    const COMPONENT: [u8; 4] = [0x0d, 0x00, 0x01, 0x00];
    const MODULE: [u8; 4] = [0x01, 0x00, 0x00, 0x00];
    match (bytes.get(..4), bytes.get(4..8)) {
        (Some(MAGIC), Some(version)) if version == COMPONENT => Ok(()),
        (Some(MAGIC), Some(version)) if version == MODULE => anyhow::bail!(
            "plugin {name} is a core WebAssembly module, not a component: build it for wasm32-wasip2 (cargo build --target wasm32-wasip2) or wrap it with `wasm-tools component new`"
        ),
        _ => anyhow::bail!(
            "plugin {name} is not a WebAssembly component ({} bytes, starting {:02x?}): a file still being written, or the wrong file",
            bytes.len(),
            &bytes[..bytes.len().min(8)]
        ),
    }
}

/// The contract's package, and the interface every backend exports.
const PACKAGE: &str = "vsam:backend/";
const STORE: &str = "vsam:backend/store";

/// Checks the contract versions a component's imports and exports name,
/// so a plugin built for another contract is refused with what to do
/// rather than with a type-matching error: the exported `store` must be of
/// this host's major version, and no import may be newer than the host's.
pub(super) fn check_contract<'a>(
    name: &str,
    imports: impl Iterator<Item = &'a str>,
    exports: impl Iterator<Item = &'a str>,
) -> Result<()> {
    let host = vsam_plugin_sdk::CONTRACT_VERSION;
    let parse = |version: &str| -> Option<(u64, u64)> {
        let mut parts = version.split('.');
        Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
    };
    let (major, minor) = parse(host).expect("the contract version is x.y.z");
    let exports: Vec<&str> = exports.collect();
    let Some(store) = exports.iter().find(|e| e.starts_with(STORE)) else {
        anyhow::bail!(
            "plugin {name} is not a backend plugin: it exports no {STORE} (it exports: {}); build it with vsam-plugin-sdk's export_backend! macro",
            if exports.is_empty() {
                "nothing".to_string()
            } else {
                exports.join(", ")
            }
        );
    };
    let version = store.split_once('@').map_or("", |(_, v)| v);
    if parse(version).is_none_or(|(m, _)| m != major) {
        anyhow::bail!(
            "plugin {name} implements contract vsam:backend@{version}, this vsamrd speaks vsam:backend@{host}: major versions must match; rebuild the plugin with a vsam-plugin-sdk for contract {major}.x, or run a vsamrd that speaks {version}",
            version = if version.is_empty() {
                "(unversioned)"
            } else {
                version
            }
        );
    }
    for import in imports.filter(|i| i.starts_with(PACKAGE)) {
        let version = import.split_once('@').map_or("", |(_, v)| v);
        match parse(version) {
            Some((m, n)) if m == major && n <= minor => {}
            _ => anyhow::bail!(
                "plugin {name} needs {import}, this vsamrd offers vsam:backend@{host}: run a vsamrd that offers it, or rebuild the plugin with a vsam-plugin-sdk for contract {host}"
            ),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check_contract;

    fn check(imports: &[&str], exports: &[&str]) -> Result<(), String> {
        check_contract("p", imports.iter().copied(), exports.iter().copied())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn plugins_of_another_contract_are_refused_with_what_to_do() {
        let log = "vsam:backend/log@1.0.0";
        assert!(
            check(
                &[log, "wasi:io/streams@0.2.6"],
                &["vsam:backend/store@1.0.0"]
            )
            .is_ok()
        );
        assert!(
            check(
                &[],
                &["vsam:backend/store@1.0.3", "vsam:backend/lookup@1.0.0"]
            )
            .is_ok()
        );
        let newer = check(&[log], &["vsam:backend/store@2.0.0"]).unwrap_err();
        assert!(
            newer.contains("implements contract vsam:backend@2.0.0"),
            "{newer}"
        );
        assert!(newer.contains("major versions must match"), "{newer}");
        let older = check(&[], &["vsam:backend/store@0.9.0"]).unwrap_err();
        assert!(older.contains("vsam:backend@0.9.0"), "{older}");
        let needs = check(
            &["vsam:backend/objects@1.4.0"],
            &["vsam:backend/store@1.0.0"],
        )
        .unwrap_err();
        assert!(
            needs.contains("needs vsam:backend/objects@1.4.0"),
            "{needs}"
        );
        let none = check(&[], &["wasi:cli/run@0.2.0"]).unwrap_err();
        assert!(none.contains("not a backend plugin"), "{none}");
        assert!(none.contains("wasi:cli/run@0.2.0"), "{none}");
    }
}
