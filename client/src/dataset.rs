//! An open dataset and its requests.

use crate::catalog::expect_ok;
use crate::connection::Connection;
use crate::error::ClientError;
use vsam_protocol::{
    Answer, DatasetSpec, Get, Open, OpenIntent, Point, Put, Record, Request, RplOptions, StringRef,
};

/// A dataset opened on a connection. Requests name a string (0 up to the
/// count given at open); each string keeps its own position.
#[derive(Clone)]
pub struct Dataset {
    conn: Connection,
    handle: u32,
    spec: DatasetSpec,
}

impl Dataset {
    /// OPENs a dataset with `strings` strings.
    pub async fn open(
        conn: &Connection,
        name: &str,
        intent: OpenIntent,
        strings: u16,
    ) -> Result<Self, ClientError> {
        let request = Request::Open(Open {
            dataset: name.to_string(),
            intent,
            access: 0,
            strings,
        });
        match expect_ok(conn.call(request).await?, name, "OPEN")? {
            Answer::Opened { handle, dataset } => Ok(Self {
                conn: conn.clone(),
                handle,
                spec: dataset,
            }),
            other => Err(ClientError::Unexpected {
                request: "OPEN",
                detail: format!("{other:?}"),
            }),
        }
    }

    /// The catalog entry returned by OPEN.
    pub fn spec(&self) -> &DatasetSpec {
        &self.spec
    }

    /// The handle OPEN returned, for building raw requests.
    pub fn handle(&self) -> u32 {
        self.handle
    }

    /// The connection it is open on.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    fn target(&self, string: u16) -> StringRef {
        StringRef {
            handle: self.handle,
            string,
        }
    }

    async fn records(
        &self,
        request: Request,
        name: &'static str,
    ) -> Result<Vec<Record>, ClientError> {
        match expect_ok(self.conn.call(request).await?, &self.spec.name, name)? {
            Answer::Result { records, .. } => Ok(records),
            other => Err(ClientError::Unexpected {
                request: name,
                detail: format!("{other:?}"),
            }),
        }
    }

    /// GET with explicit options: `key` for KSDS, `address` for an RBA or
    /// RRN, `max_records` > 1 for a batched sequential GET.
    pub async fn get(
        &self,
        string: u16,
        options: RplOptions,
        key: &[u8],
        generic_length: u16,
        address: u64,
        max_records: u32,
    ) -> Result<Vec<Record>, ClientError> {
        let request = Request::Get(Get {
            target: self.target(string),
            options: options.to_bits(),
            key: key.to_vec(),
            generic_length,
            address,
            max_records,
        });
        self.records(request, "GET").await
    }

    /// PUT a record: insert, or update after a GET UPD (`options.update()`).
    /// Returns the written record's key and RBA/RRN.
    pub async fn put(
        &self,
        string: u16,
        options: RplOptions,
        address: u64,
        record: Vec<u8>,
    ) -> Result<Record, ClientError> {
        let request = Request::Put(Put {
            target: self.target(string),
            options: options.to_bits(),
            address,
            record,
        });
        let mut records = self.records(request, "PUT").await?;
        Ok(records.pop().unwrap_or_default())
    }

    /// ERASE the record held by the string's GET UPD.
    pub async fn erase(&self, string: u16) -> Result<(), ClientError> {
        let request = Request::Erase {
            target: self.target(string),
            options: 0,
        };
        self.records(request, "ERASE").await.map(drop)
    }

    /// POINT the string at a key, RBA or RRN (or the end, with LRD).
    pub async fn point(
        &self,
        string: u16,
        options: RplOptions,
        key: &[u8],
        generic_length: u16,
        address: u64,
    ) -> Result<(), ClientError> {
        let request = Request::Point(Point {
            target: self.target(string),
            options: options.to_bits(),
            key: key.to_vec(),
            generic_length,
            address,
        });
        self.records(request, "POINT").await.map(drop)
    }

    /// ENDREQ: drop the string's position and held record.
    pub async fn endreq(&self, string: u16) -> Result<(), ClientError> {
        self.records(
            Request::EndReq {
                target: self.target(string),
            },
            "ENDREQ",
        )
        .await
        .map(drop)
    }

    /// CLOSE the dataset.
    pub async fn close(self) -> Result<(), ClientError> {
        let name = self.spec.name.clone();
        expect_ok(
            self.conn
                .call(Request::Close {
                    handle: self.handle,
                })
                .await?,
            &name,
            "CLOSE",
        )
        .map(drop)
    }
}
