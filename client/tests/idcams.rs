//! `vsamr idcams` end to end: decks as they appear in JCL, run against an
//! in-process vsamrd on the embedded default, checked by their listings,
//! their condition codes and what they left in the datasets.

use std::path::{Path, PathBuf};
use std::process::Command;
use vsam_host::RunningServer;
use vsam_host::config::Config;

/// Runs `vsamr` against one server, with files under one directory.
struct Deck {
    server: String,
    dir: PathBuf,
}

impl Deck {
    /// Runs a deck: its exit status (MAXCC) and listing.
    fn run(&self, deck: &str, args: &[&str]) -> (i32, String) {
        let path = self.dir.join("deck.jcl");
        std::fs::write(&path, deck).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_vsamr"))
            .env("VSAMR_SERVER", &self.server)
            .arg("idcams")
            .arg(&path)
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let output = within_two_minutes(child);
        let listing = String::from_utf8_lossy(&output.stdout).into_owned();
        let status = output.status.code().expect("vsamr exited");
        assert!(
            output.stderr.is_empty(),
            "stderr: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        (status, listing)
    }

    /// Runs a deck given on standard input, with `args` in place of the
    /// file (none, or `-`): its exit status and listing.
    fn run_from_stdin(&self, deck: &str, args: &[&str]) -> (i32, String) {
        use std::io::Write;
        let mut child = Command::new(env!("CARGO_BIN_EXE_vsamr"))
            .env("VSAMR_SERVER", &self.server)
            .arg("idcams")
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(deck.as_bytes())
            .unwrap();
        let output = within_two_minutes(child);
        let listing = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.stderr.is_empty(),
            "stderr: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        (output.status.code().expect("vsamr exited"), listing)
    }

    /// Another vsamr command's standard output (it must succeed).
    fn vsamr(&self, args: &[&str]) -> String {
        let output = Command::new(env!("CARGO_BIN_EXE_vsamr"))
            .env("VSAMR_SERVER", &self.server)
            .args(args)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "vsamr {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    fn file(&self, name: &str) -> String {
        self.dir.join(name).to_str().unwrap().to_string()
    }
}

/// The output of a vsamr that must end within two minutes: a deck that
/// hangs fails its test instead of holding the whole run.
fn within_two_minutes(child: std::process::Child) -> std::process::Output {
    let pid = child.id();
    let (done, finished) = std::sync::mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let output = child.wait_with_output().unwrap();
        let _ = done.send(());
        output
    });
    if finished
        .recv_timeout(std::time::Duration::from_secs(120))
        .is_err()
    {
        let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        panic!(
            "vsamr idcams did not end within two minutes: {:?}",
            waiter.join().unwrap()
        );
    }
    waiter.join().unwrap()
}

async fn server(dir: &Path) -> (RunningServer, Deck) {
    let mut config = Config::embedded_default();
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.move_data_dir(dir.join("data"));
    let server = RunningServer::start(&config).await.unwrap();
    let deck = Deck {
        server: server.addr.to_string(),
        dir: dir.to_path_buf(),
    };
    (server, deck)
}

/// The condition codes of the functions, in order, from the listing.
fn codes(listing: &str) -> Vec<u8> {
    listing
        .lines()
        .filter_map(|line| {
            line.strip_prefix("IDC0001I FUNCTION COMPLETED, HIGHEST CONDITION CODE WAS ")
        })
        .map(|code| code.trim().parse().unwrap())
        .collect()
}

const CUSTOMERS: &str = "\
000003JONES     BRISTOL   0003
000001SMITH     LONDON    0001
000002BROWN     LEEDS     0002
000005TAYLOR    YORK      0005
000004WILSON    BATH      0004
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_defines_loads_prints_lists_and_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let (server, deck) = server(dir.path()).await;
    let deck = tokio::task::spawn_blocking(move || {
        std::fs::write(deck.file("cust.txt"), CUSTOMERS).unwrap();
        let job = "\
//CUSTLOAD JOB (ACCT),'LOAD CUSTOMERS',CLASS=A,MSGCLASS=X
//*  DEFINE AND LOAD THE CUSTOMER MASTER
//STEP1    EXEC PGM=IDCAMS
//SYSPRINT DD SYSOUT=*
//CUSTIN   DD DSN=PROD.CUST.SEQ,DISP=SHR
//SYSIN    DD *
  /* THE MASTER FILE, KEYED BY CUSTOMER NUMBER */
  DEFINE CLUSTER (NAME(PROD.CUST.MASTER)            -
                  INDEXED                           -
                  KEYS(6 0)                         -
                  RECORDSIZE(40 80)                 -
                  FREESPACE(10 10)                  -
                  SHAREOPTIONS(2 3)                 -
                  VOLUMES(VOL001))                  -
         DATA    (NAME(PROD.CUST.MASTER.DATA)       -
                  CYLINDERS(5 1)                    -
                  CISZ(4096))                       -
         INDEX   (NAME(PROD.CUST.MASTER.INDEX))
  REPRO INFILE(SEQIN) OUTDATASET(PROD.CUST.MASTER)
  PRINT INDATASET(PROD.CUST.MASTER) CHAR COUNT(2)
  PRINT IDS(PROD.CUST.MASTER) DUMP FROMKEY(000004)
  LISTCAT ENTRIES(PROD.CUST.MASTER) ALL
  REPRO IDS(PROD.CUST.MASTER) OFILE(SEQOUT) -
        FKEY(000002) TKEY(000003)
/*
";
        let seqin = format!("SEQIN={}", deck.file("cust.txt"));
        let seqout = format!("SEQOUT={}", deck.file("out.txt"));
        let (status, listing) = deck.run(job, &["--dd", &seqin, "--dd", &seqout]);
        assert_eq!(status, 0, "{listing}");
        assert_eq!(codes(&listing), [0, 0, 0, 0, 0, 0], "{listing}");
        // The commands are listed as written, comments included.
        assert!(
            listing.contains("  /* THE MASTER FILE, KEYED BY CUSTOMER NUMBER */"),
            "{listing}"
        );
        assert!(
            listing.contains("FREESPACE(10 10)                  -"),
            "{listing}"
        );
        for ignored in [
            "FREESPACE(10 10)",
            "SHAREOPTIONS(2 3)",
            "VOLUMES(VOL001)",
            "CYLINDERS(5 1)",
            "CISZ(4096)",
        ] {
            assert!(
                listing.contains(&format!("VSR0001I {ignored} IGNORED")),
                "{ignored}: {listing}"
            );
        }
        assert!(
            listing.contains(
                "VSR0010I PROD.CUST.MASTER DEFINED: INDEXED KEYS(6 0) RECORDSIZE MAXIMUM 80"
            ),
            "{listing}"
        );
        assert!(
            listing.contains("IDC0005I NUMBER OF RECORDS PROCESSED WAS 5"),
            "{listing}"
        );
        // CHARACTER: in key order, two records.
        assert!(
            listing.contains("KEY OF RECORD - 000001\n000001SMITH     LONDON    0001\n\nKEY OF RECORD - 000002\n000002BROWN     LEEDS     0002\n"),
            "{listing}"
        );
        assert!(
            listing.contains("IDC0005I NUMBER OF RECORDS PROCESSED WAS 2"),
            "{listing}"
        );
        // DUMP: the key in hex, offsets, EBCDIC words and characters.
        assert!(
            listing.contains("KEY OF RECORD - F0F0F0F0F0F4\n000000  F0F0F0F0 F0F4E6C9 D3E2D6D5 40404040  C2C1E3C8"),
            "{listing}"
        );
        assert!(
            listing.contains("CLUSTER ------- PROD.CUST.MASTER"),
            "{listing}"
        );
        assert!(listing.contains("KEYLEN------------6"), "{listing}");
        assert!(listing.contains("CLUSTER ---------------1"), "{listing}");
        assert!(
            listing
                .ends_with("IDC0002I IDCAMS PROCESSING COMPLETE. MAXIMUM CONDITION CODE WAS 0\n"),
            "{listing}"
        );
        assert_eq!(
            std::fs::read_to_string(deck.file("out.txt")).unwrap(),
            "000002BROWN     LEEDS     0002\n000003JONES     BRISTOL   0003\n"
        );
        assert_eq!(
            deck.vsamr(&["browse", "PROD.CUST.MASTER"]).lines().count(),
            5
        );

        // A second step deletes it, generically, and says what went.
        let (status, listing) = deck.run("  DELETE PROD.CUST.* CLUSTER PURGE\n", &[]);
        assert_eq!(status, 0, "{listing}");
        assert!(
            listing.contains("IDC0550I ENTRY (C) PROD.CUST.MASTER DELETED"),
            "{listing}"
        );
        assert!(deck.vsamr(&["list", "PROD.**"]).is_empty());
        deck
    });
    deck.await.unwrap();
    server.stop().await;
}

/// REPRO from a dataset into another on the same server: the records
/// are read while the chains written before them are still in flight on
/// the same connection, and all of them arrive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repro_from_one_dataset_into_another_copies_every_record() {
    let dir = tempfile::tempdir().unwrap();
    let (server, deck) = server(dir.path()).await;
    tokio::task::spawn_blocking(move || {
        let records: String = (1..=12_000)
            .map(|n| format!("{n:08}CUSTOMER {n:08} CITY{:03}\n", n % 97))
            .collect();
        std::fs::write(deck.file("big.txt"), records).unwrap();
        let job = "\
  DEFINE CLUSTER (NAME(BIG.KSDS) INDEXED KEYS(8 0) RECORDSIZE(40 80))
  REPRO INFILE(BIGIN) OUTDATASET(BIG.KSDS)
  DEFINE CLUSTER (NAME(BIG.ESDS) NONINDEXED RECORDSIZE(40 80))
  REPRO INDATASET(BIG.KSDS) OUTDATASET(BIG.ESDS)
  REPRO INDATASET(BIG.KSDS) OUTDATASET(BIG.ESDS) COUNT(5000)
";
        let bigin = format!("BIGIN={}", deck.file("big.txt"));
        let (status, listing) = deck.run(job, &["--dd", &bigin]);
        assert_eq!(
            (status, codes(&listing)),
            (0, vec![0, 0, 0, 0, 0]),
            "{listing}"
        );
        let processed: Vec<&str> = listing
            .lines()
            .filter(|line| line.starts_with("IDC0005I"))
            .collect();
        assert_eq!(
            processed,
            [
                "IDC0005I NUMBER OF RECORDS PROCESSED WAS 12000",
                "IDC0005I NUMBER OF RECORDS PROCESSED WAS 12000",
                "IDC0005I NUMBER OF RECORDS PROCESSED WAS 5000",
            ],
            "{listing}"
        );
        let unloaded = deck.vsamr(&["unload", "BIG.ESDS", "-"]);
        assert_eq!(unloaded.lines().count(), 17_000);
        assert_eq!(
            unloaded.lines().nth(12_000),
            Some("00000001CUSTOMER 00000001 CITY001")
        );
    })
    .await
    .unwrap();
    server.stop().await;
}

/// A deck piped in is read from standard input, with no file named or
/// with `-`, as `vsamr load` and `unload` take `-`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deck_is_read_from_standard_input_without_a_file_or_as_a_dash() {
    let dir = tempfile::tempdir().unwrap();
    let (server, deck) = server(dir.path()).await;
    tokio::task::spawn_blocking(move || {
        for (args, name) in [(&[][..], "PIPED.NONE"), (&["-"][..], "PIPED.DASH")] {
            let job = format!(
                "  DEFINE CLUSTER (NAME({name}) INDEXED KEYS(4 0) RECORDSIZE(10 10))\n  LISTCAT ENTRIES({name})\n"
            );
            let (status, listing) = deck.run_from_stdin(&job, args);
            assert_eq!((status, codes(&listing)), (0, vec![0, 0]), "{args:?}: {listing}");
            assert!(listing.contains(name), "{args:?}: {listing}");
        }
    })
    .await
    .unwrap();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn condition_codes_steer_the_deck_and_become_the_exit_status() {
    let dir = tempfile::tempdir().unwrap();
    let (server, deck) = server(dir.path()).await;
    let deck = tokio::task::spawn_blocking(move || {
        let dups: String = ["000001A", "000001B", "000002C", "000002D", "000003E"]
            .iter()
            .map(|r| format!("{r}\n"))
            .collect();
        std::fs::write(deck.file("dups.txt"), &dups).unwrap();
        // The usual start of a job: delete what a previous run left, and
        // carry on when there was nothing to delete.
        let first = "\
  DELETE TEST.KSDS CLUSTER PURGE
  IF LASTCC = 8 THEN -
     SET MAXCC = 0
  DEFINE CLUSTER (NAME(TEST.KSDS) IXD KEYS(6 0) RECSZ(20 20))
  DEFINE CL (NAME(TEST.KSDS) IXD KEYS(6 0) RECSZ(20 20))
  IF LASTCC > 0 -
  THEN DO
     LISTCAT ENT(TEST.KSDS)
     SET LASTCC = 0
  END
  ELSE -
     DELETE TEST.KSDS
  REPRO IFILE(DUPS) ODS(TEST.KSDS)
";
        let dd = format!("DUPS={}", deck.file("dups.txt"));
        let (status, listing) = deck.run(first, &["--dd", &dd]);
        assert!(
            listing.contains("IDC3012I ENTRY TEST.KSDS NOT FOUND"),
            "{listing}"
        );
        assert!(
            listing.contains("IDC0551I ** ENTRY TEST.KSDS NOT DELETED"),
            "{listing}"
        );
        assert!(
            listing.contains("IDC3013I DUPLICATE DATA SET NAME"),
            "{listing}"
        );
        // DELETE 8, DEFINE 0, DEFINE 8, LISTCAT 0 (the THEN), REPRO 8:
        // the ELSE's DELETE did not run.
        assert_eq!(codes(&listing), [8, 0, 8, 0, 8], "{listing}");
        assert_eq!(
            listing
                .matches("IDC3308I ** DUPLICATE RECORD F0F0F0F0F0")
                .count(),
            2,
            "{listing}"
        );
        assert!(
            listing.contains("IDC0005I NUMBER OF RECORDS PROCESSED WAS 3"),
            "{listing}"
        );
        assert_eq!(status, 8, "MAXCC, raised again by the REPRO: {listing}");
        assert_eq!(
            deck.vsamr(&["browse", "TEST.KSDS"]),
            "000001A\n000002C\n000003E\n"
        );

        // REPLACE takes the duplicates; ERRORLIMIT(0) stops at the first
        // refusal with 12.
        let second = "\
  REPRO IFILE(DUPS) ODS(TEST.KSDS) REPLACE
  REPRO IFILE(DUPS) ODS(TEST.KSDS) REUSE ERRORLIMIT(0)
";
        let (status, listing) = deck.run(second, &["--dd", &dd]);
        assert_eq!(codes(&listing), [0, 12], "{listing}");
        assert!(
            listing.contains("IDC31467I MAXIMUM ERROR LIMIT REACHED."),
            "{listing}"
        );
        assert_eq!(status, 12);

        // An input file that cannot be read as its DD says is refused
        // before REUSE empties the output.
        std::fs::write(deck.file("odd.dat"), "000009-odd").unwrap();
        let before = deck.vsamr(&["browse", "TEST.KSDS"]);
        assert!(!before.is_empty());
        let odd = format!("ODD={},fixed:7", deck.file("odd.dat"));
        let (status, listing) =
            deck.run("  REPRO IFILE(ODD) ODS(TEST.KSDS) REUSE\n", &["--dd", &odd]);
        assert_eq!(status, 12, "{listing}");
        assert!(
            listing.contains("the file is 10 bytes, not a multiple of the record length 7"),
            "{listing}"
        );
        assert_eq!(
            deck.vsamr(&["browse", "TEST.KSDS"]),
            before,
            "nothing was emptied"
        );

        // Syntax errors and unknown verbs are 12 and bypass the command;
        // MAXCC 16 ends the deck.
        let third = "\
  DEFINE CLUSTER (NAME(TEST.BAD) INDEXED KEYS(6 0) RECSZ(20 20) BOGUS(1))
  DEFINE CLUSTER (NAME(TEST.BAD) KEYS(6) RECSZ(20 20))
  DEFINE CLUSTER (INDEXED)
  FROBNICATE TEST.BAD
  SET MAXCC = 16
  DEFINE CLUSTER (NAME(TEST.NEVER) NONINDEXED RECSZ(20 20))
";
        let (status, listing) = deck.run(third, &[]);
        assert!(
            listing.contains("IDC3211I KEYWORD 'BOGUS' IS IMPROPER"),
            "{listing}"
        );
        assert!(
            listing.contains("IDC3203I ITEM 'KEYS(6)' DOES NOT ADHERE TO RESTRICTIONS"),
            "{listing}"
        );
        assert!(
            listing.contains("VSR3201I REQUIRED PARAMETER NAME OF DEFINE CLUSTER IS MISSING"),
            "{listing}"
        );
        assert!(
            listing.contains("IDC3219I VERB NAME 'FROBNICATE' UNKNOWN"),
            "{listing}"
        );
        assert_eq!(
            listing
                .matches("IDC3202I ABOVE TEXT BYPASSED UNTIL END OF COMMAND")
                .count(),
            4
        );
        assert_eq!(codes(&listing), [12, 12, 12, 12], "{listing}");
        assert_eq!(status, 16);
        assert!(
            listing.contains("MAXIMUM CONDITION CODE WAS 16"),
            "{listing}"
        );
        assert!(deck.vsamr(&["list", "TEST.**"]).contains("TEST.KSDS"));
        assert!(
            !deck.vsamr(&["list", "TEST.**"]).contains("TEST.NEVER"),
            "nothing ran after MAXCC 16"
        );

        // An empty input warns (4): a deck can test for it.
        let fourth = "\
  DEFINE CLUSTER (NAME(TEST.EMPTY) NONINDEXED RECSZ(20 80))
  PRINT IDS(TEST.EMPTY) COUNT(1)
  IF LASTCC = 4 THEN SET MAXCC = 0
";
        let (status, listing) = deck.run(fourth, &[]);
        assert_eq!(codes(&listing), [0, 4], "{listing}");
        assert_eq!(status, 0, "{listing}");
        // A DEFINE the server refuses: its codes, and its reason once,
        // naming the entry once.
        let (status, listing) = deck.run(
            "  DEFINE CLUSTER (NAME(TEST.WIDE) IXD KEYS(100 0) RECSZ(80 80))\n",
            &[],
        );
        assert_eq!((codes(&listing), status), (vec![12], 12), "{listing}");
        assert!(
            listing.contains(
                "IDC3351I ** VSAM I/O RETURN CODE IS 8 - RPLFDBWD = X'00080068'\n\
                 VSR3009I ** TEST.WIDE DEFINE: the key (offset 0, length 100) ends past the record size 80\n"
            ),
            "{listing}"
        );
        // A broken IF-THEN-ELSE is 16 and stops the deck there.
        let (status, listing) = deck.run("  LISTCAT LEVEL(TEST)\n  END\n  DELETE TEST.KSDS\n", &[]);
        assert_eq!(status, 16);
        assert!(
            listing.contains("VSR3204I END WITHOUT A DO BEFORE IT"),
            "{listing}"
        );
        assert!(deck.vsamr(&["list", "TEST.KSDS"]).contains("TEST.KSDS"));
        deck
    });
    deck.await.unwrap();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generic_deletes_take_what_matches_with_its_indexes_and_paths() {
    let dir = tempfile::tempdir().unwrap();
    let (server, deck) = server(dir.path()).await;
    let deck = tokio::task::spawn_blocking(move || {
        std::fs::write(deck.file("cust.txt"), CUSTOMERS).unwrap();
        let setup = "\
//BUILD    JOB (ACCT)
//STEP1    EXEC PGM=IDCAMS
//BASE     DD DSN=OLD.CUST.MASTER,DISP=SHR
//BYCITY   DD DSN=OLD.CUST.BYCITY,DISP=OLD
//SYSIN    DD *
  DEFINE CLUSTER (NAME(OLD.CUST.MASTER) INDEXED KEYS(6 0) RECSZ(40 80))
  DEFINE CLUSTER (NAME(OLD.CUST.HIST) NONINDEXED RECSZ(40 80))
  DEFINE CLUSTER (NAME(OLD.ORDERS.MASTER) NUMBERED RECSZ(80 80))
  DEFINE CLUSTER (NAME(KEEP.CUST.MASTER) INDEXED KEYS(6 0) RECSZ(40 80))
  REPRO IFILE(SEQIN) ODS(OLD.CUST.MASTER)
  DEFINE AIX (NAME(OLD.CUST.BYCITY) RELATE(OLD.CUST.MASTER) -
              KEYS(10 16) NONUNIQUEKEY UPGRADE)
  DEFINE PATH (NAME(OLD.CUST.CITYPATH) PATHENTRY(OLD.CUST.BYCITY))
  BLDINDEX INFILE(BASE) OUTFILE(BYCITY)
  LISTCAT LEVEL(OLD) ALL
  VERIFY FILE(BASE)
/*
";
        let seqin = format!("SEQIN={}", deck.file("cust.txt"));
        let (status, listing) = deck.run(setup, &["--dd", &seqin]);
        assert_eq!(status, 0, "{listing}");
        assert!(
            listing.contains("IDC0652I OLD.CUST.BYCITY SUCCESSFULLY BUILT"),
            "{listing}"
        );
        assert!(
            listing.contains("AIX ----------- OLD.CUST.BYCITY"),
            "{listing}"
        );
        assert!(listing.contains("NONUNIQKEY     UPGRADE"), "{listing}");
        assert!(listing.contains("CLUSTER--OLD.CUST.MASTER"), "{listing}");
        assert!(
            listing.contains("PATH ---------- OLD.CUST.CITYPATH"),
            "{listing}"
        );
        assert!(listing.contains("AIX------OLD.CUST.BYCITY"), "{listing}");
        assert!(
            listing.contains("VSR0015I OLD.CUST.MASTER VERIFIED"),
            "{listing}"
        );
        assert!(listing.contains("TOTAL -----------------5"), "{listing}");
        assert_eq!(
            deck.vsamr(&["get", "OLD.CUST.CITYPATH", "LEEDS"]),
            "000002BROWN     LEEDS     0002\n"
        );

        let deletes = "\
  DELETE OLD.CUST.* CLUSTER
  DELETE OLD.*.MASTER
  DELETE OLD.NOTHING.*
";
        let (status, listing) = deck.run(deletes, &[]);
        // OLD.CUST.* CLUSTER: the two clusters (the index and path go with
        // the master); OLD.*.MASTER: what is left of it; nothing matches
        // the third.
        for deleted in [
            "(R) OLD.CUST.CITYPATH",
            "(G) OLD.CUST.BYCITY",
            "(C) OLD.CUST.MASTER",
            "(C) OLD.CUST.HIST",
            "(C) OLD.ORDERS.MASTER",
        ] {
            assert!(
                listing.contains(&format!("IDC0550I ENTRY {deleted} DELETED")),
                "{deleted}: {listing}"
            );
        }
        assert!(
            listing.contains("IDC3012I ENTRY OLD.NOTHING.* NOT FOUND"),
            "{listing}"
        );
        assert_eq!(codes(&listing), [0, 0, 8], "{listing}");
        assert_eq!(status, 8);
        assert_eq!(
            deck.vsamr(&["list"]).lines().count(),
            1,
            "KEEP.CUST.MASTER stays"
        );

        // A type that does not fit the entry is not deleted.
        let (status, listing) = deck.run("  DELETE KEEP.CUST.MASTER AIX\n", &[]);
        assert_eq!(status, 8);
        assert!(
            listing.contains("VSR3012I ** KEEP.CUST.MASTER IS A CLUSTER"),
            "{listing}"
        );
        deck
    });
    deck.await.unwrap();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alter_newname_moves_records_indexes_and_paths_to_the_new_name() {
    let dir = tempfile::tempdir().unwrap();
    let (server, deck) = server(dir.path()).await;
    let address = deck.server.clone();
    let deck = tokio::task::spawn_blocking(move || {
        // More records than one copy batch.
        let records: String = (1..=1234)
            .map(|n| format!("{n:06}CITY{:06}\n", n % 7))
            .collect();
        std::fs::write(deck.file("many.txt"), &records).unwrap();
        std::fs::write(deck.file("log.txt"), "first\nsecond record\nthird\n").unwrap();
        let setup = "\
  DEFINE CLUSTER (NAME(APP.CUST) INDEXED KEYS(6 0) RECSZ(16 16))
  REPRO IFILE(MANY) ODS(APP.CUST)
  DEFINE AIX (NAME(APP.CUST.BYCITY) RELATE(APP.CUST) KEYS(10 6) NONUNIQUEKEY)
  BLDINDEX IDS(APP.CUST) ODS(APP.CUST.BYCITY)
  DEFINE PATH (NAME(APP.CUST.PATH) PATHENTRY(APP.CUST.BYCITY))
  DEFINE CLUSTER (NAME(APP.LOG) NONINDEXED RECSZ(10 40))
  REPRO IFILE(LOG) ODS(APP.LOG)
  ALTER APP.CUST NEWNAME(APP.CUSTOMER) FREESPACE(20 20)
  ALTER APP.LOG NEWNAME(APP.JOURNAL)
  ALTER APP.JOURNAL NEWNAME(APP.CUSTOMER)
  ALTER APP.GONE NEWNAME(APP.HERE)
";
        let many = format!("MANY={}", deck.file("many.txt"));
        let log = format!("LOG={}", deck.file("log.txt"));
        let (status, listing) = deck.run(setup, &["--dd", &many, "--dd", &log]);
        assert!(
            listing.contains("IDC0531I ENTRY APP.CUST ALTERED"),
            "{listing}"
        );
        assert!(
            listing.contains("APP.CUST renamed APP.CUSTOMER: 1234 records moved"),
            "{listing}"
        );
        assert!(
            listing.contains("APP.LOG renamed APP.JOURNAL: 3 records moved"),
            "{listing}"
        );
        assert!(
            listing.contains("IDC3013I DUPLICATE DATA SET NAME"),
            "{listing}"
        );
        assert!(
            listing.contains("IDC3012I ENTRY APP.GONE NOT FOUND"),
            "{listing}"
        );
        assert_eq!(
            codes(&listing),
            [0, 0, 0, 0, 0, 0, 0, 0, 0, 8, 8],
            "{listing}"
        );
        assert_eq!(status, 8);
        let list = deck.vsamr(&["list", "APP.**"]);
        assert!(
            !list.contains("APP.CUST ") && !list.contains("APP.LOG "),
            "{list}"
        );
        assert_eq!(deck.vsamr(&["browse", "APP.CUSTOMER"]), records);
        // The ESDS kept its RBAs.
        assert_eq!(
            deck.vsamr(&["browse", "APP.JOURNAL"]),
            "0\tfirst\n5\tsecond record\n18\tthird\n"
        );
        // The index follows its base's new name, and the path still works.
        let (_, listing) = deck.run("  LISTCAT ENT(APP.CUST.BYCITY) ALL\n", &[]);
        assert!(listing.contains("CLUSTER--APP.CUSTOMER"), "{listing}");
        assert_eq!(
            deck.vsamr(&[
                "browse",
                "APP.CUST.PATH",
                "--from",
                "CITY000003",
                "--limit",
                "2"
            ]),
            "000003CITY000003\n000010CITY000003\n"
        );
        deck
    });
    let deck = deck.await.unwrap();

    // While a program has it open, the entry keeps its name.
    let conn = vsam_client::Connection::connect(&address).await.unwrap();
    let open = vsam_client::Dataset::open(&conn, "APP.CUSTOMER", vsam_client::OpenIntent::Input, 1)
        .await
        .unwrap();
    let refused = vsam_client::rename(&conn, "APP.CUSTOMER", "APP.OTHER")
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("open"), "{refused}");
    open.close().await.unwrap();
    let moved = vsam_client::rename(&conn, "APP.CUSTOMER", "APP.OTHER")
        .await
        .unwrap();
    assert!(moved.contains("1234 records moved"), "{moved}");
    let bad = vsam_client::rename(&conn, "APP.OTHER", "1BAD.NAME")
        .await
        .unwrap_err();
    assert!(bad.to_string().contains("NEWNAME"), "{bad}");
    drop(deck);
    server.stop().await;
}
