//! COBOL programs for the bridge tests: compiled once per test binary with
//! GnuCOBOL, twice each: plainly (GnuCOBOL's own file handler) and with
//! `-fcallfh=vsamextfh` linked to the bridge, then run with or without
//! mappings to a vsamrd.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

/// The test programs' sources.
pub const SOURCES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/cobol");

/// Where the bridge library is: the build puts it beside the test binary's
/// dependencies.
pub fn bridge_library_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let deps = exe.parent().expect("target/<profile>/deps").to_path_buf();
    for dir in [
        deps.clone(),
        deps.parent().expect("target/<profile>").to_path_buf(),
    ] {
        if dir.join("libvsamextfh.so").exists() {
            return dir;
        }
    }
    panic!(
        "libvsamextfh.so is not in {} or its parent: build the vsam-extfh crate (cargo build -p vsam-extfh)",
        deps.display()
    );
}

/// A program compiled both ways.
pub struct Program {
    /// With GnuCOBOL's own file handler.
    pub native: PathBuf,
    /// With `-fcallfh=vsamextfh`.
    pub bridged: PathBuf,
}

/// Compiles `name.cbl` both ways (once per test binary).
pub fn program(name: &str) -> &'static Program {
    static BUILT: OnceLock<std::sync::Mutex<BTreeMap<String, &'static Program>>> = OnceLock::new();
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    let dir = DIR.get_or_init(|| tempfile::tempdir().unwrap()).path();
    let mut built = BUILT.get_or_init(Default::default).lock().unwrap();
    if let Some(program) = built.get(name) {
        return program;
    }
    let source = Path::new(SOURCES).join(format!("{name}.cbl"));
    let native = dir.join(format!("{name}-native"));
    let bridged = dir.join(format!("{name}-bridged"));
    cobc(&[source.as_os_str(), "-o".as_ref(), native.as_os_str()]);
    let lib = bridge_library_dir();
    let link = format!("-L{0} -lvsamextfh -Wl,-rpath,{0}", lib.display());
    cobc(&[
        "-fcallfh=vsamextfh".as_ref(),
        source.as_os_str(),
        "-o".as_ref(),
        bridged.as_os_str(),
        "-Q".as_ref(),
        link.as_ref(),
    ]);
    let program: &'static Program = Box::leak(Box::new(Program { native, bridged }));
    built.insert(name.to_string(), program);
    program
}

fn cobc(args: &[&std::ffi::OsStr]) {
    let output = Command::new("cobc")
        .arg("-x")
        .args(args)
        .output()
        .expect("cobc runs (GnuCOBOL is installed by scripts/setup)");
    assert!(
        output.status.success(),
        "cobc {args:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Runs a compiled program in `dir` with `env`; fails the test if it runs
/// longer than a minute.
pub fn run(binary: &Path, dir: &Path, env: &[(String, String)]) -> Output {
    let output = Command::new("timeout")
        .arg("60")
        .arg(binary)
        .current_dir(dir)
        .env_remove("VSAMFH_CONFIG")
        // cargo's library path may hold another build of the bridge: the
        // program's own RUNPATH names the one it was linked with.
        .env_remove("LD_LIBRARY_PATH")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .output()
        .expect("the program runs");
    assert_ne!(
        output.status.code(),
        Some(124),
        "{} did not finish within 60 s",
        binary.display()
    );
    output
}

/// The environment that maps each ASSIGN name to `PREFIX.NAME` on a
/// server, defining datasets on first OPEN OUTPUT.
pub fn mapping(server: &str, prefix: &str, assigns: &[&str]) -> Vec<(String, String)> {
    let mut env = vec![
        ("VSAMFH_SERVER".to_string(), server.to_string()),
        ("VSAMFH_DEFINE".to_string(), "1".to_string()),
        ("VSAMFH_TIMEOUT".to_string(), "20".to_string()),
    ];
    for assign in assigns {
        env.push((
            format!("VSAMFH_FILE_{assign}"),
            format!("{prefix}.{assign}"),
        ));
    }
    env
}

/// The lines where two outputs differ, for a failure message.
pub fn differences(left: &str, right: &str) -> String {
    let left: Vec<&str> = left.lines().collect();
    let right: Vec<&str> = right.lines().collect();
    let mut report = String::new();
    for i in 0..left.len().max(right.len()) {
        let (a, b) = (left.get(i), right.get(i));
        if a != b {
            report.push_str(&format!(
                "line {}:\n  GnuCOBOL: {}\n  bridge:   {}\n",
                i + 1,
                a.unwrap_or(&"<none>"),
                b.unwrap_or(&"<none>")
            ));
        }
    }
    report
}
