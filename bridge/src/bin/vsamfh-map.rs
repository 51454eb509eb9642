//! `vsamfh-map`: the dry run of the bridge's mapping. For every file of
//! the COBOL programs given (their SELECT ... ASSIGN clauses) and every
//! `--assign NAME`, prints where the bridge would send it with this
//! environment (`VSAMFH_CONFIG`, `VSAMFH_FILE_*`, `VSAMFH_MAP`, and the
//! `DD_*` variables and `COB_FILE_PATH` GnuCOBOL resolves names with):
//! the dataset and what mapped it, or GnuCOBOL's own handler and the path
//! it opens. Nothing is opened or defined. Two files (different ASSIGN
//! names) that land on one dataset would share its records: they are
//! named. Exits 1 if a file's mapping is refused or two files collide, 2
//! on a usage or configuration error.

use std::collections::BTreeMap;
use std::process::ExitCode;
use vsamextfh::config::Config;
use vsamextfh::rules::sources::assign_names;

const USAGE: &str = "usage: vsamfh-map [PROGRAM.cbl ...] [--assign NAME ...]";

fn main() -> ExitCode {
    let mut names: Vec<String> = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--assign" => match args.next() {
                Some(name) => names.push(name),
                None => {
                    eprintln!("vsamfh-map: --assign needs a name\n{USAGE}");
                    return ExitCode::from(2);
                }
            },
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            path => match std::fs::read_to_string(path) {
                Ok(source) => names.extend(assign_names(&source)),
                Err(error) => {
                    eprintln!("vsamfh-map: {path}: {error}");
                    return ExitCode::from(2);
                }
            },
        }
    }
    if names.is_empty() {
        eprintln!("vsamfh-map: no files: give COBOL sources or --assign names\n{USAGE}");
        return ExitCode::from(2);
    }
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(problem) => {
            eprintln!("vsamfh-map: the bridge's configuration is wrong: {problem}");
            return ExitCode::from(2);
        }
    };
    let env = |name: &str| std::env::var(name).ok();
    let mut refused = false;
    // Dataset -> the ASSIGN names mapped to it.
    let mut by_dataset: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for name in &names {
        match config.mapping(name, &env) {
            Ok(Some((mapping, by))) => {
                println!("{}", vsamextfh::explain(name, Some((&mapping, &by))));
                let files = by_dataset.entry(mapping.dataset.clone()).or_default();
                if !files.contains(&name.as_str()) {
                    files.push(name);
                }
            }
            Ok(None) => println!("{}", vsamextfh::explain(name, None)),
            Err(problem) => {
                refused = true;
                println!("file {name}: refused: {problem}");
            }
        }
    }
    for (dataset, files) in &by_dataset {
        if files.len() > 1 {
            refused = true;
            println!(
                "dataset {dataset}: {} files land on it and would share its records: {}; give them mappings of their own, or a template that tells them apart",
                files.len(),
                files.join(", ")
            );
        }
    }
    if refused {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
