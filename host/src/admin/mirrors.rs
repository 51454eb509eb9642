//! `vsamr admin mirror ...`: the mirrors' and the change stream's state,
//! and the operator's hands on a mirror (pause, resume, resync, verify).

use super::AdminContext;
use vsam_protocol::admin::{AdminAnswer, AdminCommand};

/// Answers a mirror command.
pub(super) async fn answer(context: &AdminContext, command: AdminCommand) -> AdminAnswer {
    let error = |message: String| AdminAnswer::Error { message };
    let Some(followers) = context.shared.changes.followers() else {
        return error(
            "no mirror and no change stream is configured: add [[mirrors]] or [changes] stream = \"file\" (or \"postgres\") and reload".into(),
        );
    };
    let mirror_named = |backend: &str| {
        followers.mirror(backend).ok_or_else(|| {
            let names: Vec<String> = followers
                .report()
                .mirrors
                .into_iter()
                .map(|m| m.backend)
                .collect();
            format!(
                "no mirror runs on backend {backend}; mirrors: {}",
                if names.is_empty() {
                    "none".into()
                } else {
                    names.join(", ")
                }
            )
        })
    };
    let outcome = match command {
        AdminCommand::MirrorStatus => Ok(()),
        AdminCommand::MirrorPause { backend } => mirror_named(&backend).and_then(|m| {
            m.set_paused(true)
                .map_err(|e| format!("mirror {backend} paused, but its state could not be saved: {e}"))
        }),
        AdminCommand::MirrorResume { backend } => mirror_named(&backend).and_then(|m| {
            m.set_paused(false)
                .map_err(|e| format!("mirror {backend} resumed, but its state could not be saved: {e}"))
        }),
        AdminCommand::MirrorResync { backend } => mirror_named(&backend).map(|m| {
            tracing::warn!(mirror = %backend, "resync asked by the operator: every dataset is copied again");
            m.request_resync()
        }),
        AdminCommand::MirrorVerify { backend, dataset } => {
            return match followers.verify(&backend, &dataset).await {
                Ok(row) => AdminAnswer::MirrorVerified(row),
                Err(message) => error(format!("verify of {dataset} on mirror {backend}: {message}")),
            };
        }
        _ => Err("not a mirror command".into()),
    };
    match outcome {
        Ok(()) => AdminAnswer::Mirrors(followers.report()),
        Err(message) => error(message),
    }
}
