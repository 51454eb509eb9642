//! What every scenario runs in: two connections to one server, a prefix
//! for its dataset names, and the backend it defines them on.

use crate::check::Step;
use vsam_client::{Connection, Dataset, DatasetSpec, OpenIntent, Organization};

/// What a scenario gets: two connections to the same server (for
/// contention), a dataset name prefix and the backend to define on.
pub struct Env {
    pub first: Connection,
    pub second: Connection,
    pub address: String,
    pub prefix: String,
    pub backend: String,
    /// Define datasets with a COBOL layout (code page ascii).
    pub mapped: bool,
}

impl Env {
    pub(crate) fn name(&self, suffix: &str) -> String {
        format!("{}.{suffix}", self.prefix)
    }

    pub(crate) async fn define(
        &self,
        suffix: &str,
        organization: Organization,
        key_length: u16,
        max_record: u32,
    ) -> Step<String> {
        let name = self.name(suffix);
        let spec = DatasetSpec {
            name: name.clone(),
            organization,
            key_offset: 0,
            key_length,
            min_record: 0,
            max_record,
            codepage: if self.mapped { "ascii" } else { "cp037" }.into(),
            backend: self.backend.clone(),
            layout: if self.mapped {
                layout(organization, key_length, max_record)
            } else {
                String::new()
            },
        };
        vsam_client::define(&self.first, spec).await?;
        Ok(name)
    }

    pub(crate) async fn ksds(&self, suffix: &str) -> Step<String> {
        self.define(suffix, Organization::Ksds, 4, 100).await
    }

    pub(crate) async fn open(&self, name: &str, intent: OpenIntent) -> Step<Dataset> {
        Ok(Dataset::open(&self.first, name, intent, 4).await?)
    }
}

/// A copybook for mapped mode: the key field (KSDS) and the body as text.
fn layout(organization: Organization, key_length: u16, max_record: u32) -> String {
    let mut text = String::from("       01  CONF-RECORD.\n");
    let mut body = max_record;
    if organization == Organization::Ksds {
        text.push_str(&format!("           05  CONF-KEY   PIC X({key_length}).\n"));
        body -= u32::from(key_length);
    }
    if body > 0 {
        text.push_str(&format!("           05  CONF-BODY  PIC X({body}).\n"));
    }
    text
}
