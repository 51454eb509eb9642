//! Which records a REPRO copies: IDCAMS's FROMKEY and TOKEY (a KSDS's
//! keys, generic when shorter than the key), SKIP and COUNT.

use crate::cli::records::Codec;
use anyhow::{Result, bail};
use clap::Args;
use vsam_client::Organization;
use vsam_protocol::DatasetSpec;

/// The selection options of load and unload.
#[derive(Args, Debug, Clone, Default)]
pub struct SelectArgs {
    /// FROMKEY: start at this key (KSDS; shorter than the key: generic,
    /// the first key it begins).
    #[arg(long)]
    from_key: Option<String>,
    /// TOKEY: end at this key (KSDS; shorter than the key: generic, the
    /// last key it begins).
    #[arg(long)]
    to_key: Option<String>,
    /// SKIP: leave out this many records first (not with --from-key).
    #[arg(long, default_value_t = 0)]
    skip: usize,
    /// COUNT: copy at most this many records.
    #[arg(long)]
    count: Option<usize>,
}

/// What to do with the next record of the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Copy it.
    Take,
    /// Leave it out and go on.
    Pass,
    /// Leave it and every record after it out.
    Stop,
}

/// The selection, checked against the dataset.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// FROMKEY.
    pub from_key: Option<Vec<u8>>,
    to_key: Option<Vec<u8>>,
    skip: usize,
    count: Option<usize>,
    /// Records passed over by SKIP so far.
    skipped: usize,
    /// Records taken so far.
    taken: usize,
    /// The dataset's key field: offset and length.
    key_field: (usize, usize),
}

impl Selection {
    /// The selection `args` ask for on `spec`'s records, keys given as
    /// `codec` reads them.
    pub fn new(args: &SelectArgs, spec: &DatasetSpec, codec: &Codec) -> Result<Self> {
        let key = |text: &Option<String>, what: &str| -> Result<Option<Vec<u8>>> {
            let Some(text) = text else {
                return Ok(None);
            };
            if spec.organization != Organization::Ksds {
                bail!(
                    "{}: --{what} selects by key, and the dataset is an {}; select its records with --skip and --count",
                    spec.name,
                    spec.organization.name().to_ascii_uppercase()
                );
            }
            Ok(Some(codec.parse(text, "key")?))
        };
        let from_key = key(&args.from_key, "from-key")?;
        let to_key = key(&args.to_key, "to-key")?;
        Self::of(spec, from_key, to_key, args.skip, args.count).map_err(|problem| {
            anyhow::anyhow!(
                "{}",
                problem
                    .replace("FROMKEY", "--from-key")
                    .replace("TOKEY", "--to-key")
                    .replace("SKIP", "--skip")
            )
        })
    }

    /// The selection of keys given as bytes (FROMKEY and TOKEY, checked
    /// to be 1 to the key length of `spec`), SKIP and COUNT. The problem
    /// names IDCAMS's keywords.
    pub fn of(
        spec: &DatasetSpec,
        from_key: Option<Vec<u8>>,
        to_key: Option<Vec<u8>>,
        skip: usize,
        count: Option<usize>,
    ) -> Result<Self, String> {
        let key_length = usize::from(spec.key_length);
        for (key, what) in [(&from_key, "FROMKEY"), (&to_key, "TOKEY")] {
            let Some(key) = key else { continue };
            if spec.organization != Organization::Ksds {
                return Err(format!(
                    "{}: {what} selects by key, and the dataset is an {}; select its records with SKIP and COUNT",
                    spec.name,
                    spec.organization.name().to_ascii_uppercase()
                ));
            }
            if key.is_empty() || key.len() > key_length {
                return Err(format!(
                    "{}: {what} is {} bytes, keys of this dataset are 1 to {key_length} bytes (shorter: generic)",
                    spec.name,
                    key.len()
                ));
            }
        }
        if from_key.is_some() && skip > 0 {
            return Err(
                "SKIP and FROMKEY both say where to start: give one (as IDCAMS takes SKIP or FROMKEY)"
                    .into(),
            );
        }
        if let (Some(from), Some(to)) = (&from_key, &to_key)
            && !within_to(from, to)
        {
            return Err("FROMKEY comes after TOKEY: no record is selected".into());
        }
        Ok(Self {
            from_key,
            to_key,
            skip,
            count,
            skipped: 0,
            taken: 0,
            key_field: (spec.key_offset as usize, key_length),
        })
    }

    /// The verdict on the next record of the input (`keyed`: the input is
    /// in key order, so the first key past TOKEY ends it). A record short
    /// of its key field is outside any key range.
    pub fn judge(&mut self, record: &[u8], keyed: bool) -> Verdict {
        if self.count.is_some_and(|count| self.taken >= count) {
            return Verdict::Stop;
        }
        if self.from_key.is_some() || self.to_key.is_some() {
            let (offset, length) = self.key_field;
            let Some(key) = record.get(offset..offset + length) else {
                return Verdict::Pass;
            };
            if self
                .from_key
                .as_ref()
                .is_some_and(|from| key < from.as_slice())
            {
                return Verdict::Pass;
            }
            if let Some(to) = &self.to_key
                && !within_to(key, to)
            {
                return if keyed { Verdict::Stop } else { Verdict::Pass };
            }
        }
        if self.skipped < self.skip {
            self.skipped += 1;
            return Verdict::Pass;
        }
        self.taken += 1;
        Verdict::Take
    }
}

/// True if `key` is at or before TOKEY `to`: a key that begins with a
/// generic `to` is within it.
fn within_to(key: &[u8], to: &[u8]) -> bool {
    &key[..key.len().min(to.len())] <= to
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Output;

    fn spec(organization: Organization) -> DatasetSpec {
        DatasetSpec {
            name: "T.KS".into(),
            organization,
            key_offset: 1,
            key_length: 3,
            min_record: 1,
            max_record: 20,
            codepage: "ascii".into(),
            backend: String::new(),
            layout: String::new(),
        }
    }

    fn select(args: SelectArgs) -> Result<Selection> {
        let spec = spec(Organization::Ksds);
        let output = Output {
            json: false,
            hex: false,
        };
        Selection::new(&args, &spec, &Codec::new(&spec, output)?)
    }

    fn run(mut selection: Selection, keys: &[&str], keyed: bool) -> Vec<String> {
        let mut taken = Vec::new();
        for key in keys {
            match selection.judge(format!("x{key}-data").as_bytes(), keyed) {
                Verdict::Take => taken.push(key.to_string()),
                Verdict::Pass => {}
                Verdict::Stop => break,
            }
        }
        taken
    }

    #[test]
    fn keys_select_generically_and_counts_apply_after() {
        let keys = ["A01", "A02", "B01", "B02", "B03", "C01"];
        let range = SelectArgs {
            from_key: Some("A02".into()),
            to_key: Some("B".into()),
            ..SelectArgs::default()
        };
        assert_eq!(
            run(select(range.clone()).unwrap(), &keys, true),
            ["A02", "B01", "B02", "B03"],
            "TOKEY B takes every key beginning with B"
        );
        let counted = SelectArgs {
            count: Some(2),
            ..range
        };
        assert_eq!(run(select(counted).unwrap(), &keys, true), ["A02", "B01"]);
        let skipped = SelectArgs {
            skip: 4,
            ..SelectArgs::default()
        };
        assert_eq!(run(select(skipped).unwrap(), &keys, true), ["B03", "C01"]);
        let unsorted = ["C01", "A01", "B02"];
        let to_b = SelectArgs {
            to_key: Some("B".into()),
            ..SelectArgs::default()
        };
        assert_eq!(
            run(select(to_b).unwrap(), &unsorted, false),
            ["A01", "B02"],
            "a file in no key order is filtered, not cut"
        );
    }

    #[test]
    fn selections_that_cannot_hold_are_refused() {
        let both = SelectArgs {
            from_key: Some("A".into()),
            skip: 1,
            ..SelectArgs::default()
        };
        assert!(select(both).is_err());
        let reversed = SelectArgs {
            from_key: Some("B".into()),
            to_key: Some("A".into()),
            ..SelectArgs::default()
        };
        assert!(select(reversed).is_err());
        let long = SelectArgs {
            from_key: Some("ABCD".into()),
            ..SelectArgs::default()
        };
        assert!(select(long).is_err());
        let spec = spec(Organization::Esds);
        let codec = Codec::new(
            &spec,
            Output {
                json: false,
                hex: false,
            },
        )
        .unwrap();
        let keyed = SelectArgs {
            to_key: Some("A".into()),
            ..SelectArgs::default()
        };
        let refused = Selection::new(&keyed, &spec, &codec).unwrap_err();
        assert!(refused.to_string().contains("--skip"), "{refused}");
    }
}
