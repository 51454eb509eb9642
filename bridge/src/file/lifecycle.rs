//! OPEN and CLOSE: the dataset found (or defined where GnuCOBOL would
//! create the file), checked against the program's description, and let
//! go with its CLOSE option.

use super::*;

impl MappedFile {
    /// OPEN in `mode` (one of [`open_mode`]).
    pub fn open(&mut self, link: &mut Link, fcd: &mut Fcd, mode: u8) -> Outcome {
        if self.mode.is_some() {
            return Ok(status::ALREADY_OPEN);
        }
        if self.closed_with_lock {
            return Ok(status::CLOSED_WITH_LOCK);
        }
        let connection = link.connection().map_err(|f| self.failed("OPEN", f))?;
        // As GnuCOBOL's own handler creates a file: at OPEN OUTPUT, and at
        // OPEN I-O or EXTEND of an OPTIONAL file; a missing file opened
        // otherwise answers 35.
        let may_define = self.mapping.define
            && mode != open_mode::INPUT
            && (mode == open_mode::OUTPUT || fcd.optional());
        if self.keys.len() > 1 && self.mapping.define && mode != open_mode::INPUT {
            alternate::ensure(
                link,
                &connection,
                self.spec(fcd),
                &self.keys[1..],
                may_define,
            )
            .map_err(|f| self.failed("OPEN (DEFINE AIX)", f))?;
        }
        let name = self.mapping.dataset.clone();
        let (intent, mut access_bits) = match mode {
            open_mode::INPUT => (OpenIntent::Input, 0),
            open_mode::OUTPUT => (OpenIntent::Output, access::RESET),
            _ => (OpenIntent::Update, 0),
        };
        if self.wants_unit && mode != open_mode::INPUT {
            if self.keys.len() > 1 {
                // Its alternate keys are read through paths, which show
                // committed records only: in a unit the program would not
                // find by an alternate key what it has just written.
                eprintln!(
                    "vsamextfh: file {} ({}) has alternate keys, read through paths that show committed records only; it runs in sync durability (every change durable at once, ROLLBACK cannot undo it)",
                    self.assign, self.mapping.dataset
                );
            } else {
                access_bits |= access::COMMIT;
            }
        }
        let open = |link: &mut Link, access_bits: u8| {
            let connection = connection.clone();
            let name = name.clone();
            link.run(async move {
                Dataset::open_with_access(&connection, &name, intent, access_bits, 2).await
            })
        };
        // A dataset that cannot take part in units (its backend cannot keep
        // them whole) runs in sync durability: said once, and the program
        // goes on.
        let open = |link: &mut Link| match open(link, access_bits) {
            Err(Failure::Vsam(refused))
                if access_bits & access::COMMIT != 0
                    && refused.status.message.contains("commit durability") =>
            {
                eprintln!(
                    "vsamextfh: file {} ({}): {}; it runs in sync durability (every change durable at once, ROLLBACK cannot undo it)",
                    self.assign, self.mapping.dataset, refused.status.message
                );
                open(link, access_bits & !access::COMMIT).map(|ds| (ds, false))
            }
            other => other.map(|ds| (ds, access_bits & access::COMMIT != 0)),
        };
        let mut result = status::OK;
        let mut in_unit = false;
        let dataset = match open(link) {
            Ok((dataset, unit)) => {
                in_unit = unit;
                Some(dataset)
            }
            Err(Failure::Vsam(e)) if e.status.fdbk == open_error::NOT_FOUND => {
                if mode == open_mode::INPUT && fcd.optional() {
                    result = status::OPTIONAL_MISSING;
                    None
                } else if may_define {
                    let spec = self.spec(fcd);
                    let connection = connection.clone();
                    link.run(async move { vsam_client::define(&connection, spec).await })
                        .map_err(|f| self.failed("OPEN (DEFINE)", f))?;
                    if mode != open_mode::OUTPUT && fcd.optional() {
                        result = status::OPTIONAL_MISSING;
                    }
                    let (dataset, unit) = open(link).map_err(|f| self.failed("OPEN", f))?;
                    in_unit = unit;
                    Some(dataset)
                } else if self.mapping.define && mode != open_mode::INPUT {
                    return Err(self.problem(
                        "OPEN",
                        status::FILE_MISSING,
                        "the dataset is not in vsamrd's catalog, and a file that is not OPTIONAL is created only by OPEN OUTPUT (as GnuCOBOL does); open it for output first, or define it (vsamr define)",
                    ));
                } else {
                    return Err(self.problem(
                        "OPEN",
                        status::FILE_MISSING,
                        "the dataset is not in vsamrd's catalog; define it (vsamr define) or set define = true in the bridge's mapping",
                    ));
                }
            }
            Err(failure) => return Err(self.failed("OPEN", failure)),
        };
        if let Some(dataset) = &dataset
            && let Err(conflict) = self.check_attributes(dataset.spec(), fcd)
        {
            let dataset = dataset.clone();
            let _ = link.run(async move { dataset.close().await });
            return Err(self.problem("OPEN", status::ATTRIBUTE_CONFLICT, conflict));
        }
        let reads = matches!(mode, open_mode::INPUT | open_mode::IO);
        if let Some(base) = &dataset
            && reads
            && self.keys.len() > 1
        {
            match alternate::open_paths(link, &connection, &self.mapping.dataset, &self.keys[1..]) {
                Ok(paths) => self.paths = paths,
                Err((failure, problem)) => {
                    let base = base.clone();
                    let _ = link.run(async move { base.close().await });
                    return Err(match failure {
                        Some(failure) => self.failed("OPEN", failure),
                        None => self.problem("OPEN", status::FILE_MISSING, problem),
                    });
                }
            }
        }
        self.dataset = dataset;
        self.in_unit = in_unit;
        self.reference = 0;
        self.drop_read_ahead();
        self.position = None;
        self.at_end = false;
        self.last_read = None;
        self.last_written = None;
        if mode == open_mode::EXTEND {
            self.last_written = self.last_key(link)?;
        }
        self.mode = Some(mode);
        fcd.set_open_mode(mode);
        Ok(result)
    }

    /// The catalog entry a DEFINE makes from the program's description.
    pub(super) fn spec(&self, fcd: &Fcd) -> DatasetSpec {
        let max = fcd.max_length() as u32;
        let organization = self.organization(fcd);
        let min = if organization == Organization::Rrds {
            max
        } else {
            (fcd.min_length() as u32).clamp(1, max)
        };
        let (key_offset, key_length) = match self.keys.first() {
            Some(key) => (key.offset as u32, key.length as u16),
            None => (0, 0),
        };
        DatasetSpec {
            name: self.mapping.dataset.clone(),
            organization,
            key_offset,
            key_length,
            min_record: min,
            max_record: max,
            codepage: "ascii".into(),
            backend: self.mapping.backend.clone(),
            layout: String::new(),
        }
    }

    pub(super) fn check_attributes(&self, spec: &DatasetSpec, fcd: &Fcd) -> Result<(), String> {
        // A relative file reads and writes an RRDS or a VRRDS (the server
        // answers 44 for a record an RRDS's slots cannot hold).
        let relative = self.org == FileOrg::Relative && spec.organization.relative();
        if !relative && spec.organization != self.organization(fcd) {
            return Err(format!(
                "the dataset is {} and the program's file is {:?}",
                spec.organization.name().to_uppercase(),
                self.org
            ));
        }
        if let Some(key) = self.keys.first()
            && (key.offset as u32, key.length as u16) != (spec.key_offset, spec.key_length)
        {
            return Err(format!(
                "the dataset's key is {} bytes at offset {}, the program's RECORD KEY {} bytes at {}",
                spec.key_length, spec.key_offset, key.length, key.offset
            ));
        }
        if spec.max_record < fcd.min_length() as u32 {
            return Err(format!(
                "the dataset's records are at most {} bytes, the program's at least {}",
                spec.max_record,
                fcd.min_length()
            ));
        }
        Ok(())
    }

    /// The highest key stored (for OPEN EXTEND), as 8 bytes for an RRDS.
    pub(super) fn last_key(&self, link: &mut Link) -> Result<Option<Vec<u8>>, Problem> {
        if self.org == FileOrg::Sequential {
            return Ok(None);
        }
        let Some(dataset) = self.dataset.clone() else {
            return Ok(None);
        };
        let options = RplOptions::direct().last_record();
        match link.run(async move { dataset.get(BROWSE, options, &[], 0, 0, 1).await }) {
            Ok(mut records) => Ok(records.pop().map(|r| self.record_key(&r))),
            Err(Failure::Vsam(e))
                if matches!(e.status.feedback(), fdbk::NOT_FOUND | fdbk::END_OF_DATA) =>
            {
                Ok(None)
            }
            Err(failure) => Err(self.failed("OPEN EXTEND", failure)),
        }
    }

    /// CLOSE. The WRITEs a load gathered go first; if the server refuses
    /// one, CLOSE still closes and answers its status.
    pub fn close(&mut self, link: &mut Link, fcd: &mut Fcd) -> Outcome {
        let option = fcd.close_option();
        if self.mode.is_none() {
            // As GnuCOBOL: a CLOSE of a file closed WITH LOCK (whose OPEN
            // answered 38) succeeds and lets it be opened again.
            return Ok(match std::mem::take(&mut self.closed_with_lock) {
                true => status::OK,
                false => status::NOT_OPEN,
            });
        }
        let sequential = self.org == FileOrg::Sequential;
        if sequential && option == CloseOption::Unit {
            // A file on no reel device: nothing to change, it stays open.
            return Ok(status::NO_UNIT);
        }
        let sent = self.send_deferred(link)?;
        self.mode = None;
        self.locked = None;
        self.drop_read_ahead();
        for path in std::mem::take(&mut self.paths) {
            let _ = link.run(async move { path.close().await });
        }
        fcd.set_open_mode(open_mode::CLOSED);
        let closed = match self.dataset.take() {
            Some(dataset) => link
                .run(async move { dataset.close().await })
                .map(|()| status::OK)
                .map_err(|f| self.failed("CLOSE", f)),
            None => Ok(status::OK),
        };
        self.closed_with_lock = option == CloseOption::Lock;
        match (sent, closed) {
            (status::OK, Ok(_)) if sequential && option == CloseOption::NoRewind => {
                Ok(status::NO_UNIT)
            }
            (status::OK, closed) => closed,
            (refused, Ok(_)) => Ok(refused),
            (_, failed) => failed,
        }
    }
}
