//! An S3 bucket belongs to one server, as a local store does.
//!
//! Conditional writes keep two writers of one object from losing each
//! other's changes, but the object store's datasets also live in what a
//! server keeps for itself: its catalog, the record locks of its
//! connections, the intervals it caches. Two servers on one bucket would
//! each believe they own it. So a server claims the part of every S3
//! bucket its backends are granted (the bucket under the backend's
//! `prefix` parameter, the object store plugin's), at start and at reload,
//! with an object there ([`CLAIM`]) written with a conditional put and
//! renewed every [`RENEW_EVERY`]; a second server finds it and refuses to
//! start, naming the holder. Servers may share a bucket under prefixes
//! that do not nest. A claim not renewed for [`LAPSES_AFTER`] (its server
//! died) is taken over; the same server started again (same host and data
//! dir) takes its own claim back at once; a server that stops gives it
//! back.

use super::super::bindings::wit_objects::ObjectError;
use super::{BucketSpec, ObjectGrant};
use anyhow::{Result, bail};
use object_store::PutMode;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The claim's object, after the claimed prefix.
pub const CLAIM: &str = ".vsamrd-claim";

/// The largest claim object read: a claim is a line of JSON naming its
/// holder; anything larger under its name is not one.
const MAX_CLAIM_BYTES: u64 = 64 << 10;

/// How often the holder renews its claim.
pub const RENEW_EVERY: Duration = Duration::from_secs(10);

/// How long a claim not renewed stands before another server may take it.
pub const LAPSES_AFTER: Duration = Duration::from_secs(30);

/// How long a stopping server tries to give its claim back.
const GIVE_BACK_WITHIN: Duration = Duration::from_millis(1000);

/// Who holds a claim, as its object says.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Holder {
    /// `vsamrd VERSION LISTEN pid PID`.
    pub server: String,
    /// The machine it runs on.
    pub host: String,
    /// Its data dir.
    pub data_dir: String,
    /// When it last renewed the claim (ms since the Unix epoch).
    pub renewed_ms: u64,
}

impl Holder {
    /// This server: `listen` and `data_dir` name it.
    pub fn this_server(listen: &str, data_dir: &Path) -> Self {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|name| name.trim().to_string())
            .unwrap_or_else(|_| "unknown host".into());
        Self {
            server: format!(
                "vsamrd {} {listen} pid {}",
                env!("CARGO_PKG_VERSION"),
                std::process::id()
            ),
            host,
            data_dir: data_dir.display().to_string(),
            renewed_ms: 0,
        }
    }

    fn is_same_server(&self, other: &Holder) -> bool {
        self.host == other.host && self.data_dir == other.data_dir
    }

    fn now(&self) -> Vec<u8> {
        let renewed = Holder {
            renewed_ms: now_ms(),
            ..self.clone()
        };
        serde_json::to_vec(&renewed).expect("a holder serializes")
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A bucket this server holds; given back when released or dropped.
pub struct BucketClaim {
    grant: Arc<ObjectGrant>,
    place: String,
    /// The claim object's name.
    name: String,
    /// The claim object's version this server wrote last.
    etag: Arc<Mutex<String>>,
    /// Another server took the claim over (this one could not renew it).
    lost: Arc<AtomicBool>,
    released: AtomicBool,
    renewer: tokio::task::AbortHandle,
}

impl BucketClaim {
    /// Claims the bucket of `spec` under `prefix` for `holder`: refused,
    /// naming the holder, while another server's claim stands.
    pub async fn take(spec: &BucketSpec, prefix: &str, holder: &Holder) -> Result<Self> {
        let place = match prefix {
            "" => spec.to_string(),
            prefix => format!("{spec} under {prefix:?}"),
        };
        let name = format!("{prefix}{CLAIM}");
        let grant = ObjectGrant::new(
            spec,
            Duration::from_secs(5),
            MAX_CLAIM_BYTES,
            &tokio::runtime::Handle::current(),
        )?;
        let etag = claim(&grant, &name, &place, holder).await?;
        let etag = Arc::new(Mutex::new(etag));
        let lost = Arc::new(AtomicBool::new(false));
        let renewer = tokio::spawn(renew(
            grant.clone(),
            name.clone(),
            place.clone(),
            holder.clone(),
            etag.clone(),
            lost.clone(),
        ))
        .abort_handle();
        tracing::info!(bucket = %place, "bucket claimed for this server");
        Ok(Self {
            grant,
            place,
            name,
            etag,
            lost,
            released: AtomicBool::new(false),
            renewer,
        })
    }

    /// Whether the bucket answers (its claim object is read within
    /// `within`) and the claim is still this server's: what `/readyz`
    /// asks.
    pub async fn reachable(&self, within: Duration) -> Result<(), String> {
        if self.lost.load(Ordering::Acquire) {
            return Err(format!(
                "bucket {}: another server took this server's claim over",
                self.place
            ));
        }
        match tokio::time::timeout(within, self.grant.get(&self.name)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(error)) => Err(format!("bucket {}: {error:?}", self.place)),
            Err(_) => Err(format!(
                "bucket {}: no answer within {} ms",
                self.place,
                within.as_millis()
            )),
        }
    }

    /// Gives the claim back (deletes its object if it is still this
    /// server's), so that another server may start on the bucket at once.
    pub async fn release(&self) {
        if self.released.swap(true, Ordering::AcqRel) {
            return;
        }
        self.renewer.abort();
        // A store that does not answer does not hold a stopping server up:
        // the claim lapses instead.
        let given_back = give_back(&self.grant, &self.name, &self.place, &self.etag, &self.lost);
        if tokio::time::timeout(GIVE_BACK_WITHIN, given_back)
            .await
            .is_err()
        {
            tracing::warn!(bucket = %self.place, "the bucket's claim could not be given back within {} ms; it lapses in {} s", GIVE_BACK_WITHIN.as_millis(), LAPSES_AFTER.as_secs());
        }
    }
}

impl Drop for BucketClaim {
    fn drop(&mut self) {
        self.renewer.abort();
        if self.released.swap(true, Ordering::AcqRel) {
            return;
        }
        // Released in the background (a reload that no longer uses the
        // bucket); at shutdown the server releases its claims itself.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let (grant, place) = (self.grant.clone(), std::mem::take(&mut self.place));
            let (name, etag, lost) = (
                std::mem::take(&mut self.name),
                self.etag.clone(),
                self.lost.clone(),
            );
            runtime.spawn(async move { give_back(&grant, &name, &place, &etag, &lost).await });
        }
    }
}

/// Deletes the claim object if this server wrote its version last.
async fn give_back(
    grant: &ObjectGrant,
    name: &str,
    place: &str,
    etag: &Mutex<String>,
    lost: &AtomicBool,
) {
    if lost.load(Ordering::Acquire) {
        return;
    }
    let ours = etag.lock().unwrap().clone();
    if let Ok(Some(object)) = grant.get(name).await
        && object.etag == ours
        && let Err(error) = grant.delete(name).await
    {
        tracing::warn!(bucket = %place, "the bucket's claim could not be given back ({error:?}); it lapses in {} s", LAPSES_AFTER.as_secs());
    }
}

/// Writes the claim object: its version tag.
async fn claim(grant: &ObjectGrant, name: &str, place: &str, holder: &Holder) -> Result<String> {
    for _ in 0..3 {
        let written = match grant.get(name).await.map_err(object_error)? {
            None => grant.put(name, holder.now(), PutMode::Create).await,
            Some(object) => {
                let theirs: Option<Holder> = serde_json::from_slice(&object.body).ok();
                if let Some(theirs) = &theirs
                    && !holder.is_same_server(theirs)
                {
                    let age = Duration::from_millis(now_ms().saturating_sub(theirs.renewed_ms));
                    if age < LAPSES_AFTER {
                        bail!(
                            "{place} is claimed by another vsamrd ({} on host {}, data dir {}; renewed {} s ago): two servers on one bucket would each take its datasets for their own; give this server a bucket of its own, or stop that one (a stopped server gives its claim back; one that died loses it {} s after its last renewal)",
                            theirs.server,
                            theirs.host,
                            theirs.data_dir,
                            age.as_secs(),
                            LAPSES_AFTER.as_secs()
                        );
                    }
                    tracing::warn!(bucket = %place, holder = %theirs.server, "taking over a claim not renewed for {} s", age.as_secs());
                }
                grant.put_if_match(name, holder.now(), object.etag).await
            }
        };
        match written {
            Ok(etag) => return Ok(etag),
            // Another server wrote it meanwhile: look again.
            Err(ObjectError::PreconditionFailed) => {}
            Err(error) => return Err(object_error(error)),
        }
    }
    bail!(
        "{place}: the claim object {CLAIM} changed three times while this server tried to claim the bucket: another server is starting on it"
    )
}

/// Renews the claim until it is released; notes (and logs) its loss.
async fn renew(
    grant: Arc<ObjectGrant>,
    name: String,
    place: String,
    holder: Holder,
    etag: Arc<Mutex<String>>,
    lost: Arc<AtomicBool>,
) {
    loop {
        tokio::time::sleep(RENEW_EVERY).await;
        let ours = etag.lock().unwrap().clone();
        match grant.put_if_match(&name, holder.now(), ours).await {
            Ok(next) => *etag.lock().unwrap() = next,
            Err(ObjectError::PreconditionFailed) => {
                lost.store(true, Ordering::Release);
                let now = grant.get(&name).await.ok().flatten();
                let by = now
                    .and_then(|object| serde_json::from_slice::<Holder>(&object.body).ok())
                    .map_or("another server".to_string(), |h| {
                        format!("{} on host {}", h.server, h.host)
                    });
                tracing::error!(bucket = %place, "this server's claim on the bucket was taken over by {by} (this one could not renew it for {} s): both now write its datasets; stop one of them", LAPSES_AFTER.as_secs());
                return;
            }
            Err(error) => {
                tracing::warn!(bucket = %place, "the bucket's claim could not be renewed: {error:?}; tried again in {} s", RENEW_EVERY.as_secs());
            }
        }
    }
}

fn object_error(error: ObjectError) -> anyhow::Error {
    use ObjectError as E;
    match error {
        E::Unavailable(message) | E::Failed(message) => anyhow::anyhow!(message),
        E::NotGranted => anyhow::anyhow!("the bucket is not granted"),
        E::PreconditionFailed => anyhow::anyhow!("the claim object changed meanwhile"),
    }
}
