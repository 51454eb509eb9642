//! # vsamextfh: unmodified COBOL programs on the VSAM redirector
//!
//! A GnuCOBOL external file handler. A program compiled with
//! `cobc -x -fcallfh=vsamextfh prog.cob -lvsamextfh` calls [`vsamextfh`]
//! for every file statement. Files whose ASSIGN name is mapped (see
//! [`config`]) become VSAM requests to vsamrd; every other file goes on to
//! GnuCOBOL's own handler (`EXTFH`), so one binary runs against local files
//! or the redirector depending on its environment only.
//!
//! A problem the program is not expected to handle itself (a lost
//! connection, a missing dataset, a conflict between the dataset and the
//! program's description) is explained on stderr, prefixed `vsamextfh:`,
//! besides the FILE STATUS. A lost connection gives status 30, never a hang.
#![warn(missing_docs)]

pub mod alternate;
pub mod config;
pub mod fcd;
pub mod file;
pub mod glue;
pub mod link;
pub mod position;
pub mod rules;
pub mod status;

use config::Config;
use fcd::{Fcd, open_mode};
use file::{MappedFile, Outcome};
use link::Link;
use position::Condition;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// The bridge's state in a program: its configuration, the connection, and
/// the mapped files by their record area and ASSIGN name.
struct Bridge {
    config: Result<Config, String>,
    link: Option<Link>,
    files: HashMap<FileId, MappedFile>,
    /// Changes in the unit of work since its last commit point, for the
    /// checkpoints of `commit` durability.
    unit_changes: u32,
}

/// A mapped file's identity: its record area and ASSIGN name.
type FileId = (usize, String);

static BRIDGE: Mutex<Option<Bridge>> = Mutex::new(None);

/// What the last READ or WRITE of the mapped file whose record area is
/// at `record_address` left to put back into the program (see [`glue`]).
pub fn take_delivery(record_address: usize) -> Option<glue::Delivery> {
    let mut guard = BRIDGE.lock().unwrap_or_else(|p| p.into_inner());
    let bridge = guard.as_mut()?;
    bridge
        .files
        .iter_mut()
        .find(|((address, _), _)| *address == record_address)
        .and_then(|(_, file)| file.take_delivery())
}

/// Takes back the record the mapped file whose record area is at
/// `record_address` just read sequentially, whose relative record number
/// its RELATIVE KEY cannot hold (status 14): the next READ NEXT reads it
/// again.
pub fn step_back(record_address: usize) {
    let mut guard = BRIDGE.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(bridge) = guard.as_mut()
        && let Some((_, file)) = bridge
            .files
            .iter_mut()
            .find(|((address, _), _)| *address == record_address)
    {
        file.step_back();
    }
}

/// How a file is mapped, in one line (`VSAMFH_EXPLAIN`, `vsamfh-map`).
pub fn explain(assign: &str, mapping: Option<(&config::FileMapping, &config::MappedBy)>) -> String {
    let path = rules::resolve::resolve(assign, &|name| std::env::var(name).ok());
    match mapping {
        None => format!("file {assign}: not mapped, GnuCOBOL's own handler opens {path}"),
        Some((mapping, by)) => {
            let by = match by {
                config::MappedBy::Own => "its own mapping".to_string(),
                config::MappedBy::Rule(rule) => format!("the map rule {rule}"),
            };
            let define = if mapping.define {
                ", defined if missing"
            } else {
                ""
            };
            format!(
                "file {assign} ({path}): dataset {} by {by}{define}",
                mapping.dataset
            )
        }
    }
}

/// The UNLOCK statement of the mapped file whose record area is at
/// `record_address`: GnuCOBOL runs it without calling the file handler
/// (`cob_unlock_file`), so [`glue`] catches it here. Its status, or `None`
/// if the file is not the bridge's.
pub fn unlock_file(record_address: usize) -> Option<status::FileStatus> {
    let mut guard = BRIDGE.lock().unwrap_or_else(|p| p.into_inner());
    let bridge = guard.as_mut()?;
    let (_, file) = bridge
        .files
        .iter_mut()
        .find(|((address, _), _)| *address == record_address)?;
    Some(match &mut bridge.link {
        Some(link) => file.unlock(link),
        None => status::OK,
    })
}

/// The COMMIT (`commit` true) or ROLLBACK statement: GnuCOBOL runs them
/// in its runtime (`cob_commit`, `cob_rollback`) without calling the file
/// handler, so [`glue`] catches them and ends the unit here.
pub fn end_unit(commit: bool) {
    let mut guard = BRIDGE.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(bridge) = guard.as_mut() {
        // The statements have no FILE STATUS: a failure was said on stderr.
        let _ = bridge.end_unit(commit);
    }
}

/// GnuCOBOL's own handler.
type Handler = unsafe extern "C" fn(*mut u8, *mut u8) -> i32;

/// The EXTFH entry point: `opcode` is two bytes, `fcd` an FCD3.
///
/// # Safety
/// Called by the GnuCOBOL runtime with a valid opcode and FCD.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vsamextfh(opcode: *mut u8, fcd: *mut u8) -> i32 {
    if opcode.is_null() || fcd.is_null() {
        return 0;
    }
    // SAFETY: the runtime passes two opcode bytes and a whole FCD3.
    let (code, mut view) =
        unsafe { (u16::from_be_bytes([*opcode, *opcode.add(1)]), Fcd::new(fcd)) };
    let handled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut guard = BRIDGE.lock().unwrap_or_else(|p| p.into_inner());
        let bridge = guard.get_or_insert_with(Bridge::new);
        bridge.handle(code, &mut view)
    }));
    match handled {
        Ok(true) => 0,
        Ok(false) => match builtin() {
            // SAFETY: GnuCOBOL's EXTFH takes the same arguments.
            Some(handler) => unsafe { handler(opcode, fcd) },
            None => {
                view.set_status(status::PERMANENT);
                eprintln!(
                    "vsamextfh: GnuCOBOL's own file handler (EXTFH) is not in this program; link it with libcob"
                );
                0
            }
        },
        Err(_) => {
            view.set_status(status::PERMANENT);
            eprintln!(
                "vsamextfh: internal error on file {} (opcode {code:04X}); the file's state is unknown",
                view.file_name()
            );
            0
        }
    }
}

/// GnuCOBOL's `EXTFH`, looked up in the running program.
fn builtin() -> Option<Handler> {
    // SAFETY: dlsym with a NUL-terminated name; the symbol, when present,
    // is libcob's `int EXTFH(unsigned char *, FCD3 *)`.
    unsafe {
        let symbol = libc::dlsym(libc::RTLD_DEFAULT, c"EXTFH".as_ptr());
        (!symbol.is_null()).then(|| std::mem::transmute::<*mut libc::c_void, Handler>(symbol))
    }
}

/// Statement kinds by opcode.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Statement {
    Open(u8),
    Close,
    ReadNext,
    ReadPrevious,
    ReadKey,
    Start(Condition),
    Write,
    Rewrite,
    Delete,
    Unlock,
    Other,
}

fn statement(code: u16) -> Statement {
    match code {
        0xFA00 | 0xFA04 | 0xFA08 => Statement::Open(open_mode::INPUT),
        0xFA01 | 0xFA05 => Statement::Open(open_mode::OUTPUT),
        0xFA02 => Statement::Open(open_mode::IO),
        0xFA03 => Statement::Open(open_mode::EXTEND),
        0xFA80..=0xFA86 => Statement::Close,
        0xFAF5 | 0xFA8D | 0xFAD8 | 0xFAD9 | 0xFACA | 0xFA90 | 0xFAD4 | 0xFAD5 => {
            Statement::ReadNext
        }
        0xFAF9 | 0xFA8C | 0xFADE | 0xFADF => Statement::ReadPrevious,
        0xFAF6 | 0xFA8E | 0xFADA | 0xFADB | 0xFAC9 | 0xFA8F | 0xFAD6 | 0xFAD7 => Statement::ReadKey,
        0xFAE8 | 0xFAE9 => Statement::Start(Condition::Equal),
        0xFAEA => Statement::Start(Condition::Greater),
        0xFAEB => Statement::Start(Condition::GreaterOrEqual),
        0xFAFE => Statement::Start(Condition::Less),
        0xFAFF => Statement::Start(Condition::LessOrEqual),
        0xFAED => Statement::Start(Condition::First),
        0xFAEC => Statement::Start(Condition::Last),
        0xFAF3 | 0xFAE1..=0xFAE6 => Statement::Write,
        0xFAF4 => Statement::Rewrite,
        0xFAF7 => Statement::Delete,
        0xFA0E | 0x000F | 0xFADC | 0xFADD | 0x000C => Statement::Unlock,
        _ => Statement::Other,
    }
}

/// Sends what other files mapped to the same dataset as the file `id`
/// gathered, so that its statement sees their changes; the status of a
/// change the server refused, which the statement ends with instead.
fn settle_others(
    files: &mut HashMap<FileId, MappedFile>,
    id: &FileId,
    link: &mut Link,
) -> Option<status::FileStatus> {
    let dataset = files.get(id)?.dataset_name().to_owned();
    let mut refused = None;
    for (other, file) in files.iter_mut() {
        if other == id || !file.has_deferred() || file.dataset_name() != dataset {
            continue;
        }
        refused = refused.or(refusal(file.send_deferred(link)));
    }
    refused
}

/// The status sending gathered changes ended with, unless OK (a problem
/// is said on stderr).
fn refusal(sent: Outcome) -> Option<status::FileStatus> {
    match sent {
        Ok(status::OK) => None,
        Ok(status) => Some(status),
        Err(problem) => {
            eprintln!("vsamextfh: {}", problem.message);
            Some(problem.status)
        }
    }
}

impl Bridge {
    fn new() -> Self {
        Self {
            config: Config::from_env(),
            link: None,
            files: HashMap::new(),
            unit_changes: 0,
        }
    }

    /// Ends the program's unit of work on vsamrd: COMMIT (`commit`) or
    /// ROLLBACK. Nothing to do without a connection. A failure is said on
    /// stderr: the COMMIT and ROLLBACK statements have no FILE STATUS.
    /// Returns the status of a load's WRITE that the server refused when
    /// the WRITEs gathered were sent first, if one was.
    fn end_unit(&mut self, commit: bool) -> Option<status::FileStatus> {
        self.unit_changes = 0;
        let mut refused = None;
        for file in self.files.values_mut() {
            match (commit, &mut self.link) {
                (true, Some(link)) => refused = refused.or(refusal(file.send_deferred(link))),
                _ => file.drop_deferred(),
            }
            file.unit_ended(!commit);
        }
        if commit && self.files.values().any(MappedFile::refused) {
            // A change gathered was refused: the unit is not whole.
            self.roll_back_refused();
            return refused;
        }
        let link = self.link.as_mut()?;
        // The records READs locked are released at the commit point.
        for file in self.files.values_mut() {
            file.release_lock(link);
        }
        let Ok(connection) = link.connection() else {
            return refused;
        };
        let ended = link.run(async move {
            match commit {
                true => vsam_client::commit(&connection).await,
                false => vsam_client::rollback(&connection).await,
            }
        });
        if let Err(failure) = ended {
            let what = if commit { "COMMIT" } else { "ROLLBACK" };
            let why = match failure {
                link::Failure::Vsam(error) => error.to_string(),
                link::Failure::Lost(reason) => {
                    format!("the connection to vsamrd failed: {reason}")
                }
            };
            eprintln!(
                "vsamextfh: {what} failed: {why}; the changes since the last commit point are rolled back"
            );
            return refused.or(Some(status::PERMANENT));
        }
        refused
    }

    /// Counts a change of the unit of work, and commits at a checkpoint;
    /// the status of a checkpoint that failed, if it did.
    fn changed(&mut self) -> Option<status::FileStatus> {
        let every = self.config.as_ref().map_or(0, |c| c.checkpoint_records);
        self.unit_changes += 1;
        if every > 0 && self.unit_changes >= every {
            return self.end_unit(true);
        }
        None
    }

    /// Runs a statement on a mapped file; false if the file is not mapped
    /// (GnuCOBOL's handler takes it).
    fn handle(&mut self, code: u16, fcd: &mut Fcd) -> bool {
        let statement = statement(code);
        let id = (fcd.record_address(), fcd.file_name());
        if let Statement::Open(_) = statement
            && !self.files.contains_key(&id)
        {
            let assign = id.1.clone();
            let config = match &self.config {
                Ok(config) => config,
                Err(problem) => {
                    eprintln!(
                        "vsamextfh: OPEN {assign}: the bridge's configuration is wrong: {problem}"
                    );
                    fcd.set_status(status::PERMANENT);
                    return true;
                }
            };
            let env = |name: &str| std::env::var(name).ok();
            let mapping = match config.mapping(&assign, &env) {
                Ok(Some((mapping, by))) => {
                    if config.explain {
                        eprintln!("vsamextfh: {}", explain(&assign, Some((&mapping, &by))));
                    }
                    mapping
                }
                Ok(None) => {
                    if config.explain {
                        eprintln!("vsamextfh: {}", explain(&assign, None));
                    }
                    return false;
                }
                Err(problem) => {
                    eprintln!("vsamextfh: OPEN {assign}: {problem}");
                    fcd.set_status(status::PERMANENT);
                    return true;
                }
            };
            let duplicate_read_status = if config.duplicate_read_status == "00" {
                status::OK
            } else {
                status::DUPLICATE_ALTERNATE
            };
            let file = MappedFile::new(
                assign,
                mapping.clone(),
                config.read_ahead,
                duplicate_read_status,
                config.units(),
                fcd,
            );
            match file {
                Ok(file) => {
                    self.files.insert(id.clone(), file);
                }
                Err(problem) => {
                    eprintln!("vsamextfh: {}", problem.message);
                    fcd.set_status(problem.status);
                    return true;
                }
            }
        }
        if !self.files.contains_key(&id) {
            return false;
        }
        let link = match &mut self.link {
            Some(link) => link,
            None => {
                let config = self
                    .config
                    .as_ref()
                    .expect("a mapped file has a configuration");
                let options = match config.connect_options() {
                    Ok(options) => options,
                    Err(error) => {
                        eprintln!("vsamextfh: {error}");
                        fcd.set_status(status::PERMANENT);
                        return true;
                    }
                };
                match Link::new(
                    config.server.clone(),
                    options,
                    Duration::from_secs(config.timeout_secs),
                ) {
                    Ok(link) => self.link.insert(link),
                    Err(error) => {
                        eprintln!("vsamextfh: cannot start the bridge's runtime: {error}");
                        fcd.set_status(status::PERMANENT);
                        return true;
                    }
                }
            }
        };
        // What others gathered on the dataset goes first; what this file
        // gathered goes before its CLOSE, so that a refusal rolls the unit
        // back instead of the CLOSE committing it.
        let mut refused = settle_others(&mut self.files, &id, link);
        let file = self.files.get_mut(&id).expect("the file is mapped");
        if refused.is_none() && statement == Statement::Close && file.has_deferred() {
            refused = refusal(file.send_deferred(link));
        }
        if self.roll_back_refused() && statement != Statement::Close {
            fcd.set_status(refused.unwrap_or(status::PERMANENT));
            return true;
        }
        let link = self.link.as_mut().expect("connected above");
        let file = self.files.get_mut(&id).expect("the file is mapped");
        // Nothing from an earlier statement goes back to the program.
        file.take_delivery();
        let changes = matches!(
            statement,
            Statement::Write | Statement::Rewrite | Statement::Delete
        ) && file.in_unit();
        let closes_unit = matches!(statement, Statement::Close) && file.in_unit();
        let outcome: Outcome = match statement {
            Statement::Open(mode) => file.open(link, fcd, mode),
            Statement::Close => file.close(link, fcd),
            Statement::ReadNext => file
                .read_next(link, fcd, false)
                .and_then(|status| file.lock_read(link, fcd, status)),
            Statement::ReadPrevious => file
                .read_next(link, fcd, true)
                .and_then(|status| file.lock_read(link, fcd, status)),
            Statement::ReadKey => file
                .read_key(link, fcd)
                .and_then(|status| file.lock_read(link, fcd, status)),
            Statement::Start(condition) => file.start(link, fcd, condition),
            Statement::Write => file.write(link, fcd),
            Statement::Rewrite => file.rewrite(link, fcd),
            Statement::Delete => file.delete(link, fcd),
            Statement::Unlock => Ok(file.unlock(link)),
            Statement::Other => Err(file::Problem {
                status: status::PERMANENT,
                message: format!(
                    "file {}: operation {code:04X} is not supported by the bridge",
                    fcd.file_name()
                ),
            }),
        };
        let outcome = match (refused, outcome) {
            (Some(refused), Ok(_)) => Ok(refused),
            (_, outcome) => outcome,
        };
        match outcome {
            Ok(status) => {
                fcd.set_status(status);
                if closes_unit {
                    // CLOSE committed the whole unit on the server.
                    self.unit_changes = 0;
                } else if changes
                    && matches!(status, status::OK | status::DUPLICATE_ALTERNATE)
                    && let Some(failed) = self.changed()
                {
                    fcd.set_status(failed);
                }
            }
            Err(problem) => {
                eprintln!("vsamextfh: {}", problem.message);
                if problem.status == status::PERMANENT
                    && problem.message.contains("connection to vsamrd failed")
                {
                    file.forget(fcd);
                }
                fcd.set_status(problem.status);
            }
        }
        self.roll_back_refused();
        true
    }

    /// Rolls the unit of work back if the server refused a change a file
    /// gathered (said on stderr with the change): the unit lacks it and
    /// the changes sent after it, which the program was told were made, so
    /// none of the unit is kept, as for a failed COMMIT. True if it did.
    fn roll_back_refused(&mut self) -> bool {
        let mut refused = false;
        for file in self.files.values_mut() {
            refused |= file.take_refusal();
        }
        if refused {
            eprintln!(
                "vsamextfh: a change gathered for the unit of work was refused (above): the unit is rolled back, every WRITE, REWRITE and DELETE since the last commit point is undone"
            );
            self.end_unit(false);
        }
        refused
    }
}
