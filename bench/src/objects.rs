//! The direct baseline of the object-store backend: the same object GETs
//! and listings the plugin makes, issued by a native client (object_store's
//! S3 client, as vsamrd uses) to the same SeaweedFS bucket, decoding the
//! control intervals vsamrd just wrote with the plugin's own layout code.

use crate::sql::{browse_figure, key};
use crate::{DATASET, Figure, record};
use anyhow::{Context, Result};
use futures::TryStreamExt;
use hdrhistogram::Histogram;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;
use std::time::Instant;
use vsam_conformance::SeaweedFs;
use vsam_plugin_s3::ci::Records;
use vsam_plugin_s3::layout::Names;
use vsam_plugin_sdk::{Dataset, Organization};

/// Control intervals a browse fetches at once (as the plugin does).
const READ_AHEAD: usize = 4;

/// The bucket and the intervals of the benchmark dataset.
struct Bucket {
    store: AmazonS3,
    ds: Dataset,
    /// Lower bound to object name.
    intervals: BTreeMap<Vec<u8>, String>,
}

impl Bucket {
    async fn open(seaweed: &SeaweedFs) -> Result<Self> {
        let store = AmazonS3Builder::new()
            .with_endpoint(&seaweed.endpoint)
            .with_allow_http(true)
            .with_bucket_name(&seaweed.bucket)
            .with_region("us-east-1")
            .with_access_key_id(&seaweed.access_key_id)
            .with_secret_access_key(&seaweed.secret_access_key)
            .build()?;
        let ds = Dataset {
            name: DATASET.into(),
            organization: Organization::Ksds,
            key_offset: 0,
            key_length: crate::KEY_LENGTH as u32,
            max_record_length: crate::RECORD_LENGTH as u32,
            min_record_length: 1,
            codepage: "ascii".into(),
        };
        let names = Names::new("", &ds);
        let listed: Vec<_> = store
            .list(Some(&Path::from(names.intervals())))
            .try_collect()
            .await?;
        let intervals = listed
            .into_iter()
            .filter_map(|meta| {
                let name = meta.location.to_string();
                names.bound_of(&name).map(|bound| (bound, name))
            })
            .collect();
        Ok(Self {
            store,
            ds,
            intervals,
        })
    }

    fn bound_for(&self, key: &[u8]) -> &Vec<u8> {
        self.intervals
            .range::<[u8], _>((Bound::Unbounded, Bound::Included(key)))
            .next_back()
            .map(|(bound, _)| bound)
            .expect("the first interval starts at the lowest key")
    }

    async fn bytes(&self, bound: &[u8]) -> Result<bytes::Bytes> {
        let name = &self.intervals[bound];
        Ok(self
            .store
            .get(&Path::from(name.as_str()))
            .await?
            .bytes()
            .await?)
    }

    /// The record under `key`, searched in its interval's bytes.
    async fn record(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let bound = self.bound_for(key);
        let bytes = self.bytes(bound).await?;
        Records::find(&self.ds, bound, &bytes, key, &self.intervals[bound])
            .map_err(|e| anyhow::anyhow!("{e:?}"))
    }

    /// A whole interval.
    async fn interval(&self, bound: &[u8]) -> Result<Records> {
        let bytes = self.bytes(bound).await?;
        Records::decode(&self.ds, bound, &bytes, &self.intervals[bound])
            .map_err(|e| anyhow::anyhow!("{e:?}"))
    }
}

/// Random GETs at 1 and 16 connections and a browse, straight from the
/// bucket.
pub async fn direct(seaweed: &SeaweedFs, gets: u64, browse: u64, half: u64) -> Result<Vec<Figure>> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let bucket = Arc::new(Bucket::open(seaweed).await?);
    let mut figures = Vec::new();
    for connections in [1usize, 16] {
        let per = gets / connections as u64;
        let started = Instant::now();
        let tasks: Vec<_> = (0..connections)
            .map(|c| {
                let bucket = bucket.clone();
                tokio::spawn(async move {
                    let mut histogram = Histogram::<u64>::new(3)?;
                    for i in 0..per {
                        let t = Instant::now();
                        let (n, key) = key(c, i, half);
                        let found = bucket.record(&key).await?.context("record missing")?;
                        anyhow::ensure!(found == record(n), "wrong record");
                        histogram.record(t.elapsed().as_nanos() as u64).ok();
                    }
                    Ok::<_, anyhow::Error>(histogram)
                })
            })
            .collect();
        let mut total = Histogram::<u64>::new(3)?;
        for task in tasks {
            total.add(task.await??).ok();
        }
        figures.push(Figure::of(
            "s3 (direct)",
            "random GET",
            connections,
            per,
            started.elapsed(),
            total,
        ));
    }
    figures.push(
        browse_figure("s3 (direct)", browse, async |from| {
            let bounds: Vec<Vec<u8>> = bucket
                .intervals
                .range::<[u8], _>((
                    Bound::Included(bucket.bound_for(&from).as_slice()),
                    Bound::Unbounded,
                ))
                .take(READ_AHEAD)
                .map(|(bound, _)| bound.clone())
                .collect();
            let fetched =
                futures::future::try_join_all(bounds.iter().map(|b| bucket.interval(b))).await?;
            Ok(fetched
                .into_iter()
                .flat_map(|records| records.0.into_keys())
                .filter(|k| *k > from)
                .collect())
        })
        .await?,
    );
    Ok(figures)
}
