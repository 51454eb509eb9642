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
//!
//! A claim's time is its holder's clock, which another machine's may not
//! agree with: a claim that looks lapsed by this machine's clock is
//! watched for [`CONFIRM_LAPSE`] before it is taken over, and one renewed
//! meanwhile is refused, the machines' clocks named (taking it over would
//! put two servers on the bucket).

use super::super::bindings::wit_objects::ObjectError;
use super::{BucketSpec, ObjectGrant};
use crate::after_panic::{LockOrStop, spawn_essential};
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

/// How long a claim that looks lapsed by its time is watched, on this
/// machine's clock, before it is taken over: a holder that lives renews it
/// within [`RENEW_EVERY`], whatever its clock says.
pub const CONFIRM_LAPSE: Duration = Duration::from_secs(RENEW_EVERY.as_secs() + 5);

/// How often a claim being watched is read.
const WATCH_EVERY: Duration = Duration::from_millis(500);

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
        Self::take_watching(spec, prefix, holder, CONFIRM_LAPSE).await
    }

    /// [`BucketClaim::take`], watching a claim that looks lapsed for
    /// `confirm` rather than [`CONFIRM_LAPSE`] (tests).
    async fn take_watching(
        spec: &BucketSpec,
        prefix: &str,
        holder: &Holder,
        confirm: Duration,
    ) -> Result<Self> {
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
        let etag = claim(&grant, &name, &place, holder, confirm).await?;
        let etag = Arc::new(Mutex::new(etag));
        let lost = Arc::new(AtomicBool::new(false));
        let renewer = spawn_essential(
            format!("the claim on bucket {place} renewed"),
            renew(
                grant.clone(),
                name.clone(),
                place.clone(),
                holder.clone(),
                etag.clone(),
                lost.clone(),
            ),
        )
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
    let ours = etag.lock_or_stop().clone();
    if let Ok(Some(object)) = grant.get(name).await
        && object.etag == ours
        && let Err(error) = grant.delete(name).await
    {
        tracing::warn!(bucket = %place, "the bucket's claim could not be given back ({error:?}); it lapses in {} s", LAPSES_AFTER.as_secs());
    }
}

/// Writes the claim object: its version tag.
async fn claim(
    grant: &ObjectGrant,
    name: &str,
    place: &str,
    holder: &Holder,
    confirm: Duration,
) -> Result<String> {
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
                        return Err(claimed(place, theirs));
                    }
                    tracing::info!(bucket = %place, holder = %theirs.server, "a claim not renewed for {} s by its time: watching it for {} s before taking it over", age.as_secs(), confirm.as_secs_f64());
                    match watch(grant, name, &object.etag, confirm).await? {
                        Watched::Unchanged => {}
                        // Its holder lives: renewed late, or its clock
                        // is behind this machine's.
                        Watched::Changed(Some(now)) if now.is_same_server(theirs) => {
                            return Err(claimed(place, &now));
                        }
                        // Given back, or claimed by yet another server:
                        // look again.
                        Watched::Changed(_) => continue,
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

/// Why a claim of another server that lives is not taken: who holds it,
/// and, if its time and this machine's clock disagree by more than the
/// claim's life, that the clocks differ.
fn claimed(place: &str, theirs: &Holder) -> anyhow::Error {
    let now = now_ms();
    let (behind, ahead) = (
        Duration::from_millis(now.saturating_sub(theirs.renewed_ms)),
        Duration::from_millis(theirs.renewed_ms.saturating_sub(now)),
    );
    let renewed = if behind >= LAPSES_AFTER {
        format!(
            "it renews its claim, though the time it writes is {} s behind this machine's clock: check both machines' clocks (NTP)",
            behind.as_secs()
        )
    } else if ahead > RENEW_EVERY {
        format!(
            "renewed at a time {} s ahead of this machine's clock: check both machines' clocks (NTP)",
            ahead.as_secs()
        )
    } else {
        format!("renewed {} s ago", behind.as_secs())
    };
    anyhow::anyhow!(
        "{place} is claimed by another vsamrd ({} on host {}, data dir {}; {renewed}): two servers on one bucket would each take its datasets for their own; give this server a bucket of its own, or stop that one (a stopped server gives its claim back; one that died loses it {} s after its last renewal)",
        theirs.server,
        theirs.host,
        theirs.data_dir,
        LAPSES_AFTER.as_secs()
    )
}

/// What became of a claim object while it was watched.
enum Watched {
    /// The same version throughout.
    Unchanged,
    /// Written again (its holder now, if it names one) or removed.
    Changed(Option<Holder>),
}

/// Reads the claim object `name` for `within`, until it is no longer the
/// version `etag`.
async fn watch(grant: &ObjectGrant, name: &str, etag: &str, within: Duration) -> Result<Watched> {
    let until = tokio::time::Instant::now() + within;
    while tokio::time::Instant::now() < until {
        tokio::time::sleep(WATCH_EVERY.min(within)).await;
        match grant.get(name).await.map_err(object_error)? {
            Some(object) if object.etag == etag => {}
            Some(object) => {
                return Ok(Watched::Changed(serde_json::from_slice(&object.body).ok()));
            }
            None => return Ok(Watched::Changed(None)),
        }
    }
    Ok(Watched::Unchanged)
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
        match renew_once(&grant, &name, &holder, &etag).await {
            Renewal::Renewed => {}
            Renewal::TakenOver(by) => {
                lost.store(true, Ordering::Release);
                tracing::error!(bucket = %place, "this server's claim on the bucket was taken over by {by} (this one could not renew it for {} s): both now write its datasets; stop one of them", LAPSES_AFTER.as_secs());
                return;
            }
            Renewal::Failed(error) => {
                tracing::warn!(bucket = %place, "the bucket's claim could not be renewed: {error:?}; tried again in {} s", RENEW_EVERY.as_secs());
            }
        }
    }
}

/// What one renewal of the claim found.
#[derive(Debug)]
enum Renewal {
    /// The claim is this server's, renewed.
    Renewed,
    /// Another server holds it now (named).
    TakenOver(String),
    /// The store did not answer: try again.
    Failed(ObjectError),
}

/// Writes the claim again if it is still the version this server wrote
/// last. One written since is another server's, or this server's own
/// renewal that the store took while the connection broke before its
/// answer (a store stopping does that): that one names this very process,
/// and the claim is still this server's.
async fn renew_once(
    grant: &ObjectGrant,
    name: &str,
    holder: &Holder,
    etag: &Mutex<String>,
) -> Renewal {
    let ours = etag.lock_or_stop().clone();
    match grant.put_if_match(name, holder.now(), ours).await {
        Ok(next) => {
            *etag.lock_or_stop() = next;
            Renewal::Renewed
        }
        Err(ObjectError::PreconditionFailed) => match grant.get(name).await {
            Ok(Some(object)) => match serde_json::from_slice::<Holder>(&object.body) {
                Ok(now) if now.server == holder.server && now.is_same_server(holder) => {
                    *etag.lock_or_stop() = object.etag;
                    Renewal::Renewed
                }
                Ok(now) => Renewal::TakenOver(format!("{} on host {}", now.server, now.host)),
                Err(_) => {
                    Renewal::TakenOver("another program (the claim object is not a claim)".into())
                }
            },
            Ok(None) => Renewal::TakenOver("another program (the claim object was removed)".into()),
            Err(error) => Renewal::Failed(error),
        },
        Err(error) => Renewal::Failed(error),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn elsewhere(renewed_ms: u64) -> Vec<u8> {
        serde_json::to_vec(&Holder {
            server: "vsamrd 0.0.0 192.0.2.1:2387 pid 1".into(),
            host: "elsewhere".into(),
            data_dir: "/srv/vsamrd".into(),
            renewed_ms,
        })
        .unwrap()
    }

    /// A renewal the store took but whose answer was lost leaves the
    /// claim a version this server did not see written: the next renewal
    /// finds it names this very process and goes on; one another server
    /// wrote is a takeover, named.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_renewal_whose_answer_was_lost_keeps_the_claim() {
        let dir = tempfile::tempdir().unwrap();
        let spec = BucketSpec::Directory(dir.path().join("bucket"));
        let this = Holder::this_server("127.0.0.1:2387", dir.path());
        let claim = BucketClaim::take(&spec, "", &this).await.unwrap();
        // The claim object written as `body`, then a renewal.
        let renew_after = |body: Vec<u8>| {
            let claim = &claim;
            let this = &this;
            async move {
                claim
                    .grant
                    .put(CLAIM, body, PutMode::Overwrite)
                    .await
                    .unwrap();
                renew_once(&claim.grant, &claim.name, this, &claim.etag).await
            }
        };
        // As a renewal whose answer was lost leaves it.
        let renewed = renew_after(this.now()).await;
        assert!(matches!(renewed, Renewal::Renewed), "{renewed:?}");
        let renewed = renew_once(&claim.grant, &claim.name, &this, &claim.etag).await;
        assert!(matches!(renewed, Renewal::Renewed), "{renewed:?}");
        // The same server started again is another process: a takeover.
        let again = Holder::this_server("127.0.0.1:2388", dir.path());
        let taken = renew_after(again.now()).await;
        assert!(
            matches!(&taken, Renewal::TakenOver(by) if by.contains("127.0.0.1:2388")),
            "{taken:?}"
        );
        let taken = renew_after(elsewhere(now_ms())).await;
        assert!(
            matches!(&taken, Renewal::TakenOver(by) if by.contains("on host elsewhere")),
            "{taken:?}"
        );
        claim.release().await;
    }

    /// A claim whose time looks lapsed is taken over only once it has not
    /// changed for the watch: a holder that renews it (its clock behind
    /// this machine's) keeps it, and the refusal names the clocks; so
    /// does one whose time is ahead.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_claim_is_taken_over_only_if_it_is_not_renewed_whatever_the_clocks_say() {
        let dir = tempfile::tempdir().unwrap();
        let spec = BucketSpec::Directory(dir.path().join("bucket"));
        let grant = ObjectGrant::new(
            &spec,
            Duration::from_secs(5),
            MAX_CLAIM_BYTES,
            &tokio::runtime::Handle::current(),
        )
        .unwrap();
        let this = Holder::this_server("127.0.0.1:2387", dir.path());
        let minute_ago = || now_ms() - 60_000;

        // A holder that lives, its clock a minute behind this machine's.
        grant
            .put(CLAIM, elsewhere(minute_ago()), PutMode::Overwrite)
            .await
            .unwrap();
        let renewing = tokio::spawn({
            let grant = grant.clone();
            async move {
                loop {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    let _ = grant
                        .put(CLAIM, elsewhere(minute_ago()), PutMode::Overwrite)
                        .await;
                }
            }
        });
        let refused = BucketClaim::take_watching(&spec, "", &this, Duration::from_secs(2))
            .await
            .err()
            .expect("a claim renewed while watched is not taken over");
        let refused = format!("{refused:#}");
        assert!(
            refused.contains("192.0.2.1:2387")
                && refused.contains("the time it writes is 60 s behind this machine's clock"),
            "{refused}"
        );

        // The same holder gone: after the watch, its claim is taken over.
        renewing.abort();
        let _ = renewing.await;
        let started = std::time::Instant::now();
        let taken = BucketClaim::take_watching(&spec, "", &this, Duration::from_secs(1))
            .await
            .expect("a claim not renewed is taken over");
        assert!(started.elapsed() >= Duration::from_secs(1));
        let now: Holder =
            serde_json::from_slice(&grant.get(CLAIM).await.unwrap().unwrap().body).unwrap();
        assert!(now.is_same_server(&this), "{now:?}");
        taken.release().await;

        // A time ahead of this machine's clock is refused at once, saying so.
        grant
            .put(CLAIM, elsewhere(now_ms() + 120_000), PutMode::Overwrite)
            .await
            .unwrap();
        let refused = BucketClaim::take_watching(&spec, "", &this, Duration::from_secs(2))
            .await
            .err()
            .expect("refused");
        assert!(
            format!("{refused:#}").contains("s ahead of this machine's clock"),
            "{refused:#}"
        );
    }
}
