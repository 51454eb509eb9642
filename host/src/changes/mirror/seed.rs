//! A mirror's copy: each dataset defined on the mirror and brought level
//! with its primary before the mirror follows the log, and the names a
//! mirror keeps on a shared PostgreSQL database, claimed before anything
//! is written there and given back when the mirror is removed.

use super::{Mirror, Phase};
use crate::after_panic::LockOrStop;
use crate::migrate::copy;
use crate::runtime::call::{Call, CallError};
use crate::vsam::Shared;
use crate::vsam::placement::{Covered, Mirror as Follower};
use std::sync::atomic::AtomicBool;
use vsam_plugin_sdk::StoreError;

impl Mirror {
    /// Copies each dataset of the rule not followed yet.
    pub(super) async fn seed_all(&self, shared: &Shared, log_id: &str) -> Result<(), String> {
        let pattern = self.rule.load().datasets.clone();
        for def in shared.catalog.list(&pattern) {
            if def.relation.is_some()
                || def.backend == self.backend
                || self.live.lock_or_stop().saved.seeded.contains(&def.name)
            {
                continue;
            }
            self.set_phase(Phase::Copying(def.name.clone()));
            let result = self.seed(shared, &def, log_id).await;
            // Following once every dataset is copied (see `run`).
            self.set_phase(Phase::Starting);
            result?;
            self.live
                .lock_or_stop()
                .saved
                .seeded
                .insert(def.name.clone());
            self.save()
                .map_err(|e| format!("cannot save the mirror's state: {e}"))?;
        }
        Ok(())
    }

    /// Defines `def` on the mirror and brings it level with its primary.
    async fn seed(
        &self,
        shared: &Shared,
        def: &crate::catalog::DatasetDef,
        log_id: &str,
    ) -> Result<(), String> {
        if let Some(copy) = shared.moving_copy(&def.name)
            && copy.name() == self.backend
        {
            return Err(format!(
                "dataset {} is being migrated to or from backend {}: the migration's copy there has the storage the mirror would write; the mirror copies it once the migration is rolled back or finalized",
                def.name, self.backend
            ));
        }
        let target = self.target(shared)?;
        match target
            .replica_call(Call::Create(def.to_plugin(), def.layout.clone()))
            .await
        {
            Ok(_) | Err(CallError::Store(StoreError::AlreadyExists)) => {}
            Err(error) => {
                return Err(format!(
                    "mirror {} cannot hold dataset {} ({}): {error}",
                    self.backend,
                    def.name,
                    def.organization.name()
                ));
            }
        }
        // Before the copy writes anything there.
        if let Some(url) = target.shared_database() {
            self.claim_on(shared, &url, &def.name, log_id).await?;
        }
        let state = shared
            .acquire(def)
            .map_err(|status| format!("dataset {}: {}", def.name, status.message))?;
        let follower = Follower::new(target, Covered::All);
        let cancel = AtomicBool::new(false);
        let result = copy::level(&state, &state.backend(), &follower, &cancel).await;
        // The copy read it whole: closed as a program's last CLOSE would.
        if let Err(status) = shared.release_and_flush(&state).await {
            tracing::warn!(mirror = %self.backend, dataset = %def.name, "after the copy: {}", status.message);
        }
        let repaired =
            result.map_err(|e| format!("copying {} to mirror {}: {e}", def.name, self.backend))?;
        tracing::info!(
            mirror = %self.backend,
            dataset = %def.name,
            "copied to the mirror ({repaired} records written or erased); it follows from here"
        );
        // Closed there as a program's last CLOSE would (see `closing`):
        // a copy of many datasets leaves none of them held open.
        self.close(shared, vec![def.to_plugin()]).await;
        Ok(())
    }

    /// Makes sure that `name` on the shared database at `url` is this
    /// mirror's alone: no dataset of the fleet is defined there under it
    /// (the copy would overwrite that dataset), and no other mirror keeps
    /// it (the two would overwrite each other); then claims it, so that a
    /// DEFINE there is refused while this mirror keeps it.
    pub(super) async fn claim_on(
        &self,
        shared: &Shared,
        url: &str,
        name: &str,
        log_id: &str,
    ) -> Result<(), String> {
        let session = shared.fleet.session(url);
        let cannot = |why: String| {
            format!(
                "mirror {} cannot keep dataset {name} on its database ({}): {why}",
                self.backend,
                session.label()
            )
        };
        if let Some(why) = crate::vsam::shared_catalog::reserved_on(shared, name, &self.backend) {
            return Err(cannot(why));
        }
        let defined = session
            .entry(name)
            .await
            .map_err(|refusal| cannot(refusal.to_string()))?;
        if let Some(entry) = defined.filter(|entry| entry.definition.is_some()) {
            return Err(cannot(format!(
                "a dataset of that name is defined there, by {}, and the copy would overwrite it; mirror it to another database, or rename one of them",
                entry.server
            )));
        }
        self.claimed_on.lock_or_stop().insert(url.to_string());
        match session
            .claim_mirrored(name, log_id, &self.backend)
            .await
            .map_err(|refusal| cannot(refusal.to_string()))?
        {
            None => Ok(()),
            Some(holder) => Err(cannot(format!(
                "{holder} keeps a dataset of that name there, and the two mirrors would overwrite each other; mirror it to another database (if that mirror is gone for good, delete the name's row from table _vsamrd_mirrored)"
            ))),
        }
    }
}

/// Gives back the names mirror backend `mirror` of change log `log_id`
/// kept on the shared database at `url` (it was removed from the
/// configuration): true once they are. Otherwise says why; its state file
/// stays, so the next start tries again (see `followers`).
pub(in crate::changes) async fn give_back_names(
    shared: &Shared,
    url: &str,
    log_id: &str,
    mirror: &str,
) -> bool {
    let session = shared.fleet.session(url);
    match session.give_back_mirrored(log_id, mirror).await {
        Ok(()) => {
            tracing::info!(
                mirror,
                "the mirror was removed from the configuration: the names it kept on {} are given back",
                session.label()
            );
            true
        }
        Err(refusal) => {
            tracing::warn!(
                mirror,
                "the mirror was removed from the configuration, but the names it kept on {} cannot be given back now ({refusal}); tried again at the next start",
                session.label()
            );
            false
        }
    }
}
