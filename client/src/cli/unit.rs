//! `vsamr unit`: several changes as one unit of work, for scripts. Every
//! change of the script is made in `commit` durability on one connection,
//! then COMMIT makes them durable together; the first that fails rolls all
//! of them back, and the command fails naming its line.

use super::Output;
use super::commands::{
    EraseArgs, PutArgs, UpdateArgs, describe, erase_record, insert_record, update_record,
};
use super::records::Codec;
use anyhow::{Context, Result, bail};
use clap::{Args, Parser};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;
use vsam_client::{Connection, Dataset, OpenIntent};

/// `vsamr unit`.
#[derive(Args)]
pub struct UnitArgs {
    /// The script: one change per line (`put NAME RECORD [--rrn N]`,
    /// `update NAME RECORD [--rba N | --rrn N]`, `erase NAME [KEY] [--rrn
    /// N]`, quoted as in a shell; `#` starts a comment); `-` reads it from
    /// standard input.
    pub script: PathBuf,
    /// Run every change, then roll the unit back instead of committing it
    /// (a rehearsal: the changes are checked, nothing is stored).
    #[arg(long)]
    pub rollback: bool,
}

/// One line of a script: the arguments of the command of the same name.
#[derive(Debug, Parser)]
#[command(no_binary_name = true)]
enum Step {
    /// Inserts a record.
    Put(PutArgs),
    /// Replaces a record.
    Update(UpdateArgs),
    /// Erases a record.
    Erase(EraseArgs),
}

impl Step {
    fn dataset(&self) -> &str {
        match self {
            Step::Put(PutArgs { name, .. })
            | Step::Update(UpdateArgs { name, .. })
            | Step::Erase(EraseArgs { name, .. }) => name,
        }
    }
}

/// The script's changes with their line numbers, checked before anything
/// is sent.
fn parse(text: &str) -> Result<Vec<(usize, Step)>> {
    let mut steps = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some(words) = shlex::split(line) else {
            bail!("line {number}: a quote is not closed: {line}");
        };
        let step = Step::try_parse_from(words)
            .map_err(|e| anyhow::anyhow!("line {number}: {}", e.to_string().trim()))?;
        steps.push((number, step));
    }
    if steps.is_empty() {
        bail!("the script has no change (lines put, update, erase)");
    }
    Ok(steps)
}

/// Runs the script as one unit of work.
pub async fn run(conn: &Connection, args: UnitArgs, output: Output) -> Result<()> {
    let text = if crate::cli::stdout::is_standard_stream(&args.script) {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading the script from standard input")?;
        text
    } else {
        std::fs::read_to_string(&args.script)
            .with_context(|| format!("reading the script {}", args.script.display()))?
    };
    let steps = parse(&text)?;
    let mut open: BTreeMap<String, (Dataset, Codec)> = BTreeMap::new();
    for (number, step) in &steps {
        let done = apply(conn, &mut open, step, output).await;
        if let Err(error) = done {
            let _ = vsam_client::rollback(conn).await;
            bail!(
                "line {number}: {error:#}\nthe unit was rolled back: none of the script's {} changes is stored",
                steps.len()
            );
        }
    }
    if args.rollback {
        vsam_client::rollback(conn).await?;
        outln!(
            "{} changes made and rolled back (--rollback): nothing is stored",
            steps.len()
        );
    } else {
        vsam_client::commit(conn)
            .await
            .context("COMMIT failed: the unit was rolled back, none of its changes is stored")?;
        outln!("{} changes committed", steps.len());
    }
    for (_, (dataset, _)) in open {
        dataset.close().await?;
    }
    Ok(())
}

/// Makes one change, opening its dataset in `commit` durability first if
/// the script has not touched it before.
async fn apply(
    conn: &Connection,
    open: &mut BTreeMap<String, (Dataset, Codec)>,
    step: &Step,
    output: Output,
) -> Result<()> {
    let name = step.dataset().to_ascii_uppercase();
    if !open.contains_key(&name) {
        let dataset = Dataset::open_with_access(
            conn,
            &name,
            OpenIntent::Update,
            vsam_protocol::access::COMMIT,
            1,
        )
        .await?;
        let codec = Codec::new(dataset.spec(), output)?;
        open.insert(name.clone(), (dataset, codec));
    }
    let (dataset, codec) = &open[&name];
    match step {
        Step::Put(put) => {
            let written = insert_record(dataset, codec, &put.record, put.rrn).await?;
            outln!("{name}: inserted {}", describe(codec, &written));
        }
        Step::Update(update) => {
            let written =
                update_record(dataset, codec, &update.record, update.rba.or(update.rrn)).await?;
            outln!("{name}: updated {}", describe(codec, &written));
        }
        Step::Erase(erase) => {
            erase_record(dataset, codec, erase.key.as_deref(), erase.rrn).await?;
            outln!("{name}: erased");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_are_read_line_by_line_with_quotes_and_comments() {
        let steps = parse(
            "# move the balance\nput PROD.CUST '000003NEW ONE'\n\nupdate prod.cust \"000001 SMITH\"\nerase PROD.SLOTS --rrn 4\n",
        )
        .unwrap();
        let lines: Vec<usize> = steps.iter().map(|(n, _)| *n).collect();
        assert_eq!(lines, [2, 4, 5]);
        assert!(matches!(&steps[0].1, Step::Put(put) if put.record == "000003NEW ONE"));
        assert!(matches!(&steps[1].1, Step::Update(update) if update.name == "prod.cust"));
        assert!(matches!(
            &steps[2].1,
            Step::Erase(EraseArgs { rrn: Some(4), .. })
        ));
        let error = parse("put A\nfrobnicate B\n").unwrap_err().to_string();
        assert!(error.starts_with("line 1:"), "{error}");
        let error = parse("put A 'open quote\n").unwrap_err().to_string();
        assert!(error.contains("quote"), "{error}");
        assert!(parse("# nothing\n").is_err());
    }
}
