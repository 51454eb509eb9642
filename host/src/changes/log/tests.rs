use super::super::change::Operation;
use super::*;
use vsam_plugin_sdk::{Dataset, Organization};

/// A change of dataset `A.B` under `key`.
pub(crate) fn change(key: &str, operation: Operation) -> Change {
    Change {
        sequence: 0,
        time_ms: 1,
        dataset: Dataset {
            name: "A.B".into(),
            organization: Organization::Ksds,
            key_offset: 0,
            key_length: 4,
            max_record_length: 20,
            min_record_length: 1,
            codepage: "cp037".into(),
        },
        record: matches!(operation, Operation::Insert).then(|| key.as_bytes().to_vec()),
        operation,
        key: key.as_bytes().to_vec(),
    }
}

fn keys(changes: &[Change]) -> Vec<(u64, String)> {
    changes
        .iter()
        .map(|c| (c.sequence, String::from_utf8_lossy(&c.key).into_owned()))
        .collect()
}

#[test]
fn committed_groups_read_back_in_commit_order_and_aborted_ones_never() {
    let dir = tempfile::tempdir().unwrap();
    let (log, doubt) = ChangeLog::open(dir.path(), 1 << 20).unwrap();
    assert!(doubt.is_empty());
    let a = log
        .prepare(
            "b1",
            &[
                change("K1", Operation::Insert),
                change("K2", Operation::Insert),
            ],
        )
        .unwrap();
    let b = log
        .prepare("b2", &[change("K3", Operation::Erase)])
        .unwrap();
    let c = log
        .prepare("b1", &[change("K4", Operation::Insert)])
        .unwrap();
    // Committed in another order than prepared.
    assert_eq!(log.commit(b).unwrap(), 1);
    log.abort(c).unwrap();
    assert_eq!(log.commit(a).unwrap(), 3);
    assert_eq!(log.last_committed(), 3);
    let mut reader = log.reader(0);
    let read = reader.next_batch(100).unwrap();
    assert_eq!(
        keys(&read),
        vec![(1, "K3".into()), (2, "K1".into()), (3, "K2".into())]
    );
    assert!(reader.next_batch(100).unwrap().is_empty());
    // From the middle, and a batch at a time.
    // A batch holds whole groups.
    let mut reader = log.reader(1);
    assert_eq!(
        keys(&reader.next_batch(1).unwrap()),
        vec![(2, "K1".into()), (3, "K2".into())]
    );
    let d = log
        .prepare("b2", &[change("K5", Operation::Insert)])
        .unwrap();
    log.commit(d).unwrap();
    assert_eq!(keys(&reader.next_batch(9).unwrap()), vec![(4, "K5".into())]);
}

#[test]
fn groups_written_after_their_commit_read_back_and_a_lost_tail_never_reuses_their_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = ChangeLog::open(dir.path(), 1 << 20).unwrap();
    let id = log.id().to_string();
    assert_eq!(id.len(), 16);
    let first = log.take_group().unwrap();
    let encoded = encode_group(first, "sql", &[change("K1", Operation::Insert)]);
    assert_eq!(log.write_committed(first, "sql", &encoded, 1).unwrap(), 1);
    let second = log.take_group().unwrap();
    let lost = encode_group(second, "sql", &[change("K2", Operation::Insert)]);
    assert_eq!(
        keys(&log.reader(0).next_batch(10).unwrap()),
        vec![(1, "K1".into())]
    );
    assert_eq!(log.missing(&[first, second]).unwrap(), vec![second]);
    log.make_durable().unwrap();
    assert_eq!(log.durable_group("sql"), first);
    assert_eq!(log.durable_group("other"), 0);
    drop(log);
    // The second group never reached the log (a stop after the
    // backend's commit): it is written from the outbox after a start,
    // and the numbers given out meanwhile are not handed out again.
    let (log, doubt) = ChangeLog::open(dir.path(), 1 << 20).unwrap();
    assert!(doubt.is_empty());
    assert_eq!(log.id(), id);
    assert_eq!(log.durable_group("sql"), first);
    assert!(log.take_group().unwrap() > second);
    assert_eq!(log.missing(&[first, second]).unwrap(), vec![second]);
    log.write_committed(second, "sql", &lost, 1).unwrap();
    assert!(log.missing(&[first, second]).unwrap().is_empty());
    assert_eq!(
        keys(&log.reader(0).next_batch(10).unwrap()),
        vec![(1, "K1".into()), (2, "K2".into())]
    );
    assert_eq!(decode_group(&lost).unwrap().group, second);
}

/// Committed groups wait in memory: a reader finds them (they are
/// written for it), a kill loses them (the outbox has them, and the
/// log reopened names them missing), a stop writes them.
#[test]
fn committed_groups_wait_in_memory_until_a_reader_a_sync_or_a_stop_writes_them() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = ChangeLog::open(dir.path(), 1 << 20).unwrap();
    let mut groups = Vec::new();
    for key in ["K1", "K2"] {
        let group = log.take_group().unwrap();
        let encoded = encode_group(group, "sql", &[change(key, Operation::Insert)]);
        log.write_committed(group, "sql", &encoded, 1).unwrap();
        groups.push(group);
    }
    let on_disk = |dir: &Path| -> u64 {
        segments(dir)
            .unwrap()
            .iter()
            .map(|(_, path)| std::fs::metadata(path).unwrap().len())
            .sum()
    };
    let reserved = on_disk(dir.path());
    // A kill now: the log reopened from its files lacks both groups.
    let copy = tempfile::tempdir().unwrap();
    for (_, path) in segments(dir.path()).unwrap() {
        std::fs::copy(&path, copy.path().join(path.file_name().unwrap())).unwrap();
    }
    std::fs::copy(dir.path().join("id"), copy.path().join("id")).unwrap();
    let (killed, _) = ChangeLog::open(copy.path(), 1 << 20).unwrap();
    assert_eq!(killed.missing(&groups).unwrap(), groups);
    assert!(killed.take_group().unwrap() > groups[1]);
    // A reader has them written first.
    assert_eq!(
        keys(&log.reader(0).next_batch(10).unwrap()),
        vec![(1, "K1".into()), (2, "K2".into())]
    );
    assert!(on_disk(dir.path()) > reserved);
    // One more, written by the stop.
    let group = log.take_group().unwrap();
    let encoded = encode_group(group, "sql", &[change("K3", Operation::Insert)]);
    log.write_committed(group, "sql", &encoded, 1).unwrap();
    drop(log);
    let (log, _) = ChangeLog::open(dir.path(), 1 << 20).unwrap();
    assert!(
        log.missing(&[groups[0], groups[1], group])
            .unwrap()
            .is_empty()
    );
    assert_eq!(log.last_committed(), 3);
}

#[test]
fn reserved_group_numbers_survive_a_log_that_lost_every_entry_after_the_reservation() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = ChangeLog::open(dir.path(), 1 << 20).unwrap();
    let first = log.take_group().unwrap();
    let reserved_length = std::fs::metadata(dir.path().join(segment_name(1)))
        .unwrap()
        .len();
    for _ in 0..10 {
        let group = log.take_group().unwrap();
        let encoded = encode_group(group, "sql", &[change("K", Operation::Insert)]);
        log.write_committed(group, "sql", &encoded, 1).unwrap();
    }
    let last = log.take_group().unwrap();
    drop(log);
    // A power cut keeps only what was synced: the reservation.
    let segment = dir.path().join(segment_name(1));
    let file = OpenOptions::new().write(true).open(&segment).unwrap();
    file.set_len(reserved_length).unwrap();
    let (log, _) = ChangeLog::open(dir.path(), 1 << 20).unwrap();
    let next = log.take_group().unwrap();
    assert!(
        next > last,
        "{next} was handed out before ({first}..={last})"
    );
    assert_eq!(log.last_committed(), 0);
}

#[test]
fn a_slot_is_written_again_only_once_the_log_holds_the_group_before_it_durably() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = ChangeLog::open(dir.path(), 1 << 20).unwrap();
    let commit = |log: &ChangeLog| {
        let group = log.take_group().unwrap();
        let encoded = encode_group(group, "sql", &[change("K", Operation::Insert)]);
        log.write_committed(group, "sql", &encoded, 1).unwrap();
        group
    };
    let first = commit(&log);
    assert!(log.durable_group("sql") < first, "written, not synced");
    // A ring of 4 slots: the group 4 after `first` takes its slot.
    log.make_durable_before_slot("sql", first + 4, 4).unwrap();
    assert_eq!(log.durable_group("sql"), first);
    let second = commit(&log);
    let third = commit(&log);
    // `first` is durable: its slot may take the next group there.
    log.make_durable_before_slot("sql", first + 4, 4).unwrap();
    assert_eq!(log.durable_group("sql"), first, "synced for nothing");
    // `second` is not.
    log.make_durable_before_slot("sql", second + 4, 4).unwrap();
    assert_eq!(
        log.durable_group("sql"),
        third,
        "synced through the last group written"
    );
}

#[test]
fn a_group_a_stop_left_committing_is_among_the_unsettled_numbers_of_its_backend() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = ChangeLog::open(dir.path(), 1 << 20).unwrap();
    let mut logged = 0;
    for _ in 0..5 {
        logged = log.take_group().unwrap();
        let encoded = encode_group(logged, "pg", &[change("K", Operation::Insert)]);
        log.write_committed(logged, "pg", &encoded, 1).unwrap();
    }
    // Taken by another backend meanwhile, then by `pg` for a COMMIT
    // the stop interrupts: the log never hears of it.
    log.take_group().unwrap();
    let running = log.take_group().unwrap();
    drop(log);
    let (log, _) = ChangeLog::open(dir.path(), 1 << 20).unwrap();
    let unsettled = log.unsettled_groups("pg");
    assert_eq!(unsettled.start, logged + 1, "logged groups are settled");
    assert!(unsettled.contains(&running), "{unsettled:?}");
    // What start-up awaits ends below what this run hands out.
    let next = log.take_group().unwrap();
    assert!(next >= unsettled.end, "{next} in {unsettled:?}");
    // A backend the log never heard of: the last four blocks.
    let other = log.unsettled_groups("other");
    assert_eq!(other.start, 1);
    assert!(other.contains(&running));
}

#[test]
fn a_reopened_log_goes_on_numbering_and_names_the_groups_in_doubt() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (log, _) = ChangeLog::open(dir.path(), 1 << 20).unwrap();
        let a = log
            .prepare("b1", &[change("K1", Operation::Insert)])
            .unwrap();
        log.commit(a).unwrap();
        log.prepare("b2", &[change("K2", Operation::Insert)])
            .unwrap();
    }
    // A torn frame at the end, as a kill mid-write leaves.
    let segment = segments(dir.path()).unwrap().pop().unwrap().1;
    let mut file = OpenOptions::new().append(true).open(&segment).unwrap();
    file.write_all(&[200, 0, 0, 0, 1, 2]).unwrap();
    drop(file);
    let (log, doubt) = ChangeLog::open(dir.path(), 1 << 20).unwrap();
    assert_eq!(doubt.len(), 1);
    assert_eq!(doubt[0].backend, "b2");
    assert_eq!(keys(&doubt[0].changes), vec![(0, "K2".into())]);
    log.settle(doubt[0].group, true).unwrap();
    let e = log
        .prepare("b1", &[change("K3", Operation::Insert)])
        .unwrap();
    assert!(e > doubt[0].group, "group numbers are never reused");
    log.commit(e).unwrap();
    let read = log.reader(0).next_batch(10).unwrap();
    assert_eq!(
        keys(&read),
        vec![(1, "K1".into()), (2, "K2".into()), (3, "K3".into())]
    );
}

#[test]
fn a_write_the_full_disk_cut_short_leaves_no_hole_in_a_rotated_segment() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = ChangeLog::open(dir.path(), 4096).unwrap();
    let commit = |key: &str, size: usize| {
        let group = log.take_group().unwrap();
        let mut insert = change(key, Operation::Insert);
        insert.record = Some(vec![b'x'; size]);
        let encoded = encode_group(group, "b", &[insert]);
        log.write_committed(group, "b", &encoded, 1).unwrap();
    };
    // Rotated: the current segment is one the log started.
    for i in 0..20 {
        commit(&format!("A{i:02}"), 400);
    }
    assert!(segments(dir.path()).unwrap().len() > 1);
    // Enough waiting to be written out, on a disk that fills halfway.
    log.fail_writes(true);
    commit("B00", 70_000);
    log.fail_writes(false);
    commit("B01", 10);
    log.make_durable().unwrap();
    let read = log.reader(0).next_batch(100).unwrap();
    let keys: Vec<_> = read.iter().map(|c| c.key.clone()).collect();
    assert_eq!(keys.len(), 22, "{:?}", keys.last());
    assert_eq!(keys[20..], [b"B00".to_vec(), b"B01".to_vec()]);
}

#[test]
fn a_rotation_the_full_disk_refuses_keeps_the_entries_and_is_made_once_it_has_room() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = ChangeLog::open(dir.path(), 4096).unwrap();
    let first = log.take_group().unwrap();
    let encoded = encode_group(first, "b", &[change("K0", Operation::Insert)]);
    log.write_committed(first, "b", &encoded, 1).unwrap();
    log.fail_writes(true);
    // Past the segment's size on a full disk: each group is taken all
    // the same, and waits in memory.
    for i in 1..=60 {
        let group = log.take_group().unwrap();
        let key = format!("K{i:02}");
        let encoded = encode_group(group, "b", &[change(&key, Operation::Insert)]);
        assert_eq!(log.write_committed(group, "b", &encoded, 1).unwrap(), i + 1);
    }
    assert_eq!(
        segments(dir.path()).unwrap().len(),
        1,
        "no segment was started"
    );
    log.fail_writes(false);
    let group = log.take_group().unwrap();
    let encoded = encode_group(group, "b", &[change("K61", Operation::Insert)]);
    log.write_committed(group, "b", &encoded, 1).unwrap();
    assert_eq!(
        segments(dir.path()).unwrap().len(),
        2,
        "the rotation was made"
    );
    let read = log.reader(0).next_batch(100).unwrap();
    assert_eq!(read.len(), 62);
    assert!(read.windows(2).all(|w| w[1].sequence == w[0].sequence + 1));
}

#[test]
fn segments_rotate_carry_waiting_groups_and_are_removed_once_passed() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = ChangeLog::open(dir.path(), 4096).unwrap();
    // A group that waits across many rotations.
    let slow = log
        .prepare("slow", &[change("S0", Operation::Insert)])
        .unwrap();
    for i in 0..200 {
        let g = log
            .prepare("b", &[change(&format!("K{i:03}"), Operation::Insert)])
            .unwrap();
        log.commit(g).unwrap();
    }
    assert!(segments(dir.path()).unwrap().len() > 3, "the log rotated");
    log.commit(slow).unwrap();
    let mut reader = log.reader(0);
    let read = reader.next_batch(1000).unwrap();
    assert_eq!(read.len(), 201);
    assert_eq!(read.last().unwrap().key, b"S0");
    assert!(read.windows(2).all(|w| w[1].sequence == w[0].sequence + 1));
    // A reader starting late finds the waiting group in its segment.
    let late = log.reader(200).next_batch(10).unwrap();
    assert_eq!(keys(&late), vec![(201, "S0".into())]);
    let before = segments(dir.path()).unwrap().len();
    log.retain_after(150).unwrap();
    let after = segments(dir.path()).unwrap();
    assert!(after.len() < before);
    assert!(after[0].0 <= 151, "sequence 151 is still held");
    assert_eq!(log.reader(150).next_batch(1000).unwrap().len(), 51);
    let gone = log.reader(0).next_batch(10).unwrap_err().to_string();
    assert!(gone.contains("no longer in the log"), "{gone}");
}

/// The bytes of the log's segment files, listed.
fn files_bytes(dir: &Path) -> u64 {
    segments(dir)
        .unwrap()
        .iter()
        .map(|(_, path)| std::fs::metadata(path).unwrap().len())
        .sum()
}

#[test]
fn the_size_the_status_shows_follows_rotations_removals_and_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = ChangeLog::open(dir.path(), 4096).unwrap();
    for i in 0..200 {
        let g = log
            .prepare("b", &[change(&format!("K{i:03}"), Operation::Insert)])
            .unwrap();
        log.commit(g).unwrap();
    }
    log.make_durable().unwrap();
    assert!(segments(dir.path()).unwrap().len() > 3, "the log rotated");
    assert_eq!(log.disk_bytes(), files_bytes(dir.path()));
    log.retain_after(150).unwrap();
    assert_eq!(log.disk_bytes(), files_bytes(dir.path()));
    // A write stuck on a stalled disk holds the writer's lock: the
    // status still answers.
    let held = log.writer.lock().unwrap();
    let (sent, answer) = std::sync::mpsc::channel();
    std::thread::scope(|scope| {
        scope.spawn(|| sent.send(log.disk_bytes()).unwrap());
        let size = answer.recv_timeout(std::time::Duration::from_secs(5));
        assert_eq!(size, Ok(files_bytes(dir.path())), "answered under the lock");
        drop(held);
    });
    let before = log.disk_bytes();
    drop(log);
    let (log, _) = ChangeLog::open(dir.path(), 4096).unwrap();
    assert_eq!(log.disk_bytes(), files_bytes(dir.path()));
    assert_eq!(log.disk_bytes(), before);
}
