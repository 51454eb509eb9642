//! Live migrations asked through the admin interface, as `vsamr admin
//! migrate` asks them.

use std::time::{Duration, Instant};
use vsam_client::admin::AdminClient;
use vsam_protocol::admin::{AdminAnswer, AdminCommand, MigrationRow};

/// The admin rows of `dataset` in `vsamr admin status`.
pub async fn migration_rows(admin: &mut AdminClient, dataset: &str) -> Vec<MigrationRow> {
    let AdminAnswer::Status(status) = admin.request(AdminCommand::Status).await.unwrap() else {
        panic!("not a status");
    };
    status
        .migrations
        .into_iter()
        .filter(|row| row.dataset == dataset)
        .collect()
}

/// Migrates `dataset` to backend `to` and waits (60 s at most) until it
/// has cut over; fails on any other end.
pub async fn migrate_until_cut_over(admin: &mut AdminClient, dataset: &str, to: &str) {
    admin
        .request(AdminCommand::Migrate {
            dataset: dataset.into(),
            to: to.into(),
        })
        .await
        .unwrap();
    let started = Instant::now();
    loop {
        let row = migration_rows(admin, dataset).await.pop().unwrap();
        match row.phase.as_str() {
            "counting" | "copying" | "verifying" => {}
            "cut-over" => return,
            _ => panic!("{row:?}"),
        }
        assert!(started.elapsed() < Duration::from_secs(60), "{row:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Asks to migrate `dataset` to backend `to`, which must be refused: the
/// refusal's message.
pub async fn refused_migration(admin: &mut AdminClient, dataset: &str, to: &str) -> String {
    let command = AdminCommand::Migrate {
        dataset: dataset.into(),
        to: to.into(),
    };
    match admin.request(command).await {
        Ok(answer) => panic!("the migration of {dataset} to {to} started: {answer:?}"),
        Err(refused) => refused.to_string(),
    }
}
