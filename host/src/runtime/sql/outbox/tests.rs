use super::*;
use crate::runtime::sql::DatabaseUrl;

/// A fresh SQLite file: its directory, grant and a session on it.
fn sqlite_store() -> (tempfile::TempDir, Arc<SqlGrant>, SqlSession) {
    let dir = tempfile::tempdir().unwrap();
    let url = DatabaseUrl::Sqlite(dir.path().join("store.db"));
    let timeout = std::time::Duration::from_secs(5);
    let grant = SqlGrant::for_vsamrd(&url, timeout).unwrap();
    let session = SqlSession::new(Some(grant.clone()));
    (dir, grant, session)
}

#[tokio::test]
async fn a_group_whose_row_cannot_be_written_is_rolled_back_whole() {
    let (_dir, _grant, mut session) = sqlite_store();
    // A ring of that name the host cannot write (made by hand).
    session
        .batch(&format!("CREATE TABLE {RING} (x INTEGER)"))
        .await
        .unwrap();
    session
        .execute("CREATE TABLE t (k TEXT)", &[])
        .await
        .unwrap();
    session.begin().await.unwrap();
    session
        .execute("INSERT INTO t VALUES ('K1')", &[])
        .await
        .unwrap();
    let row = OutboxRow {
        log_id: "log".into(),
        backend: "sql".into(),
        group: 1,
        changes: vec![1, 2, 3],
    };
    assert!(session.stage_outbox(row));
    match session.commit().await {
        Err(SqlError::Failed(message)) => {
            assert!(message.contains("rolled back"), "{message}")
        }
        other => panic!("the commit went on: {other:?}"),
    }
    assert_eq!(session.take_outbox_outcome(), Outcome::NotWritten);
    let rows = session.query("SELECT count(*) FROM t", &[]).await.unwrap();
    assert!(
        matches!(rows.as_slice(), [row] if matches!(row.as_slice(), [Value::Integer(0)])),
        "the plugin's write stayed: {rows:?}"
    );
}

/// Commits one group with its outbox row, as a backend's task does.
async fn commit_group(session: &mut SqlSession, log_id: &str, backend: &str, group: u64) {
    session.begin().await.unwrap();
    session
        .execute("INSERT INTO t VALUES (?)", &[Value::Integer(group as i64)])
        .await
        .unwrap();
    assert!(session.stage_outbox(OutboxRow {
        log_id: log_id.into(),
        backend: backend.into(),
        group,
        changes: format!("{log_id}/{backend}/{group}").into_bytes(),
    }));
    session.commit().await.unwrap();
    assert_eq!(session.take_outbox_outcome(), Outcome::Written);
}

/// Writes rows of two logs and two backends, reads and deletes some,
/// in a table made by the host or made before (`made_before`); the
/// session, to look at the table after.
async fn rows_of_each_log_and_backend_stay_apart(
    made_before: Option<&str>,
) -> (tempfile::TempDir, SqlSession) {
    let (dir, grant, mut session) = sqlite_store();
    session.batch("CREATE TABLE t (k INTEGER)").await.unwrap();
    if let Some(schema) = made_before {
        session.batch(schema).await.unwrap();
    }
    for group in [1, 2, 3] {
        commit_group(&mut session, "log-a", "b1", group).await;
    }
    commit_group(&mut session, "log-b", "b1", 1).await;
    commit_group(&mut session, "log-a", "b2", 4).await;
    let text = |rows: Vec<(u64, Vec<u8>)>| {
        rows.into_iter()
            .map(|(group, changes)| (group, String::from_utf8(changes).unwrap()))
            .collect::<Vec<_>>()
    };
    let read_a1 = read(&grant, "log-a", "b1").await.unwrap();
    assert_eq!(
        text(read_a1),
        [(1, "log-a/b1/1"), (2, "log-a/b1/2"), (3, "log-a/b1/3")].map(|(g, c)| (g, c.to_string()))
    );
    assert_eq!(
        delete_through(&grant, "log-a", "b1", 2, false)
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        text(read(&grant, "log-a", "b1").await.unwrap()),
        [(3, "log-a/b1/3".to_string())]
    );
    assert_eq!(
        text(read(&grant, "log-b", "b1").await.unwrap()),
        [(1, "log-b/b1/1".to_string())]
    );
    assert_eq!(
        text(read(&grant, "log-a", "b2").await.unwrap()),
        [(4, "log-a/b2/4".to_string())]
    );
    (dir, session)
}

/// The groups the outbox holds for (`log_id`, `backend`), in order.
async fn groups_of(grant: &Arc<SqlGrant>, log_id: &str, backend: &str) -> Vec<u64> {
    read(grant, log_id, backend)
        .await
        .unwrap()
        .into_iter()
        .map(|(group, _)| group)
        .collect()
}

/// Counts the rows `sql` selects (a `count(*)`).
async fn count(session: &mut SqlSession, sql: &str) -> i64 {
    match session.query(sql, &[]).await.unwrap().as_slice() {
        [row] => match row.as_slice() {
            [Value::Integer(count)] => *count,
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn an_sqlite_outbox_writes_each_group_over_a_slot_and_keeps_logs_and_backends_apart() {
    let (dir, mut session) = rows_of_each_log_and_backend_stay_apart(None).await;
    // No index beside the slots: a commit writes one page of the ring.
    let indexes = count(
        &mut session,
        &format!("SELECT count(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = '{RING}'"),
    )
    .await;
    assert_eq!(indexes, 0, "the ring has an index");
    // A group `SLOTS` later takes the slot of the one before: the ring
    // keeps its size, and the lane holds the newer group alone.
    let rows_before = count(&mut session, &format!("SELECT count(*) FROM {RING}")).await;
    commit_group(&mut session, "log-a", "b1", 3 + SLOTS).await;
    assert_eq!(
        count(&mut session, &format!("SELECT count(*) FROM {RING}")).await,
        rows_before
    );
    let grant = SqlGrant::for_vsamrd(
        &DatabaseUrl::Sqlite(dir.path().join("store.db")),
        std::time::Duration::from_secs(5),
    )
    .unwrap();
    assert_eq!(groups_of(&grant, "log-a", "b1").await, [3 + SLOTS]);
}

/// The database's size in pages.
async fn pages(session: &mut SqlSession) -> i64 {
    count(session, "SELECT page_count FROM pragma_page_count()").await
}

#[tokio::test]
async fn large_groups_leave_the_ring_once_emptied_and_their_pages_serve_the_next_ones() {
    let (_dir, grant, mut session) = sqlite_store();
    session.batch("CREATE TABLE t (k INTEGER)").await.unwrap();
    let commit = async |session: &mut SqlSession, group: u64, bytes: usize| {
        session.begin().await.unwrap();
        assert!(session.stage_outbox(OutboxRow {
            log_id: "log".into(),
            backend: "sql".into(),
            group,
            changes: vec![group as u8; bytes],
        }));
        session.commit().await.unwrap();
    };
    // A small group, then units of 200 KB each.
    commit(&mut session, 1, 300).await;
    for group in 2..=21 {
        commit(&mut session, group, 200_000).await;
    }
    let full = pages(&mut session).await;
    assert_eq!(
        delete_through(&grant, "log", "sql", 21, false)
            .await
            .unwrap(),
        21
    );
    let kept = count(
        &mut session,
        &format!("SELECT coalesce(sum(length(changes)), 0) FROM {RING}"),
    )
    .await;
    assert_eq!(
        kept, 300,
        "the small group stays in its slot, the large ones leave"
    );
    // The next large units take the pages the first ones gave back.
    for group in 22..=41 {
        commit(&mut session, group, 200_000).await;
    }
    let grown = pages(&mut session).await - full;
    assert!(
        grown < 20,
        "the database grew by {grown} pages for groups whose space was given back"
    );
    assert_eq!(
        read(&grant, "log", "sql")
            .await
            .unwrap()
            .into_iter()
            .map(|(group, changes)| (group, changes.len()))
            .collect::<Vec<_>>(),
        (22..=41).map(|group| (group, 200_000)).collect::<Vec<_>>(),
        "the groups not emptied are read back whole"
    );
}

#[tokio::test]
async fn emptying_across_the_end_of_the_lane_clears_the_groups_on_both_sides_and_no_others() {
    let (_dir, grant, mut session) = sqlite_store();
    session.batch("CREATE TABLE t (k INTEGER)").await.unwrap();
    let commit = async |session: &mut SqlSession, group: u64| {
        session.begin().await.unwrap();
        assert!(session.stage_outbox(OutboxRow {
            log_id: "log".into(),
            backend: "sql".into(),
            group,
            changes: vec![group as u8; 5000],
        }));
        session.commit().await.unwrap();
    };
    commit(&mut session, 7).await;
    assert_eq!(
        delete_through(&grant, "log", "sql", SLOTS - 3, false)
            .await
            .unwrap(),
        1
    );
    // Slots 16382, 16383, 0 and 1, then 2.
    for group in SLOTS - 2..=SLOTS + 2 {
        commit(&mut session, group).await;
    }
    assert_eq!(
        delete_through(&grant, "log", "sql", SLOTS + 1, false)
            .await
            .unwrap(),
        4
    );
    let kept: Vec<(i64, i64)> = session
        .query(
            &format!("SELECT grp, length(changes) FROM {RING} ORDER BY grp"),
            &[],
        )
        .await
        .unwrap()
        .into_iter()
        .map(|row| match row.as_slice() {
            [Value::Integer(group), Value::Integer(length)] => (*group, *length),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        kept,
        [7, SLOTS - 2, SLOTS - 1, SLOTS, SLOTS + 1, SLOTS + 2]
            .map(|group| (group as i64, if group == SLOTS + 2 { 5000 } else { 0 }))
            .to_vec(),
        "the emptied groups are cleared on both sides of the lane's end, the next one is kept"
    );
    assert_eq!(
        read(&grant, "log", "sql").await.unwrap().len(),
        1,
        "only the group past the mark is read back"
    );
}

#[tokio::test]
async fn rows_an_earlier_version_left_in_the_outbox_table_are_read_back_and_emptied() {
    let (_dir, grant, mut session) = sqlite_store();
    session.batch("CREATE TABLE t (k INTEGER)").await.unwrap();
    // The keyed table of an earlier version, with a group it left.
    session
        .batch(&format!(
            "CREATE TABLE {TABLE} (log_id TEXT NOT NULL, backend TEXT NOT NULL, grp BIGINT NOT NULL, changes BLOB NOT NULL, PRIMARY KEY (log_id, backend, grp)); \
             INSERT INTO {TABLE} VALUES ('log-a', 'b1', 1, x'01'), ('log-b', 'b1', 1, x'02')"
        ))
        .await
        .unwrap();
    commit_group(&mut session, "log-a", "b1", 2).await;
    let read_back = read(&grant, "log-a", "b1").await.unwrap();
    assert_eq!(
        read_back,
        [(1, vec![1]), (2, b"log-a/b1/2".to_vec())],
        "the old row, then the ring's"
    );
    assert_eq!(
        delete_through(&grant, "log-a", "b1", 2, false)
            .await
            .unwrap(),
        2
    );
    assert!(read(&grant, "log-a", "b1").await.unwrap().is_empty());
    assert_eq!(
        read(&grant, "log-b", "b1").await.unwrap(),
        [(1, vec![2])],
        "another log's old row stays"
    );
}

#[tokio::test]
async fn the_lanes_no_backend_writes_are_named_and_removed_with_their_slots_alone() {
    let (_dir, grant, mut session) = sqlite_store();
    session.batch("CREATE TABLE t (k INTEGER)").await.unwrap();
    for (log, backend, group) in [
        ("log-a", "b1", 1),
        ("log-a", "b1", 2),
        ("log-a", "b2", 3),
        ("log-old", "b1", 1),
        ("log-old", "b1", 2),
    ] {
        commit_group(&mut session, log, backend, group).await;
    }
    let mut unwritten = unwritten_lanes(&grant, "log-a", &["b1".to_string()])
        .await
        .unwrap();
    unwritten.sort();
    assert_eq!(
        unwritten,
        [("log-a", "b2"), ("log-old", "b1")].map(|(l, b)| (l.to_string(), b.to_string()))
    );
    assert_eq!(
        remove_unwritten_lane(&grant, "log-old", "b1")
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        remove_unwritten_lane(&grant, "log-a", "b2").await.unwrap(),
        1
    );
    assert!(
        unwritten_lanes(&grant, "log-a", &["b1".to_string()])
            .await
            .unwrap()
            .is_empty()
    );
    // The lane written goes on as it was; the ring holds its slots alone.
    assert_eq!(groups_of(&grant, "log-a", "b1").await, [1, 2]);
    assert_eq!(
        count(&mut session, &format!("SELECT count(*) FROM {RING}")).await,
        2
    );
    assert!(read(&grant, "log-old", "b1").await.unwrap().is_empty());
}
