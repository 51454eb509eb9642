//! The worker's group commit, lookups and generations, on fake stores.

use super::super::call::{Call, CallError, CallResult, RecordStore, Reply};
use super::group::run_group;
use super::*;
use std::sync::Arc;
use vsam_plugin_sdk::{Direction, Organization, Start, StoreError};

#[derive(Default)]
struct Fake {
    calls: Vec<&'static str>,
    fail_sync: bool,
    fail_replace: bool,
    resets: u32,
}

impl RecordStore for Fake {
    fn call(&mut self, call: Call) -> CallResult {
        self.calls.push(call.name());
        match call {
            Call::Sync if self.fail_sync => {
                Err(CallError::Store(StoreError::NoSpace("disk full".into())))
            }
            Call::Replace(..) if self.fail_replace => Err(CallError::Store(StoreError::NotFound)),
            Call::Get(..) => Ok(Reply::Record(None)),
            _ => Ok(Reply::Done),
        }
    }
    fn reset(&mut self) {
        self.resets += 1;
    }
}

fn ds() -> Dataset {
    Dataset {
        name: "A".into(),
        organization: Organization::Esds,
        key_offset: 0,
        key_length: 0,
        max_record_length: 9,
        min_record_length: 1,
        codepage: "ascii".into(),
    }
}

fn chain(calls: Vec<Call>) -> (Job, oneshot::Receiver<Vec<CallResult>>) {
    let (answer, receiver) = Answer::channel();
    (
        Job::Run {
            calls,
            answer,
            recorded: true,
        },
        receiver,
    )
}

fn job(call: Call) -> (Job, oneshot::Receiver<Vec<CallResult>>) {
    chain(vec![call])
}

fn only(mut answer: oneshot::Receiver<Vec<CallResult>>) -> CallResult {
    let mut results = answer.try_recv().unwrap();
    assert_eq!(results.len(), 1);
    results.pop().unwrap()
}

#[tokio::test]
async fn one_sync_serves_a_group_of_writes() {
    let mut store = Fake::default();
    let (insert, inserted) = job(Call::Insert(ds(), vec![1], vec![1]));
    let (get, got) = job(Call::Get(ds(), vec![1]));
    let (replace, replaced) = job(Call::Replace(ds(), vec![1], vec![2]));
    run_group(&mut store, vec![insert, get, replace], None).await;
    assert_eq!(store.calls, ["insert", "get", "replace", "sync"]);
    for answer in [inserted, got, replaced] {
        assert!(only(answer).is_ok());
    }
    let mut reads = Fake::default();
    let (get, _) = job(Call::Get(ds(), vec![1]));
    run_group(&mut reads, vec![get], None).await;
    assert_eq!(reads.calls, ["get"], "no sync without a write");
}

#[tokio::test]
async fn a_group_whose_writes_all_failed_still_ends_with_a_sync() {
    let mut store = Fake {
        fail_replace: true,
        ..Fake::default()
    };
    let (replace, replaced) = job(Call::Replace(ds(), vec![1], vec![2]));
    run_group(&mut store, vec![replace], None).await;
    assert_eq!(store.calls, ["replace", "sync"]);
    assert!(matches!(
        only(replaced),
        Err(CallError::Store(StoreError::NotFound))
    ));
}

#[tokio::test]
async fn a_failed_sync_fails_the_writes_and_resets_the_store() {
    let mut store = Fake {
        fail_sync: true,
        ..Fake::default()
    };
    let (insert, inserted) = job(Call::Insert(ds(), vec![1], vec![1]));
    let (get, got) = job(Call::Get(ds(), vec![1]));
    run_group(&mut store, vec![insert, get], None).await;
    assert!(matches!(
        only(inserted),
        Err(CallError::Store(StoreError::NoSpace(_)))
    ));
    assert!(only(got).is_ok(), "reads are unaffected");
    assert_eq!(store.resets, 1);
}

#[tokio::test]
async fn a_chain_stops_at_its_first_failure_and_shares_the_sync() {
    let mut store = Fake {
        fail_replace: true,
        ..Fake::default()
    };
    let (job, mut answer) = chain(vec![
        Call::Insert(ds(), vec![1], vec![1]),
        Call::Replace(ds(), vec![1], vec![2]),
        Call::Insert(ds(), vec![2], vec![2]),
    ]);
    let (other, other_answer) = job_insert(3);
    run_group(&mut store, vec![job, other], None).await;
    assert_eq!(store.calls, ["insert", "replace", "insert", "sync"]);
    let results = answer.try_recv().unwrap();
    assert_eq!(results.len(), 2, "the third call never ran");
    assert!(results[0].is_ok());
    assert!(matches!(
        results[1],
        Err(CallError::Store(StoreError::NotFound))
    ));
    assert!(only(other_answer).is_ok());
}

fn job_insert(key: u8) -> (Job, oneshot::Receiver<Vec<CallResult>>) {
    job(Call::Insert(ds(), vec![key], vec![key]))
}

/// A store that logs which instance ran what, and when it is dropped, for
/// routing tests.
struct Logged {
    who: &'static str,
    log: Arc<std::sync::Mutex<Vec<String>>>,
}

impl RecordStore for Logged {
    fn call(&mut self, call: Call) -> CallResult {
        self.log
            .lock()
            .unwrap()
            .push(format!("{} {}", self.who, call.name()));
        Ok(match call {
            Call::Get(..) => Reply::Record(None),
            _ => Reply::Done,
        })
    }
    fn reset(&mut self) {
        self.log.lock().unwrap().push(format!("{} reset", self.who));
    }
}

impl Drop for Logged {
    fn drop(&mut self) {
        self.log
            .lock()
            .unwrap()
            .push(format!("{} dropped", self.who));
    }
}

/// A backend whose writer and readers (named `readers`) are [`Logged`]
/// stores writing one log.
fn logged_backend(readers: &[&'static str]) -> (BackendHandle, Arc<std::sync::Mutex<Vec<String>>>) {
    let log = Arc::new(std::sync::Mutex::new(Vec::new()));
    let store = |who| -> Box<dyn RecordStore> {
        Box::new(Logged {
            who,
            log: log.clone(),
        })
    };
    let backend = BackendHandle::spawn(
        "b",
        VersionInfo::native("p"),
        store("writer"),
        readers.iter().map(|who| store(who)).collect(),
    )
    .unwrap();
    (backend, log)
}

#[tokio::test]
async fn a_stopped_backend_runs_what_was_queued_before_then_drops_its_stores() {
    let (backend, log) = logged_backend(&["r0"]);
    let before = backend.submit(vec![Call::Insert(ds(), vec![1], vec![1])]);
    let stopped = backend.stop(std::time::Duration::from_secs(5));
    let lookup_after = backend.submit(vec![Call::Get(ds(), vec![1])]);
    let write_after = backend.submit(vec![Call::Insert(ds(), vec![2], vec![2])]);
    assert!(stopped.await, "the tasks ended");
    let mut lines = log.lock().unwrap().clone();
    lines.sort();
    assert_eq!(
        lines,
        [
            "r0 dropped",
            "writer dropped",
            "writer insert",
            "writer sync"
        ],
        "the write queued before the stop ran and was synced, nothing after it ran, and both stores are gone"
    );
    assert!(before.answers().await[0].is_ok());
    for after in [lookup_after, write_after] {
        let answer = after.answers().await;
        assert!(
            matches!(&answer[..], [Err(CallError::Unavailable(why))] if why == "backend b has stopped"),
            "{answer:?}"
        );
    }
    let later = backend.call(Call::Get(ds(), vec![1])).await;
    assert!(matches!(later, Err(CallError::Unavailable(_))), "{later:?}");
    assert!(
        backend.stop(std::time::Duration::from_secs(5)).await,
        "a second stop finds the tasks ended"
    );
}

#[tokio::test]
async fn readers_serve_lookups_and_forget_datasets_the_writer_changed() {
    let (backend, log) = logged_backend(&["r0", "r1"]);
    assert_eq!(backend.readers(), 2);
    for _ in 0..2 {
        backend.call(Call::Get(ds(), vec![1])).await.unwrap();
    }
    backend
        .call(Call::Scan(ds(), Start::Edge, Direction::Forward, 5))
        .await
        .unwrap();
    backend
        .call(Call::Insert(ds(), vec![1], vec![1]))
        .await
        .unwrap();
    backend.call(Call::Create(ds(), None)).await.unwrap();
    // The resets are queued before the next lookup on each reader.
    backend.call(Call::Get(ds(), vec![1])).await.unwrap();
    backend.call(Call::Get(ds(), vec![1])).await.unwrap();
    let log = log.lock().unwrap().clone();
    let of = |who: &str| -> Vec<String> {
        log.iter()
            .filter(|line| line.starts_with(who))
            .cloned()
            .collect()
    };
    assert_eq!(
        of("writer"),
        ["writer insert", "writer sync", "writer create"]
    );
    assert_eq!(of("r0"), ["r0 get", "r0 scan", "r0 reset", "r0 get"]);
    assert_eq!(of("r1"), ["r1 get", "r1 reset", "r1 get"]);
}

/// A store that answers GET and get-many with the key itself.
#[derive(Default)]
struct Echo {
    calls: Vec<String>,
}

impl RecordStore for Echo {
    fn call(&mut self, call: Call) -> CallResult {
        Ok(match call {
            Call::Get(ds, key) => {
                self.calls.push(format!("get {}", ds.name));
                Reply::Record(Some(key))
            }
            Call::GetMany(ds, keys) => {
                self.calls
                    .push(format!("get-many {} {}", ds.name, keys.len()));
                Reply::Records(keys.into_iter().map(Some).collect())
            }
            other => {
                self.calls.push(other.name().to_string());
                Reply::Done
            }
        })
    }
}

#[tokio::test]
async fn a_chore_runs_on_the_writer_between_two_committed_groups() {
    let (backend, log) = logged_backend(&[]);
    let before = backend.submit(vec![Call::Insert(ds(), vec![1], vec![1])]);
    let chore = backend.between_groups({
        let log = log.clone();
        async move {
            log.lock().unwrap().push("chore".to_string());
            7
        }
    });
    let after = backend.submit(vec![Call::Insert(ds(), vec![2], vec![2])]);
    let (before, chore, after) = tokio::join!(before.answers(), chore, after.answers());
    assert!(before[0].is_ok() && after[0].is_ok());
    assert_eq!(chore, Some(7));
    assert_eq!(
        *log.lock().unwrap(),
        [
            "writer insert",
            "writer sync",
            "chore",
            "writer insert",
            "writer sync"
        ]
    );
}

#[tokio::test]
async fn consecutive_gets_of_a_dataset_become_one_lookup() {
    let other = Dataset {
        name: "B".into(),
        ..ds()
    };
    let mut store = Echo::default();
    let jobs = vec![
        job(Call::Get(ds(), vec![1])),
        job(Call::Get(ds(), vec![2])),
        job(Call::Insert(ds(), vec![9], vec![9])),
        job(Call::Get(ds(), vec![3])),
        job(Call::Get(other.clone(), vec![4])),
        job(Call::Get(other.clone(), vec![5])),
        job(Call::Get(other, vec![6])),
    ];
    let (jobs, answers): (Vec<_>, Vec<_>) = jobs.into_iter().unzip();
    run_group(&mut store, jobs, None).await;
    assert_eq!(
        store.calls,
        ["get-many A 2", "insert", "get A", "get-many B 3", "sync"],
        "nothing moves across the write"
    );
    let keys: Vec<u8> = answers
        .into_iter()
        .filter_map(|answer| match only(answer) {
            Ok(Reply::Record(Some(key))) => Some(key[0]),
            _ => None,
        })
        .collect();
    assert_eq!(keys, [1, 2, 3, 4, 5, 6], "each GET gets its own record");
}

/// A store whose lookups and inserts of key 7 trap (the instance is
/// replaced).
struct Poisoned;

impl RecordStore for Poisoned {
    fn call(&mut self, call: Call) -> CallResult {
        let trap = || Err(CallError::Fault("trapped".into()));
        match call {
            Call::Get(_, key) | Call::Insert(_, key, _) if key == [7] => trap(),
            Call::Get(_, key) => Ok(Reply::Record(Some(key))),
            Call::GetMany(_, keys) if keys.contains(&vec![7]) => trap(),
            Call::GetMany(_, keys) => Ok(Reply::Records(keys.into_iter().map(Some).collect())),
            _ => Ok(Reply::Done),
        }
    }
}

#[tokio::test]
async fn a_lookup_that_traps_fails_only_the_get_that_caused_it() {
    let (jobs, answers): (Vec<_>, Vec<_>) = [1u8, 7, 3]
        .into_iter()
        .map(|key| job(Call::Get(ds(), vec![key])))
        .unzip();
    run_group(&mut Poisoned, jobs, None).await;
    let results: Vec<CallResult> = answers.into_iter().map(only).collect();
    assert!(matches!(results[0], Ok(Reply::Record(Some(ref k))) if k == &[1]));
    assert!(matches!(results[1], Err(CallError::Fault(_))));
    assert!(matches!(results[2], Ok(Reply::Record(Some(ref k))) if k == &[3]));
}

#[tokio::test]
async fn writes_whose_instance_a_fault_dropped_are_not_acknowledged() {
    let (before, before_answer) = job_insert(1);
    let (chain_before, mut chain_answer) = chain(vec![
        Call::Insert(ds(), vec![4], vec![4]),
        Call::Insert(ds(), vec![5], vec![5]),
    ]);
    let (read, read_answer) = job(Call::Get(ds(), vec![2]));
    let (faulting, fault_answer) = job_insert(7);
    let (after, after_answer) = job_insert(3);
    run_group(
        &mut Poisoned,
        vec![before, chain_before, read, faulting, after],
        None,
    )
    .await;
    let lost = |result: &CallResult| matches!(result, Err(CallError::Fault(m)) if m.contains("replaced before it was synced (trapped)"));
    assert!(
        lost(&only(before_answer)),
        "held only by the dropped instance"
    );
    let chain_results = chain_answer.try_recv().unwrap();
    assert_eq!(chain_results.len(), 1, "the chain fails at its first write");
    assert!(lost(&chain_results[0]));
    assert!(only(read_answer).is_ok(), "a read is not undone");
    assert!(matches!(only(fault_answer), Err(CallError::Fault(m)) if m == "trapped"));
    assert!(
        only(after_answer).is_ok(),
        "run and synced by the new instance"
    );
}

/// A store on a disk whose every sync takes 300 ms.
struct SlowDisk;

impl RecordStore for SlowDisk {
    fn call(&mut self, call: Call) -> CallResult {
        if let Call::Sync = call {
            std::thread::sleep(std::time::Duration::from_millis(300));
        }
        Ok(Reply::Done)
    }

    fn writes_block(&self) -> bool {
        true
    }
}

/// How many 10 ms ticks a task sharing the runtime makes while `backend`
/// inserts `key`.
async fn ticks_while_inserting(backend: &BackendHandle, key: u8) -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    let ticks = Arc::new(AtomicU32::new(0));
    let counted = ticks.clone();
    let ticker = tokio::spawn(async move {
        loop {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            counted.fetch_add(1, Ordering::Relaxed);
        }
    });
    tokio::time::sleep(std::time::Duration::from_millis(15)).await;
    let before = ticks.load(Ordering::Relaxed);
    backend
        .call(Call::Insert(ds(), vec![key], vec![key]))
        .await
        .unwrap();
    let during = ticks.load(Ordering::Relaxed) - before;
    ticker.abort();
    during
}

#[test]
fn once_a_sync_is_slow_the_writes_wait_off_the_runtime_thread() {
    // One runtime thread: whatever blocks it stops every other task.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let backend = BackendHandle::spawn(
            "b",
            VersionInfo::native("slow"),
            Box::new(SlowDisk),
            Vec::new(),
        )
        .unwrap();
        // No sync was slow yet: the first waits on the thread itself.
        let first = ticks_while_inserting(&backend, 1).await;
        assert!(first <= 2, "the thread was held by the sync: {first} ticks");
        // The last sync was slow: the next group waits in block_in_place,
        // and the thread's other tasks go on meanwhile.
        let second = ticks_while_inserting(&backend, 2).await;
        assert!(
            second >= 10,
            "other tasks ran while the slow sync waited: {second} ticks of 10 ms in 300 ms"
        );
    });
}

#[tokio::test]
async fn a_lost_change_log_refuses_the_writes_it_would_record_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let (change_log, _) =
        crate::changes::ChangeLog::open(&dir.path().join("log"), 1 << 30).unwrap();
    let capture = Arc::new(crate::changes::Capture::new(
        change_log,
        vec!["A".into()],
        false,
    ));
    let (backend, _ran) = logged_backend(&[]);
    backend.set_capture(Some(capture.clone()));
    let followed = Call::Insert(ds(), vec![1], vec![1]);
    let other = Call::Insert(
        Dataset {
            name: "B".into(),
            ..ds()
        },
        vec![2],
        vec![2],
    );
    backend.call(followed.clone()).await.unwrap();
    assert!(capture.lose("the change log's directory went".into()));
    assert!(!capture.lose("again".into()), "lost once");
    match backend.call(followed).await {
        Err(CallError::Unavailable(why)) => {
            assert_eq!(why, "the change log's directory went")
        }
        other => panic!("{other:?}"),
    }
    backend.call(other).await.unwrap();
    backend.call(Call::Get(ds(), vec![1])).await.unwrap();
}

/// A store with a bug of the host's kind: it panics on the key X'FF'.
struct Panicky {
    log: Arc<std::sync::Mutex<Vec<String>>>,
}

impl RecordStore for Panicky {
    fn call(&mut self, call: Call) -> CallResult {
        let key = match &call {
            Call::Get(_, key) | Call::Insert(_, key, _) => key.clone(),
            _ => Vec::new(),
        };
        self.log.lock().unwrap().push(call.name().to_string());
        assert_ne!(key, [0xFF], "a bug met in {}", call.name());
        Ok(match call {
            Call::Get(..) => Reply::Record(None),
            _ => Reply::Done,
        })
    }
    fn reset(&mut self) {
        self.log.lock().unwrap().push("reset".into());
    }
}

#[tokio::test]
async fn a_panic_in_a_read_fails_its_call_and_the_backend_serves_on() {
    let log = Arc::new(std::sync::Mutex::new(Vec::new()));
    let store = Box::new(Panicky { log: log.clone() });
    let backend = BackendHandle::spawn("b", VersionInfo::native("p"), store, Vec::new()).unwrap();
    let failed = backend.call(Call::Get(ds(), vec![0xFF])).await;
    let Err(CallError::Unavailable(why)) = failed else {
        panic!("{failed:?}");
    };
    assert!(why.contains("a bug in vsamrd's own code ended it"), "{why}");
    // The instance's state was dropped, and the backend still serves.
    assert!(matches!(
        backend.call(Call::Get(ds(), vec![1])).await,
        Ok(Reply::Record(None))
    ));
    assert!(
        backend
            .call(Call::Insert(ds(), vec![2], vec![2]))
            .await
            .is_ok()
    );
    assert_eq!(
        *log.lock().unwrap(),
        ["get", "reset", "get", "insert", "sync"]
    );
}

#[test]
fn a_panic_in_a_group_of_writes_stops_vsamrd() {
    let (code, stderr) = crate::after_panic::stopped_in_child(
        "runtime::worker::tests::a_panic_in_a_group_of_writes_stops_vsamrd",
        || {
            let runtime = tokio::runtime::Runtime::new().unwrap();
            runtime.block_on(async {
                let log = Arc::new(std::sync::Mutex::new(Vec::new()));
                let store = Box::new(Panicky { log });
                let backend =
                    BackendHandle::spawn("ledger", VersionInfo::native("p"), store, Vec::new())
                        .unwrap();
                let _ = backend.call(Call::Insert(ds(), vec![0xFF], vec![1])).await;
                // Time for the stop, which ends the process first.
                tokio::time::sleep(std::time::Duration::from_secs(5)).await;
            });
        },
    );
    assert_eq!(
        code,
        Some(crate::after_panic::EXIT_HALF_CHANGED),
        "{stderr}"
    );
    assert!(stderr.contains("a bug met in insert"), "{stderr}");
    assert!(
        stderr
            .contains("vsamrd stops (exit code 70): a group of writes of backend ledger panicked"),
        "{stderr}"
    );
}
