//! RPL options (OPTCD) carried by every data request.
//!
//! On the wire the options are one `u32` of flags. A zero value means VSAM's
//! defaults: KEY, SEQ, FWD, ARD, NUP, KEQ, FKS. [`RplOptions::parse`] checks
//! the combination the way VSAM does and names the conflict it finds.

use std::fmt;

/// Flag bits of the options word, as documented in `docs/protocol.md`.
pub mod bits {
    /// Access by key (or by relative record number for an RRDS).
    pub const KEY: u32 = 1 << 0;
    /// Access by address (RBA).
    pub const ADR: u32 = 1 << 1;
    /// Access by control interval (refused).
    pub const CNV: u32 = 1 << 2;
    /// Direct processing.
    pub const DIR: u32 = 1 << 3;
    /// Sequential processing.
    pub const SEQ: u32 = 1 << 4;
    /// Skip-sequential processing.
    pub const SKP: u32 = 1 << 5;
    /// Backward direction (default forward).
    pub const BWD: u32 = 1 << 6;
    /// Position at the last record (default: from the argument).
    pub const LRD: u32 = 1 << 7;
    /// Update intent: take exclusive control (GET) or update (PUT).
    pub const UPD: u32 = 1 << 8;
    /// Direct request that keeps position for sequential processing.
    pub const NSP: u32 = 1 << 9;
    /// Key greater or equal (default: equal).
    pub const KGE: u32 = 1 << 10;
    /// Generic key: the first `generic_length` bytes of the argument.
    pub const GEN: u32 = 1 << 11;
    /// Explicit forward (the default; given for symmetry with BWD).
    pub const FWD: u32 = 1 << 12;
    /// Explicit no-update (the default).
    pub const NUP: u32 = 1 << 13;
    /// Explicit key-equal (the default).
    pub const KEQ: u32 = 1 << 14;
    /// Explicit full key (the default).
    pub const FKS: u32 = 1 << 15;
    /// Explicit argument positioning (the default).
    pub const ARD: u32 = 1 << 16;
    /// Every defined bit.
    pub const ALL: u32 = (1 << 17) - 1;
}

/// How records are addressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// By key (KSDS) or by relative record number (RRDS).
    Key,
    /// By RBA.
    Address,
}

/// How records are processed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Processing {
    /// Direct: the argument names the record.
    Direct,
    /// Sequential: from the current position.
    Sequential,
    /// Skip-sequential: keyed jumps forward while browsing.
    SkipSequential,
}

/// Update intent of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
    /// No update (NUP).
    NoUpdate,
    /// Update (UPD): GET takes exclusive control; PUT updates.
    Update,
    /// No update, but a direct GET keeps position (NSP).
    NoUpdateKeepPosition,
}

/// A validated set of RPL options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RplOptions {
    /// KEY or ADR.
    pub access: Access,
    /// DIR, SEQ or SKP.
    pub processing: Processing,
    /// BWD when true, FWD otherwise.
    pub backward: bool,
    /// LRD when true, ARD otherwise.
    pub last_record: bool,
    /// UPD, NUP or NSP.
    pub intent: Intent,
    /// KGE when true, KEQ otherwise.
    pub greater_or_equal: bool,
    /// GEN when true, FKS otherwise.
    pub generic: bool,
}

/// An option combination VSAM rejects (FDBK X'68').
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptionConflict(pub String);

impl fmt::Display for OptionConflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for OptionConflict {}

impl Default for RplOptions {
    fn default() -> Self {
        Self {
            access: Access::Key,
            processing: Processing::Sequential,
            backward: false,
            last_record: false,
            intent: Intent::NoUpdate,
            greater_or_equal: false,
            generic: false,
        }
    }
}

/// The one bit of `choices` set in `word`, if any; a conflict if several
/// are. Every request's options pass here, so a valid word costs no
/// allocation.
fn one_of(word: u32, choices: &[(u32, &str)]) -> Result<Option<u32>, OptionConflict> {
    let set = || choices.iter().filter(|(bit, _)| word & bit != 0);
    match set().count() {
        0 => Ok(None),
        1 => Ok(set().next().map(|(bit, _)| *bit)),
        _ => Err(OptionConflict(format!(
            "conflicting RPL options {}: give only one",
            set()
                .map(|(_, name)| *name)
                .collect::<Vec<_>>()
                .join(" and ")
        ))),
    }
}

impl RplOptions {
    /// Checks an options word and returns the options it gives.
    pub fn parse(word: u32) -> Result<Self, OptionConflict> {
        use bits::*;
        if word & !ALL != 0 {
            return Err(OptionConflict(format!(
                "unknown RPL option bits {:#x}",
                word & !ALL
            )));
        }
        let access = match one_of(word, &[(KEY, "KEY"), (ADR, "ADR"), (CNV, "CNV")])? {
            Some(CNV) => {
                return Err(OptionConflict(
                    "control-interval access (CNV) is not supported by the redirector".into(),
                ));
            }
            Some(ADR) => Access::Address,
            _ => Access::Key,
        };
        let processing = match one_of(word, &[(DIR, "DIR"), (SEQ, "SEQ"), (SKP, "SKP")])? {
            Some(DIR) => Processing::Direct,
            Some(SKP) => Processing::SkipSequential,
            _ => Processing::Sequential,
        };
        let backward = one_of(word, &[(FWD, "FWD"), (BWD, "BWD")])? == Some(BWD);
        let last_record = one_of(word, &[(ARD, "ARD"), (LRD, "LRD")])? == Some(LRD);
        let intent = match one_of(word, &[(NUP, "NUP"), (UPD, "UPD"), (NSP, "NSP")])? {
            Some(UPD) => Intent::Update,
            Some(NSP) => Intent::NoUpdateKeepPosition,
            _ => Intent::NoUpdate,
        };
        let greater_or_equal = one_of(word, &[(KEQ, "KEQ"), (KGE, "KGE")])? == Some(KGE);
        let generic = one_of(word, &[(FKS, "FKS"), (GEN, "GEN")])? == Some(GEN);
        let options = Self {
            access,
            processing,
            backward,
            last_record,
            intent,
            greater_or_equal,
            generic,
        };
        if options.backward && options.processing == Processing::SkipSequential {
            return Err(OptionConflict(
                "skip-sequential processing (SKP) is forward only: BWD conflicts".into(),
            ));
        }
        if options.backward && (options.greater_or_equal || options.generic) {
            return Err(OptionConflict(
                "backward processing (BWD) needs KEQ and FKS: KGE and GEN are not allowed".into(),
            ));
        }
        if options.last_record && !options.backward {
            return Err(OptionConflict(
                "LRD (position at the last record) needs BWD".into(),
            ));
        }
        if options.intent == Intent::NoUpdateKeepPosition
            && options.processing != Processing::Direct
        {
            return Err(OptionConflict(
                "NSP applies to direct requests only: add DIR".into(),
            ));
        }
        Ok(options)
    }

    /// The options word for these options (explicit defaults are not set).
    pub fn to_bits(self) -> u32 {
        use bits::*;
        let mut word = match self.access {
            Access::Key => KEY,
            Access::Address => ADR,
        };
        word |= match self.processing {
            Processing::Direct => DIR,
            Processing::Sequential => SEQ,
            Processing::SkipSequential => SKP,
        };
        if self.backward {
            word |= BWD;
        }
        if self.last_record {
            word |= LRD;
        }
        word |= match self.intent {
            Intent::NoUpdate => 0,
            Intent::Update => UPD,
            Intent::NoUpdateKeepPosition => NSP,
        };
        if self.greater_or_equal {
            word |= KGE;
        }
        if self.generic {
            word |= GEN;
        }
        word
    }

    /// Direct keyed access (`KEY,DIR`).
    pub fn direct() -> Self {
        Self {
            processing: Processing::Direct,
            ..Self::default()
        }
    }

    /// Sequential keyed access (`KEY,SEQ`), VSAM's default.
    pub fn sequential() -> Self {
        Self::default()
    }

    /// Addressed access (`ADR`) with the given processing.
    pub fn addressed(processing: Processing) -> Self {
        Self {
            access: Access::Address,
            processing,
            ..Self::default()
        }
    }

    /// The same options with update intent (UPD).
    pub fn update(self) -> Self {
        Self {
            intent: Intent::Update,
            ..self
        }
    }

    /// The same options, backward (BWD).
    pub fn backward(self) -> Self {
        Self {
            backward: true,
            ..self
        }
    }

    /// The same options, KGE.
    pub fn greater_or_equal(self) -> Self {
        Self {
            greater_or_equal: true,
            ..self
        }
    }

    /// The same options, GEN.
    pub fn generic(self) -> Self {
        Self {
            generic: true,
            ..self
        }
    }

    /// The same options, LRD (with BWD).
    pub fn last_record(self) -> Self {
        Self {
            last_record: true,
            backward: true,
            ..self
        }
    }
}

impl fmt::Display for RplOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names = vec![
            match self.access {
                Access::Key => "KEY",
                Access::Address => "ADR",
            },
            match self.processing {
                Processing::Direct => "DIR",
                Processing::Sequential => "SEQ",
                Processing::SkipSequential => "SKP",
            },
            if self.backward { "BWD" } else { "FWD" },
        ];
        if self.last_record {
            names.push("LRD");
        }
        names.push(match self.intent {
            Intent::NoUpdate => "NUP",
            Intent::Update => "UPD",
            Intent::NoUpdateKeepPosition => "NSP",
        });
        names.push(if self.greater_or_equal { "KGE" } else { "KEQ" });
        names.push(if self.generic { "GEN" } else { "FKS" });
        write!(f, "({})", names.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::bits::*;
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn zero_means_vsam_defaults() {
        assert_eq!(RplOptions::parse(0).unwrap(), RplOptions::default());
        assert_eq!(
            RplOptions::default().to_string(),
            "(KEY,SEQ,FWD,NUP,KEQ,FKS)"
        );
    }

    #[test]
    fn conflicts_are_named() {
        let err = RplOptions::parse(KEY | ADR).unwrap_err();
        assert!(err.0.contains("KEY and ADR"), "{err}");
        assert!(RplOptions::parse(DIR | SEQ).is_err());
        assert!(RplOptions::parse(UPD | NSP | DIR).is_err());
        assert!(
            RplOptions::parse(BWD | KGE)
                .unwrap_err()
                .0
                .contains("KEQ and FKS")
        );
        assert!(RplOptions::parse(SKP | BWD).is_err());
        assert!(RplOptions::parse(LRD).is_err());
        assert!(RplOptions::parse(CNV).unwrap_err().0.contains("CNV"));
        assert!(
            RplOptions::parse(1 << 30)
                .unwrap_err()
                .0
                .contains("unknown")
        );
        assert!(RplOptions::parse(NSP | SEQ).is_err());
    }

    proptest! {
        #[test]
        fn valid_words_round_trip(word in 0u32..(1 << 17)) {
            if let Ok(options) = RplOptions::parse(word) {
                prop_assert_eq!(RplOptions::parse(options.to_bits()).unwrap(), options);
            }
        }
    }
}
