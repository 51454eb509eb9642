//! A dataset's definition as the host keeps it (a cluster, an alternate
//! index or a path), checked whole at DEFINE, and its forms for the
//! protocol, the plugins and the catalog file.

use serde::{Deserialize, Serialize};
use vsam_plugin_sdk::codepage::CodePage;
use vsam_plugin_sdk::copybook::Copybook;
use vsam_plugin_sdk::naming::check_dataset_name;
use vsam_protocol::{DatasetSpec, MAX_RECORD_LENGTH, Organization};

/// A dataset's definition, as the host keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetDef {
    /// Name, upper case.
    pub name: String,
    /// KSDS, ESDS or RRDS.
    #[serde(with = "organization_serde")]
    pub organization: Organization,
    /// Prime key offset (KSDS).
    pub key_offset: u32,
    /// Prime key length (KSDS).
    pub key_length: u16,
    /// Smallest record length.
    pub min_record: u32,
    /// Largest record length (slot size for RRDS).
    pub max_record: u32,
    /// Code page of record text.
    #[serde(with = "codepage_serde")]
    pub codepage: CodePage,
    /// Backend holding the records.
    pub backend: String,
    /// Record layout: a COBOL copybook's text, checked at DEFINE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layout: Option<String>,
    /// For an alternate index or a path: what it relates to. `None` for a
    /// cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relation: Option<Relation>,
}

/// How a catalog entry that is not a cluster relates to one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Relation {
    /// An alternate index over `base`: its key is the field at the entry's
    /// `key_offset` and `key_length` in the base's records.
    Aix {
        /// The base cluster.
        base: String,
        /// Length of the base's keys (a KSDS's prime key; 8 for an ESDS's
        /// RBA): what an index entry points with.
        base_key_length: u16,
        /// UNIQUEKEY.
        unique: bool,
        /// UPGRADE: base writes keep the index in step.
        upgrade: bool,
    },
    /// A path: opens the base of `aix` by the alternate key.
    Path {
        /// The alternate index.
        aix: String,
    },
}

mod organization_serde {
    use super::Organization;
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(o: &Organization, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(o.name())
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Organization, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

mod codepage_serde {
    use super::CodePage;
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(c: &CodePage, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(c.name())
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<CodePage, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// The bytes of records, at their longest, one step of work done a batch
/// at a time reads (a copy, a rename, a BLDINDEX): as much as a frame.
pub const BATCH_BYTES: usize = 16 << 20;

impl DatasetDef {
    /// How many of its records, at their longest, `bytes` holds: at least
    /// one, at most `most`. Work done a batch at a time (a copy, a rename,
    /// a batched GET) sizes its batches by it, so that a batch of records
    /// of megabytes is not gigabytes.
    pub fn records_in(&self, bytes: usize, most: u32) -> u32 {
        let each = (self.max_record as usize).max(1);
        u32::try_from(bytes / each)
            .unwrap_or(u32::MAX)
            .clamp(1, most.max(1))
    }

    /// Checks the attributes against each other.
    pub fn validate(&self) -> Result<(), String> {
        check_dataset_name(&self.name)?;
        if self.max_record == 0 || self.max_record > MAX_RECORD_LENGTH {
            return Err(format!(
                "{}: record size {} must be between 1 and {MAX_RECORD_LENGTH}",
                self.name, self.max_record
            ));
        }
        if self.min_record == 0 || self.min_record > self.max_record {
            return Err(format!(
                "{}: minimum record size {} must be between 1 and the record size {}",
                self.name, self.min_record, self.max_record
            ));
        }
        match self.organization {
            Organization::Ksds => {
                if self.key_length == 0 || self.key_length > 255 {
                    return Err(format!(
                        "{}: a KSDS needs a key length from 1 to 255 (KEYS(length offset)), got {}",
                        self.name, self.key_length
                    ));
                }
                if u64::from(self.key_offset) + u64::from(self.key_length)
                    > u64::from(self.max_record)
                {
                    return Err(format!(
                        "{}: the key (offset {}, length {}) ends past the record size {}",
                        self.name, self.key_offset, self.key_length, self.max_record
                    ));
                }
            }
            Organization::Esds | Organization::Rrds | Organization::Vrrds => {
                if self.key_length != 0 || self.key_offset != 0 {
                    return Err(format!(
                        "{}: an {} has no key field: leave key offset and length out",
                        self.name,
                        self.organization.name().to_uppercase()
                    ));
                }
                if self.organization == Organization::Rrds && self.min_record != self.max_record {
                    return Err(format!(
                        "{}: an RRDS has fixed-length slots: the minimum record size must equal the record size {}",
                        self.name, self.max_record
                    ));
                }
            }
        }
        if let Some(layout) = &self.layout {
            self.check_layout(layout)?;
        }
        Ok(())
    }

    /// A layout must parse and describe records that fit the definition;
    /// a KSDS key must fall on the layout's bytes.
    fn check_layout(&self, layout: &str) -> Result<(), String> {
        let copybook = Copybook::parse(layout).map_err(|e| format!("{}: layout {e}", self.name))?;
        let size = copybook.record().map_or(0, |r| r.size);
        if size > self.max_record as usize {
            return Err(format!(
                "{}: the layout's record is {size} bytes, more than the record size {}",
                self.name, self.max_record
            ));
        }
        if (size as u64) < u64::from(self.key_offset) + u64::from(self.key_length) {
            return Err(format!(
                "{}: the layout's record ({size} bytes) ends before the key (offset {}, length {})",
                self.name, self.key_offset, self.key_length
            ));
        }
        Ok(())
    }

    /// From a DEFINE request (backend already chosen).
    pub fn from_spec(spec: &DatasetSpec, backend: String) -> Result<Self, String> {
        let codepage = if spec.codepage.is_empty() {
            Ok(CodePage::Cp037)
        } else {
            spec.codepage.parse()
        }?;
        let min_record = match (spec.min_record, spec.organization) {
            (0, Organization::Rrds) => spec.max_record,
            (0, _) => 1,
            (n, _) => n,
        };
        let def = Self {
            name: spec.name.to_ascii_uppercase(),
            organization: spec.organization,
            key_offset: spec.key_offset,
            key_length: spec.key_length,
            min_record,
            max_record: spec.max_record,
            codepage,
            backend,
            layout: (!spec.layout.is_empty()).then(|| spec.layout.clone()),
            relation: None,
        };
        def.validate()?;
        Ok(def)
    }

    /// As a protocol catalog entry.
    pub fn to_spec(&self) -> DatasetSpec {
        DatasetSpec {
            name: self.name.clone(),
            organization: self.organization,
            key_offset: self.key_offset,
            key_length: self.key_length,
            min_record: self.min_record,
            max_record: self.max_record,
            codepage: self.codepage.name().to_string(),
            backend: self.backend.clone(),
            layout: self.layout.clone().unwrap_or_default(),
        }
    }

    /// As a LISTCAT entry: the protocol entry and what it is.
    pub fn to_entry(&self) -> vsam_protocol::CatalogEntry {
        use vsam_protocol::EntryType;
        vsam_protocol::CatalogEntry {
            spec: self.to_spec(),
            entry_type: match &self.relation {
                None => EntryType::Cluster,
                Some(Relation::Aix {
                    base,
                    unique,
                    upgrade,
                    ..
                }) => EntryType::Aix {
                    base: base.clone(),
                    unique: *unique,
                    upgrade: *upgrade,
                },
                Some(Relation::Path { aix }) => EntryType::Path { aix: aix.clone() },
            },
        }
    }

    /// As the plugin contract's dataset record: for an alternate index,
    /// the shape of its own records (the alternate key, a sequence number
    /// when keys repeat, then the base key the entry points to).
    pub fn to_plugin(&self) -> vsam_plugin_sdk::Dataset {
        if let Some(Relation::Aix {
            base_key_length,
            unique,
            ..
        }) = &self.relation
        {
            let key_length = u32::from(self.key_length) + if *unique { 0 } else { 8 };
            let record = key_length + u32::from(*base_key_length);
            return vsam_plugin_sdk::Dataset {
                name: self.name.clone(),
                organization: vsam_plugin_sdk::Organization::Ksds,
                key_offset: 0,
                key_length,
                max_record_length: record,
                min_record_length: record,
                codepage: self.codepage.name().to_string(),
            };
        }
        vsam_plugin_sdk::Dataset {
            name: self.name.clone(),
            organization: match self.organization {
                Organization::Ksds => vsam_plugin_sdk::Organization::Ksds,
                Organization::Esds => vsam_plugin_sdk::Organization::Esds,
                // A VRRDS is stored as relative slots whose records vary
                // in length: plugins keep every record's bytes as given.
                Organization::Rrds | Organization::Vrrds => vsam_plugin_sdk::Organization::Rrds,
            },
            key_offset: self.key_offset,
            key_length: u32::from(self.key_length),
            max_record_length: self.max_record,
            min_record_length: self.min_record,
            codepage: self.codepage.name().to_string(),
        }
    }
}
