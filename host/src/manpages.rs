//! Manual pages from a command-line definition (clap_mangen): one page for
//! the command and one per subcommand (`vsamrd-check-config.8`), so that
//! `man vsamrd` and `man vsamr-idcams` work once installed.

use std::path::{Path, PathBuf};

/// Writes the pages of `command` in `section` into `dir` (made if
/// missing); returns their paths.
pub fn write(command: clap::Command, section: &str, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    use anyhow::Context;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot make {}", dir.display()))?;
    let mut command = command;
    command.build();
    let name = command.get_name().to_string();
    let mut pages = vec![(name.clone(), command.clone())];
    for sub in command.get_subcommands() {
        if sub.get_name() == "help" {
            continue;
        }
        let page = format!("{name}-{}", sub.get_name());
        pages.push((page.clone(), sub.clone().name(page)));
    }
    let mut written = Vec::new();
    for (page, command) in pages {
        let mut text = Vec::new();
        clap_mangen::Man::new(command)
            .section(section)
            .render(&mut text)
            .context("cannot render a manual page")?;
        let path = dir.join(format!("{page}.{section}"));
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}
