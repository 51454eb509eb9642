//! A browse while another connection writes the same dataset. A plugin
//! that resumes a scan from a cursor, an offset or a copy it kept since
//! the last call returns records that moved, were deleted or changed; the
//! host restarts each scan after the last key it returned, so every answer
//! must reflect the writes made before it.

use crate::check::{Step, expect_eq, fail};
use crate::env::Env;
use std::collections::BTreeMap;
use vsam_client::{Dataset, OpenIntent, RplOptions};

fn key(n: u32) -> Vec<u8> {
    format!("K{n:03}").into_bytes()
}

fn number(key: &[u8]) -> Option<u32> {
    std::str::from_utf8(key.get(1..4)?).ok()?.parse().ok()
}

/// What the writer did, as the reader must see it.
struct Writer {
    ds: Dataset,
    /// The dataset's records now, by key.
    stored: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl Writer {
    async fn insert(&mut self, n: u32, body: &str) -> Step {
        let key = key(n);
        if n >= 200 || self.stored.contains_key(&key) {
            return Ok(());
        }
        let rec = [key.as_slice(), body.as_bytes()].concat();
        self.ds.put(0, RplOptions::direct(), 0, rec.clone()).await?;
        self.stored.insert(key, rec);
        Ok(())
    }

    async fn update(&mut self, n: u32, body: &str) -> Step {
        let key = key(n);
        if !self.stored.contains_key(&key) {
            return Ok(());
        }
        let update = RplOptions::direct().update();
        self.ds.get(0, update, &key, 0, 0, 1).await?;
        let rec = [key.as_slice(), body.as_bytes()].concat();
        self.ds.put(0, update, 0, rec.clone()).await?;
        self.stored.insert(key, rec);
        Ok(())
    }

    async fn erase(&mut self, n: u32) -> Step {
        let key = key(n);
        if !self.stored.contains_key(&key) {
            return Ok(());
        }
        self.ds
            .get(0, RplOptions::direct().update(), &key, 0, 0, 1)
            .await?;
        self.ds.erase(0).await?;
        self.stored.remove(&key);
        Ok(())
    }

    /// Writes around the reader's position `at`: ahead of it (the reader
    /// must see these) and behind it (it must not go back for them).
    async fn around(&mut self, at: u32) -> Step {
        self.insert(at + 3, "-INSERTED-AHEAD").await?;
        self.update(at + 4, "-UPDATED-AHEAD-AND-LONGER").await?;
        self.erase(at + 6).await?;
        if let Some(behind) = at.checked_sub(3) {
            self.insert(behind, "-INSERTED-BEHIND").await?;
        }
        if let Some(behind) = at.checked_sub(2) {
            self.update(behind, "-UPDATED-BEHIND").await?;
        }
        Ok(())
    }
}

/// Connection one browses forward record by record; after each record,
/// connection two inserts, updates and erases records ahead of and behind
/// the browse. Every record read must be the one stored at that moment:
/// keys ascending, nothing skipped, nothing erased, the newest data.
pub(crate) async fn browse_while_writing(env: Env) -> Step {
    let name = env.ksds("SCAN").await?;
    let mut writer = Writer {
        ds: Dataset::open(&env.second, &name, OpenIntent::Update, 2).await?,
        stored: BTreeMap::new(),
    };
    for n in (0..200).step_by(2) {
        writer.insert(n, "-LOADED").await?;
    }
    let reader = env.open(&name, OpenIntent::Input).await?;
    let mut previous: Option<Vec<u8>> = None;
    let mut read = 0;
    loop {
        let record = match reader.reading(RplOptions::sequential()).records().await {
            Ok(records) => match records.into_iter().next() {
                Some(record) => record,
                None => return fail("a sequential GET answered no record"),
            },
            Err(e) if e.is_end_of_data() => break,
            Err(e) => return Err(e.into()),
        };
        read += 1;
        let key = record.data[..4].to_vec();
        // What the dataset held between the previous record and this one.
        let expected = writer
            .stored
            .iter()
            .find(|(stored, _)| previous.as_ref().is_none_or(|p| *stored > p))
            .map(|(_, rec)| rec.clone());
        expect_eq(
            &format!("record {read} of a browse while another connection writes"),
            Some(String::from_utf8_lossy(&record.data).into_owned()),
            expected.map(|rec| String::from_utf8_lossy(&rec).into_owned()),
        )?;
        let Some(at) = number(&key) else {
            return fail(format!("the browse returned key {key:?}"));
        };
        writer.around(at).await?;
        previous = Some(key);
        if read > 400 {
            return fail("the browse never reached end of data");
        }
    }
    let left = writer
        .stored
        .keys()
        .find(|stored| previous.as_ref().is_none_or(|p| *stored > p));
    if let Some(left) = left {
        return fail(format!(
            "the browse ended before key {} that was stored ahead of it",
            String::from_utf8_lossy(left)
        ));
    }
    Ok(())
}
