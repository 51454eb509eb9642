//! `vsamr` end to end against an in-process vsamrd on the embedded default
//! configuration: the five-minute tour of the README, and its errors.

use std::path::Path;
use std::process::Command;
use std::time::Duration;
use vsam_host::RunningServer;
use vsam_host::config::Config;
use vsam_protocol::admin::AdminCommand;

struct Cli {
    server: String,
}

impl Cli {
    fn run(&self, args: &[&str]) -> (bool, String, String) {
        let output = Command::new(env!("CARGO_BIN_EXE_vsamr"))
            .env("VSAMR_SERVER", &self.server)
            .args(args)
            .output()
            .unwrap();
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    fn ok(&self, args: &[&str]) -> String {
        let (success, stdout, stderr) = self.run(args);
        assert!(success, "vsamr {args:?} failed: {stderr}");
        stdout
    }

    fn fails(&self, args: &[&str]) -> String {
        let (success, stdout, stderr) = self.run(args);
        assert!(!success, "vsamr {args:?} should fail, printed {stdout}");
        stderr
    }
}

/// vsamrd on the embedded default with its data under `dir`, and a `vsamr`
/// pointed at it.
async fn server(dir: &Path) -> (RunningServer, Cli) {
    let mut config = Config::embedded_default();
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.move_data_dir(dir.to_path_buf());
    let server = RunningServer::start(&config).await.unwrap();
    let cli = Cli {
        server: server.addr.to_string(),
    };
    (server, cli)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tour_works_and_errors_say_everything() {
    let dir = tempfile::tempdir().unwrap();
    let (server, cli) = server(dir.path()).await;
    let cli = tokio::task::spawn_blocking(move || {
        assert!(cli.ok(&["ping"]).contains("vsamrd"));
        cli.ok(&[
            "define",
            "PROD.CUST",
            "--org",
            "ksds",
            "--key-length",
            "6",
            "--record-size",
            "80",
        ]);
        cli.ok(&["put", "PROD.CUST", "000002BROWN"]);
        cli.ok(&["put", "PROD.CUST", "000001SMITH \\x00\\x12\\x3C"]);
        let dup = cli.fails(&["put", "PROD.CUST", "000001OTHER"]);
        assert!(
            dup.contains("duplicate key: PROD.CUST PUT R15=8 FDBK=X'08' (file status 22)"),
            "{dup}"
        );
        assert_eq!(
            cli.ok(&["get", "PROD.CUST", "000001"]),
            "000001SMITH \\x00\\x12\\x3C\n"
        );
        assert_eq!(
            cli.ok(&["--hex", "get", "PROD.CUST", "F0F0F0F0F0F2"]),
            "F0F0F0F0F0F2C2D9D6E6D5\n"
        );
        assert_eq!(
            cli.ok(&["get", "PROD.CUST", "0000", "--generic"]),
            "000001SMITH \\x00\\x12\\x3C\n"
        );
        assert_eq!(
            cli.ok(&["get", "PROD.CUST", "000000", "--ge"])
                .lines()
                .count(),
            1
        );
        let missing = cli.fails(&["get", "PROD.CUST", "000009"]);
        assert!(
            missing.contains("record not found: PROD.CUST GET R15=8 FDBK=X'10' (file status 23)")
                && !missing.contains("padded"),
            "{missing}"
        );
        // A short key is a whole key padded with spaces, as COBOL moves
        // it; the error says so, and how to read by a prefix.
        let short = cli.fails(&["get", "PROD.CUST", "0000"]);
        assert!(
            short.contains("FDBK=X'10'")
                && short.contains("(the key 0000 was padded with spaces to the dataset's 6 bytes; --generic reads the first record whose key begins with it)"),
            "{short}"
        );
        assert!(cli.ok(&["get", "PROD.CUST", "0000", "--generic"]).starts_with("000001"));
        cli.ok(&["update", "PROD.CUST", "000002BROWNE"]);
        assert_eq!(
            cli.ok(&["browse", "PROD.CUST"]),
            "000001SMITH \\x00\\x12\\x3C\n000002BROWNE\n"
        );
        assert_eq!(
            cli.ok(&["browse", "PROD.CUST", "--backward", "--limit", "1"]),
            "000002BROWNE\n"
        );
        assert_eq!(
            cli.ok(&["--json", "browse", "PROD.CUST", "--from", "000002"]),
            "{\"key\":\"000002\",\"record\":\"000002BROWNE\"}\n"
        );
        cli.ok(&["erase", "PROD.CUST", "000001"]);
        assert_eq!(cli.ok(&["browse", "PROD.CUST"]), "000002BROWNE\n");

        cli.ok(&[
            "define",
            "PROD.LOG",
            "--org",
            "esds",
            "--record-size",
            "100",
            "--codepage",
            "ascii",
        ]);
        assert_eq!(cli.ok(&["put", "PROD.LOG", "first"]), "RBA 0\n");
        assert_eq!(cli.ok(&["put", "PROD.LOG", "second"]), "RBA 5\n");
        assert_eq!(cli.ok(&["get", "PROD.LOG", "--rba", "5"]), "5\tsecond\n");
        let bad = cli.fails(&["get", "PROD.LOG", "--rba", "3"]);
        assert!(bad.contains("FDBK=X'20' (file status 23)"), "{bad}");
        let erase = cli.fails(&["erase", "PROD.LOG", "--rrn", "0"]);
        assert!(erase.contains("ESDS"), "{erase}");

        cli.ok(&[
            "define",
            "PROD.SLOTS",
            "--org",
            "rrds",
            "--record-size",
            "4",
            "--codepage",
            "ascii",
        ]);
        assert_eq!(cli.ok(&["put", "PROD.SLOTS", "AAAA"]), "RRN 1\n");
        assert_eq!(
            cli.ok(&["put", "PROD.SLOTS", "CCCC", "--rrn", "3"]),
            "RRN 3\n"
        );
        assert_eq!(cli.ok(&["put", "PROD.SLOTS", "DDDD"]), "RRN 4\n");
        assert_eq!(
            cli.ok(&["--json", "get", "PROD.SLOTS", "--rrn", "3"]),
            "{\"rrn\":3,\"record\":\"CCCC\"}\n"
        );
        cli.ok(&["erase", "PROD.SLOTS", "--rrn", "3"]);
        assert_eq!(cli.ok(&["browse", "PROD.SLOTS"]), "1\tAAAA\n4\tDDDD\n");

        let listing = cli.ok(&["list", "PROD.*"]);
        assert_eq!(listing.lines().count(), 3, "{listing}");
        assert!(
            cli.ok(&["info", "PROD.CUST"])
                .contains("KSDS KEYS(6 0) RECORDSIZE(1 80) cp037 backend=sqlite")
        );
        cli.ok(&["delete", "PROD.SLOTS"]);
        assert!(cli.fails(&["info", "PROD.SLOTS"]).contains("FDBK=X'10'"));
        // Alternate index and path (the base is EBCDIC: keys convert).
        cli.ok(&[
            "define-aix",
            "PROD.CUST.BYNAME",
            "--relate",
            "PROD.CUST",
            "--key-offset",
            "6",
            "--key-length",
            "5",
            "--nonunique",
        ]);
        assert_eq!(
            cli.ok(&["bldindex", "PROD.CUST.BYNAME"]),
            "PROD.CUST.BYNAME: 1 records indexed, 1 alternate keys\n"
        );
        cli.ok(&[
            "define-path",
            "PROD.CUST.NAMES",
            "--aix",
            "PROD.CUST.BYNAME",
        ]);
        cli.ok(&["put", "PROD.CUST", "000003BROWNIE"]);
        assert_eq!(
            cli.ok(&["browse", "PROD.CUST.NAMES"]),
            "000002BROWNE\n000003BROWNIE\n"
        );
        assert_eq!(
            cli.ok(&["get", "PROD.CUST.NAMES", "BROWN"]),
            "000002BROWNE\n"
        );
        let too_long = cli.fails(&[
            "define-aix",
            "PROD.CUST.BAD",
            "--relate",
            "PROD.CUST",
            "--key-offset",
            "76",
            "--key-length",
            "5",
        ]);
        assert!(
            too_long.contains("within PROD.CUST's records of up to 80 bytes"),
            "{too_long}"
        );
        let aix_open = cli.fails(&["browse", "PROD.CUST.BYNAME"]);
        assert!(aix_open.contains("open a PATH over it"), "{aix_open}");
        cli.ok(&["erase", "PROD.CUST", "000003"]);
        cli.ok(&["delete", "PROD.CUST.BYNAME"]);
        assert!(
            cli.fails(&["info", "PROD.CUST.NAMES"])
                .contains("FDBK=X'10'")
        );
        let unknown = cli.fails(&["browse", "NOT.THERE"]);
        assert!(
            unknown
                .contains("data set not found: NOT.THERE OPEN R15=8 FDBK=X'80' (file status 35)"),
            "{unknown}"
        );
        cli
    })
    .await
    .unwrap();

    // REPRO: load and unload in every format.
    let work = tempfile::tempdir().unwrap();
    let lines = work.path().join("in.txt");
    std::fs::write(&lines, "000010TEN\n000011ELEVEN\\x00\n000012TWELVE\n").unwrap();
    let cli = tokio::task::spawn_blocking(move || {
        let loaded = cli.ok(&["load", "PROD.CUST", lines.to_str().unwrap()]);
        assert!(
            loaded.starts_with("loaded 3 of 3 records into PROD.CUST"),
            "{loaded}"
        );
        let out = lines.with_extension("rdw");
        cli.ok(&[
            "unload",
            "PROD.CUST",
            out.to_str().unwrap(),
            "--format",
            "rdw",
        ]);
        let rdw = std::fs::read(&out).unwrap();
        assert_eq!(&rdw[..4], &[0, 16, 0, 0], "RDW of the first 12-byte record");
        cli.ok(&[
            "define",
            "COPY.CUST",
            "--org",
            "ksds",
            "--key-length",
            "6",
            "--record-size",
            "80",
        ]);
        cli.ok(&[
            "load",
            "COPY.CUST",
            out.to_str().unwrap(),
            "--format",
            "rdw",
        ]);
        assert_eq!(
            cli.ok(&["browse", "COPY.CUST"]),
            cli.ok(&["browse", "PROD.CUST"])
        );
        let fixed = lines.with_extension("fix");
        let wrong = cli.fails(&[
            "unload",
            "PROD.CUST",
            fixed.to_str().unwrap(),
            "--format",
            "fixed:12",
        ]);
        assert!(wrong.contains("does not fit fixed:12"), "{wrong}");
        let dup = cli.fails(&[
            "load",
            "COPY.CUST",
            out.to_str().unwrap(),
            "--format",
            "rdw",
        ]);
        assert!(
            dup.contains("record 1 of") && dup.contains("left out: duplicate key"),
            "{dup}"
        );
        assert!(
            dup.contains("loaded 0 of 4 records") && dup.contains("4 refused and left out"),
            "IDCAMS REPRO leaves out records whose key is taken and goes on: {dup}"
        );
    });
    cli.await.unwrap();
    server.stop().await;
}

/// `--server` takes a list: the first server that answers is used, and
/// when none does, each is named with its reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_of_servers_is_tried_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let (server, cli) = server(dir.path()).await;
    let live = cli.server.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        let listed = Cli {
            server: format!("127.0.0.1:1, {live}"),
        };
        let pinged = listed.ok(&["ping"]);
        assert!(pinged.contains(&format!("{live}: round trip")), "{pinged}");
        let dead = Cli {
            server: "127.0.0.1:1,127.0.0.1:2".into(),
        };
        dead.fails(&["ping"])
    })
    .await
    .unwrap();
    assert!(
        outcome.contains("no server of the list answered")
            && outcome.contains("127.0.0.1:1:")
            && outcome.contains("127.0.0.1:2:"),
        "{outcome}"
    );
    server.stop().await;
}

/// The help says what vsamr is, and a command's help shows its own
/// options first, the ones every command takes under headings of their
/// own.
#[test]
fn the_help_says_what_vsamr_is_and_keeps_a_commands_options_apart() {
    let cli = Cli {
        server: "127.0.0.1:1".into(),
    };
    let help = cli.ok(&["--help"]);
    assert!(
        help.starts_with("Command-line client of the VSAM redirector server (vsamrd, port 2387).\n\nKeys and records are text"),
        "{help}"
    );
    let define = cli.ok(&["define", "--help"]);
    let at = |text: &str| {
        define
            .find(text)
            .unwrap_or_else(|| panic!("{text:?} not in:\n{define}"))
    };
    assert!(
        at("--key-length") < at("Connection (every command):"),
        "{define}"
    );
    assert!(
        at("Connection (every command):") < at("--server"),
        "{define}"
    );
    assert!(
        at("Connection (every command):") < at("--auth-token-file"),
        "{define}"
    );
    assert!(
        at("Keys and records (every command):") < at("--hex"),
        "{define}"
    );
}

#[test]
fn an_unreachable_server_is_named() {
    let output = Command::new(env!("CARGO_BIN_EXE_vsamr"))
        .args(["--server", "127.0.0.1:1", "ping"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot connect to 127.0.0.1:1") && stderr.contains("VSAMR_SERVER"),
        "{stderr}"
    );
}

/// A misspelt variable (`VSAMR_SEVER`) stops vsamr, naming the one meant,
/// rather than sending the command to the default server; those it reads
/// pass.
#[test]
fn a_misspelt_variable_is_refused_naming_the_one_meant() {
    let run = |var: &str| {
        Command::new(env!("CARGO_BIN_EXE_vsamr"))
            .env(var, "127.0.0.1:1")
            .args(["--server", "127.0.0.1:1", "ping"])
            .output()
            .unwrap()
    };
    let refused = run("VSAMR_SEVER");
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.starts_with(
            "vsamr: VSAMR_SEVER: vsamr reads no such variable (meant VSAMR_SERVER?); it reads "
        ) && stderr.contains("VSAMR_AUTH_TOKEN")
            && stderr.contains("VSAMR_ADMIN_TOKEN_FILE"),
        "{stderr}"
    );
    // VSAMR_ADMIN is read (by `vsamr admin`): vsamr goes on to the
    // unreachable server.
    let read = run("VSAMR_ADMIN");
    let stderr = String::from_utf8_lossy(&read.stderr);
    assert!(stderr.contains("cannot connect to 127.0.0.1:1"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_layout_shows_records_as_named_fields() {
    use vsam_plugin_sdk::codepage::CodePage;
    use vsam_plugin_sdk::numeric::{Binary, Packed, Picture};
    let dir = tempfile::tempdir().unwrap();
    let (server, cli) = server(dir.path()).await;
    let copybook = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/customer.cpy");
    let bad = dir.path().join("bad.cpy");
    std::fs::write(&bad, "       01  R.\n           05  A PIC X(9) GLOBAL.\n").unwrap();
    tokio::task::spawn_blocking(move || {
        let define = ["define", "PROD.CUST.MASTER", "--org", "ksds", "--key-length", "8", "--record-size", "120"];
        let refused = cli.fails(&[&define[..], &["--layout", bad.to_str().unwrap()]].concat());
        assert!(refused.contains("layout copybook line 2: clause GLOBAL is not supported"), "{refused}");
        cli.ok(&[&define[..], &["--layout", copybook.to_str().unwrap()]].concat());
        let cp = CodePage::Cp037;
        let mut record = cp.encode(&format!("{:<8}{:<20}{:<15}", "00000042", "SMITH", "ANNA")).unwrap();
        record.extend(Packed(Picture { digits: 9, scale: 2, signed: true }).encode("-301.75".parse().unwrap()).unwrap());
        record.extend(Binary { picture: Picture { digits: 5, scale: 0, signed: true }, native: false }.encode("5000".parse().unwrap()).unwrap());
        record.extend(cp.encode("A20240131").unwrap());
        record.resize(120, 0x40);
        let hex = hex::encode_upper(&record);
        cli.ok(&["--hex", "put", "PROD.CUST.MASTER", &hex]);
        let json = cli.ok(&["--json", "get", "PROD.CUST.MASTER", "00000042", "--fields"]);
        assert!(json.starts_with(r#"{"CUST-ID":"00000042","LAST-NAME":"SMITH               ","FIRST-NAME":"ANNA           ","BALANCE":"-301.75","CREDIT-LIMIT":"5000","STATUS-CODE":"A","OPENED-DATE":"20240131","#), "{json}");
        assert!(json.contains(r#""ORDER-AMOUNT(3)":"X'"#), "blank bytes are not a number, and say so: {json}");
        assert!(cli.ok(&["info", "PROD.CUST.MASTER"]).ends_with("backend=sqlite layout=14 fields\n"));
        let text = cli.ok(&["browse", "PROD.CUST.MASTER", "--fields"]);
        assert!(text.contains("BALANCE=-301.75 CREDIT-LIMIT=5000"), "{text}");
        let none = cli.fails(&["get", "PROD.CUST", "000001", "--fields"]);
        assert!(none.contains("not in the catalog") || none.contains("no record layout"), "{none}");
    })
    .await
    .unwrap();
    server.stop().await;
}

/// A load big enough for several PUT CHAINs, with a duplicate key in the
/// middle of the second: as IDCAMS REPRO, the record is reported and left
/// out and the load goes on (exiting non-zero), up to the error limit;
/// with `--error-limit 0` it stops there and counts exactly what it stored;
/// with `--replace` the record replaces the one under its key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_in_chains_reports_exactly_what_it_stored() {
    let dir = tempfile::tempdir().unwrap();
    let (server, cli) = server(dir.path()).await;
    let file = dir.path().join("big.txt");
    let mut text = String::new();
    for n in 1..=5000u32 {
        // Record 3000 repeats the key of record 10.
        let key = if n == 3000 { 10 } else { n };
        text.push_str(&format!("{key:08}record {n}\n"));
    }
    std::fs::write(&file, text).unwrap();
    let cli = tokio::task::spawn_blocking(move || {
        let define = |name: &str| {
            cli.ok(&[
                "define",
                name,
                "--org",
                "ksds",
                "--key-length",
                "8",
                "--record-size",
                "40",
            ]);
        };
        let file = file.to_str().unwrap();
        define("LOAD.BIG");
        let failed = cli.fails(&["load", "LOAD.BIG", file]);
        assert!(
            failed.contains("record 3000 of")
                && failed.contains("left out: duplicate key")
                && failed.contains("loaded 4999 of 5000 records")
                && failed.contains("1 refused and left out")
                && failed.contains("--replace"),
            "{failed}"
        );
        let stored = cli.ok(&["browse", "LOAD.BIG"]);
        assert_eq!(stored.lines().count(), 4999);
        assert!(
            !stored.contains("record 3000"),
            "the refused record is not stored"
        );
        assert!(stored.contains("00003001record 3001"), "the load went on");

        define("LOAD.STOP");
        let failed = cli.fails(&["load", "LOAD.STOP", file, "--error-limit", "0"]);
        assert!(
            failed.contains("record 3000 of")
                && failed.contains("duplicate key")
                && failed.contains("stopped at record 3000")
                && failed.contains("--error-limit 0")
                && failed.contains("loaded 3903 of the 5000 records read, 1 left out, 0 not sent"),
            "{failed}"
        );
        let stored = cli.ok(&["browse", "LOAD.STOP"]);
        assert_eq!(
            stored.lines().count(),
            2999 + 904,
            "the records before it, and the chains already sent after it"
        );
        assert!(!stored.contains("record 3001"), "its chain stopped there");
        assert!(
            stored.contains("00004097record 4097"),
            "the chain sent after it is stored"
        );

        define("LOAD.REPL");
        let loaded = cli.ok(&["load", "LOAD.REPL", file, "--replace"]);
        assert!(
            loaded.starts_with("loaded 5000 of 5000 records"),
            "{loaded}"
        );
        let stored = cli.ok(&["browse", "LOAD.REPL"]);
        assert_eq!(stored.lines().count(), 4999);
        assert!(stored.contains("00000010record 3000"), "{stored:.200}");
    });
    cli.await.unwrap();
    server.stop().await;
}

/// REPRO's selections: FROMKEY/TOKEY (generic when short), SKIP and COUNT
/// on unload and load; REUSE empties the dataset before the load; a key
/// range on an ESDS is refused with what to use instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repro_selects_records_and_reuse_empties_first() {
    let dir = tempfile::tempdir().unwrap();
    let (server, cli) = server(dir.path()).await;
    let work = dir.path().to_path_buf();
    let cli = tokio::task::spawn_blocking(move || {
        let file = |name: &str| work.join(name).to_str().unwrap().to_string();
        let all: String = (1..=10).map(|n| format!("K{n:03}-record\n")).collect();
        std::fs::write(file("all.txt"), &all).unwrap();
        for name in ["SEL.KS", "SEL.COPY"] {
            cli.ok(&[
                "define",
                name,
                "--org",
                "ksds",
                "--key-length",
                "4",
                "--record-size",
                "20",
                "--codepage",
                "ascii",
            ]);
        }
        cli.ok(&["load", "SEL.KS", &file("all.txt")]);
        let keys = |path: &str| -> Vec<String> {
            std::fs::read_to_string(path)
                .unwrap()
                .lines()
                .map(|line| line[..4].to_string())
                .collect()
        };
        let unload = |extra: &[&str]| -> Vec<String> {
            let out = file("out.txt");
            let mut args = vec!["unload", "SEL.KS", out.as_str()];
            args.extend_from_slice(extra);
            cli.ok(&args);
            keys(&out)
        };
        assert_eq!(
            unload(&["--from-key", "K003", "--to-key", "K005"]),
            ["K003", "K004", "K005"]
        );
        assert_eq!(unload(&["--skip", "8"]), ["K009", "K010"]);
        assert_eq!(
            unload(&["--to-key", "K00", "--count", "2"]),
            ["K001", "K002"]
        );
        assert_eq!(
            unload(&["--from-key", "K01"]),
            ["K010"],
            "a generic FROMKEY"
        );
        assert_eq!(unload(&["--from-key", "Z"]), Vec::<String>::new());

        let loaded = cli.ok(&[
            "load",
            "SEL.COPY",
            &file("all.txt"),
            "--from-key",
            "K005",
            "--count",
            "3",
        ]);
        assert!(
            loaded.starts_with("loaded 3 of the first 8 records of")
                && loaded.contains("(the selection ended there)"),
            "{loaded}"
        );
        let copy = file("copy.txt");
        cli.ok(&["unload", "SEL.COPY", &copy]);
        assert_eq!(keys(&copy), ["K005", "K006", "K007"]);
        std::fs::write(file("two.txt"), "K001-again\nK002-again\n").unwrap();
        cli.ok(&["load", "SEL.COPY", &file("two.txt"), "--reuse"]);
        cli.ok(&["unload", "SEL.COPY", &copy]);
        assert_eq!(keys(&copy), ["K001", "K002"], "REUSE emptied it first");
        // A file that cannot be read as asked is refused before REUSE
        // empties anything.
        std::fs::write(file("odd.dat"), "K003-odd").unwrap();
        let refused = cli.fails(&[
            "load",
            "SEL.COPY",
            &file("odd.dat"),
            "--format",
            "fixed:5",
            "--reuse",
        ]);
        assert!(
            refused.contains("the file is 8 bytes, not a multiple of the record length 5"),
            "{refused}"
        );
        cli.ok(&["unload", "SEL.COPY", &copy]);
        assert_eq!(keys(&copy), ["K001", "K002"], "nothing was emptied");

        // A VRRDS loads to slots 1, 2, ... and unloads each record at its
        // own length.
        cli.ok(&[
            "define",
            "SEL.VR",
            "--org",
            "vrrds",
            "--record-size",
            "20",
            "--codepage",
            "ascii",
        ]);
        std::fs::write(file("notes.txt"), "a\nthree\nfifteen-letters\n").unwrap();
        cli.ok(&["load", "SEL.VR", &file("notes.txt")]);
        let rdw = file("notes.rdw");
        cli.ok(&["unload", "SEL.VR", &rdw, "--format", "rdw"]);
        let bytes = std::fs::read(&rdw).unwrap();
        assert_eq!(
            bytes,
            [
                &[0, 5, 0, 0][..],
                b"a",
                &[0, 9, 0, 0],
                b"three",
                &[0, 19, 0, 0],
                b"fifteen-letters"
            ]
            .concat()
        );
        assert!(cli.ok(&["get", "SEL.VR", "--rrn", "2"]).contains("three"));

        cli.ok(&[
            "define",
            "SEL.LOG",
            "--org",
            "esds",
            "--record-size",
            "20",
            "--codepage",
            "ascii",
        ]);
        let refused = cli.fails(&["unload", "SEL.LOG", &copy, "--to-key", "K"]);
        assert!(
            refused.contains("ESDS") && refused.contains("--skip"),
            "{refused}"
        );
        let refused = cli.fails(&[
            "unload",
            "SEL.KS",
            &copy,
            "--skip",
            "1",
            "--from-key",
            "K002",
        ]);
        assert!(refused.contains("give one"), "{refused}");
    });
    cli.await.unwrap();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_commands_show_status_versions_and_reloads() {
    let dir = tempfile::tempdir().unwrap();
    let (server, cli) = server(dir.path()).await;
    let admin = server.admin_addr.expect("admin enabled").to_string();
    let token_file = dir.path().join("admin.token");
    let token_file = token_file.to_str().unwrap().to_string();
    let cli = tokio::task::spawn_blocking(move || {
        let args = |command: &str| -> Vec<String> {
            [
                "admin",
                "--admin",
                &admin,
                "--token-file",
                &token_file,
                command,
            ]
            .map(str::to_string)
            .to_vec()
        };
        let run = |command: &str| {
            let args = args(command);
            cli.ok(&args.iter().map(String::as_str).collect::<Vec<_>>())
        };
        let status = run("status");
        assert!(status.contains("vsamrd"), "{status}");
        assert!(status.contains("(embedded default)"), "{status}");
        for backend in ["sqlite", "csv", "objects"] {
            assert!(status.contains(backend), "{status}");
        }
        assert!(status.contains("last reload   none"), "{status}");
        let plugins = run("plugins");
        let lines: Vec<&str> = plugins.lines().collect();
        assert!(lines[0].starts_with("plugin"), "{plugins}");
        assert_eq!(lines.len(), 1 + 3, "sql, csv, s3: {plugins}");
        assert!(plugins.contains("serving"), "{plugins}");
        let reload = run("reload");
        assert!(reload.contains("reload: nothing changed"), "{reload}");
        assert!(run("status").contains("by admin, nothing changed"));
        let mut wrong = args("status");
        wrong[3] = "--token".into();
        wrong[4] = "0123456789abcdef0123".into();
        let error = cli.fails(&wrong.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(error.contains("wrong admin token"), "{error}");
        // A token on the command line shows in the process list.
        assert!(
            error.contains("warning: --token shows the admin token in the process list"),
            "{error}"
        );
        let output = Command::new(env!("CARGO_BIN_EXE_vsamr"))
            .args(["admin", "--admin", &admin, "status"])
            .env("VSAMR_ADMIN_TOKEN", "0123456789abcdef0123")
            .output()
            .unwrap();
        let from_environment = String::from_utf8_lossy(&output.stderr);
        assert!(
            from_environment.contains("wrong admin token")
                && !from_environment.contains("process list"),
            "{from_environment}"
        );
        let mut missing = args("status");
        missing[4] = "/nonexistent/admin.token".into();
        let error = cli.fails(&missing.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(error.contains("cannot read the admin token"), "{error}");
        cli
    })
    .await
    .unwrap();
    drop(cli);
    server.stop().await;
}

#[allow(dead_code)]
#[path = "../../tests/support/pki.rs"]
mod pki;

/// A text probe of the port and `vsamr ping` print the same identification;
/// the TLS and token options reach a server that takes TLS only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_identifies_the_server_over_tls_with_a_token() {
    use std::io::{Read, Write};
    use vsam_host::security::access::{AccessPolicy, Client, Level, Rule, token_digest};
    use vsam_host::security::tls::{PlainPolicy, TlsSettings};

    let dir = tempfile::tempdir().unwrap();
    let pki = pki::make("unused.clients.test");
    let mut config = Config::embedded_default();
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.move_data_dir(dir.path().to_path_buf());
    config.tls = Some(TlsSettings {
        certificate: pki.server_cert.clone(),
        key: pki.server_key.clone(),
        client_ca: None,
        require_client_certificate: false,
        plain: PlainPolicy::Refuse,
    });
    config.access = AccessPolicy {
        clients: vec![Client {
            name: "OPS".into(),
            token_sha256: Some(token_digest("ops-token")),
            certificate_name: None,
        }],
        rules: vec![Rule {
            clients: vec!["OPS".into()],
            datasets: "**".into(),
            level: Level::Read,
        }],
    };
    let token_file = dir.path().join("ops.token");
    std::fs::write(&token_file, "ops-token\n").unwrap();
    let server = RunningServer::start(&config).await.unwrap();
    let cli = Cli {
        server: server.addr.to_string(),
    };
    let ca = pki.ca.display().to_string();
    let token = token_file.display().to_string();
    tokio::task::spawn_blocking(move || {
        let mut probe = std::net::TcpStream::connect(&cli.server).unwrap();
        probe.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
        let mut identification = String::new();
        probe.read_to_string(&mut identification).unwrap();

        let ping = cli.ok(&["--tls-ca", &ca, "--auth-token-file", &token, "ping"]);
        assert_eq!(
            ping.lines().next().unwrap(),
            identification.trim_end(),
            "{ping}"
        );
        assert!(ping.contains("round trip"), "{ping}");
        let plain = cli.fails(&["--auth-token-file", &token, "ping"]);
        assert!(plain.contains("TLS connections only"), "{plain}");
        let anonymous = cli.fails(&["--tls-ca", &ca, "ping"]);
        assert!(
            anonymous.contains("takes no anonymous clients"),
            "{anonymous}"
        );
        let listed = cli.fails(&[
            "--tls-ca",
            &ca,
            "--auth-token-file",
            &token,
            "define",
            "X.Y",
            "--org",
            "ksds",
            "--key-length",
            "4",
            "--record-size",
            "10",
        ]);
        assert!(
            listed.contains("X'98'") && listed.contains("file status 37"),
            "{listed}"
        );
    })
    .await
    .unwrap();
    server.stop().await;
}

/// A load whose connection is cut (the server crashed, a network cut)
/// says how many records were acknowledged, and they are stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_cut_off_says_how_many_records_were_acknowledged() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let (server, cli) = server(dir.path()).await;
    // A proxy that passes the load through, then cuts the connection once
    // 1 MiB of answers have come back.
    let proxy = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_address = proxy.local_addr().unwrap().to_string();
    let upstream = cli.server.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = proxy.accept().await {
            let server = tokio::net::TcpStream::connect(&upstream).await.unwrap();
            let (mut client_read, mut client_write) = client.into_split();
            let (mut server_read, mut server_write) = server.into_split();
            tokio::spawn(async move {
                let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
            });
            tokio::spawn(async move {
                let mut passed = 0usize;
                let mut buffer = vec![0u8; 4096];
                while let Ok(n) = server_read.read(&mut buffer).await {
                    if n == 0 || client_write.write_all(&buffer[..n]).await.is_err() {
                        break;
                    }
                    passed += n;
                    if passed > 1 << 20 {
                        break;
                    }
                }
                // Dropping both halves closes the client's connection.
            });
        }
    });
    let file = dir.path().join("cut.txt");
    let text: String = (1..=200_000u32)
        .map(|n| format!("{n:08}record {n}\n"))
        .collect();
    std::fs::write(&file, text).unwrap();
    let outcome = tokio::task::spawn_blocking(move || {
        cli.ok(&[
            "define",
            "LOAD.CUT",
            "--org",
            "ksds",
            "--key-length",
            "8",
            "--record-size",
            "40",
        ]);
        let cut = Cli {
            server: proxy_address,
        };
        let failed = cut.fails(&["load", "LOAD.CUT", file.to_str().unwrap()]);
        let stored = cli.ok(&["browse", "LOAD.CUT"]).lines().count();
        (failed, stored)
    })
    .await
    .unwrap();
    let (failed, stored) = outcome;
    let acknowledged: usize = failed
        .split(" records read from ")
        .next()
        .and_then(|head| head.rsplit_once(" of the "))
        .map(|(head, _)| head)
        .and_then(|head| head.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in: {failed}"));
    assert!(
        failed.contains("were loaded and acknowledged") && acknowledged > 0,
        "{failed}"
    );
    assert!(
        stored >= acknowledged,
        "{acknowledged} acknowledged, {stored} stored"
    );
    server.stop().await;
}

/// `vsamr unit` runs a script's changes as one unit of work: all committed
/// together, or none of them when one fails (the message names its line),
/// and `--rollback` rehearses a script without storing anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_script_of_changes_commits_whole_or_not_at_all() {
    let dir = tempfile::tempdir().unwrap();
    let (server, cli) = server(dir.path()).await;
    let scripts = dir.path().to_path_buf();
    let cli = tokio::task::spawn_blocking(move || {
        cli.ok(&[
            "define", "PAY.ACCT", "--org", "ksds", "--key-length", "4", "--record-size", "40",
        ]);
        cli.ok(&["put", "PAY.ACCT", "0001 balance 100"]);
        cli.ok(&["put", "PAY.ACCT", "0002 balance 50"]);
        let write = |name: &str, text: &str| {
            let path = scripts.join(name);
            std::fs::write(&path, text).unwrap();
            path.display().to_string()
        };
        let transfer = write(
            "transfer.txt",
            "# move 30 from 0001 to 0002\nupdate PAY.ACCT '0001 balance 70'\nupdate pay.acct \"0002 balance 80\"\nput PAY.ACCT '0003 audit 30'\n",
        );
        let rehearsal = cli.ok(&["unit", &transfer, "--rollback"]);
        assert!(rehearsal.contains("3 changes made and rolled back"), "{rehearsal}");
        assert_eq!(
            cli.ok(&["browse", "PAY.ACCT"]),
            "0001 balance 100\n0002 balance 50\n"
        );
        let failing = write(
            "failing.txt",
            "update PAY.ACCT '0001 balance 0'\nerase PAY.ACCT 0002\nput PAY.ACCT '0001 again'\n",
        );
        let error = cli.fails(&["unit", &failing]);
        assert!(
            error.contains("line 3") && error.contains("FDBK=X'08'") && error.contains("rolled back"),
            "{error}"
        );
        assert_eq!(
            cli.ok(&["browse", "PAY.ACCT"]),
            "0001 balance 100\n0002 balance 50\n",
            "nothing of the failed script is stored"
        );
        let done = cli.ok(&["unit", &transfer]);
        assert!(done.contains("3 changes committed"), "{done}");
        assert_eq!(
            cli.ok(&["browse", "PAY.ACCT"]),
            "0001 balance 70\n0002 balance 80\n0003 audit 30\n"
        );
        let bad = write("bad.txt", "put PAY.ACCT\n");
        let error = cli.fails(&["unit", &bad]);
        assert!(error.contains("line 1"), "{error}");
        cli
    })
    .await
    .unwrap();
    drop(cli);
    server.stop().await;
}

/// A server on the embedded default in `dir` (`tweak` applied to its
/// configuration), and the arguments that reach its admin port (`admin
/// --admin ADDRESS --token-file FILE`), for a command to follow.
async fn server_and_admin(
    dir: &Path,
    tweak: impl FnOnce(&mut Config),
) -> (RunningServer, Vec<String>) {
    let mut config = Config::embedded_default();
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.move_data_dir(dir.to_path_buf());
    tweak(&mut config);
    let server = RunningServer::start(&config).await.unwrap();
    let admin = server.admin_addr.expect("admin enabled").to_string();
    let token_file = dir.join("admin.token").display().to_string();
    let args = ["admin", "--admin", &admin, "--token-file", &token_file].map(str::to_string);
    (server, args.to_vec())
}

/// An operator sees the units of work holding records (`vsamr admin
/// status`) and rolls a stuck one back (`vsamr admin rollback-unit`): its
/// records are free at once, and its connection's next request says so.
/// A unit older than `max_unit_secs` is rolled back the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_sees_and_rolls_back_units_and_old_ones_expire() {
    use vsam_client::{Connection, Dataset, OpenIntent, RplOptions};
    let dir = tempfile::tempdir().unwrap();
    let (server, admin) =
        server_and_admin(dir.path(), |config| config.server.max_unit_secs = 3).await;
    let address = server.addr.to_string();
    let cli = Cli {
        server: address.clone(),
    };
    let conn = Connection::connect(&address).await.unwrap();
    vsam_client::define(&conn, vsam_tests_spec("OPS.ACCT"))
        .await
        .unwrap();
    let stuck = Dataset::open_with_access(
        &conn,
        "OPS.ACCT",
        OpenIntent::Update,
        vsam_protocol::access::COMMIT,
        1,
    )
    .await
    .unwrap();
    stuck
        .put(0, RplOptions::direct(), 0, b"0001 stuck".to_vec())
        .await
        .unwrap();
    let admin_args = move |command: &[&str]| -> Vec<String> {
        let mut args = admin.clone();
        args.extend(command.iter().map(|s| s.to_string()));
        args
    };
    let (status, connection) = {
        let args = admin_args(&["status"]);
        let cli = Cli {
            server: address.clone(),
        };
        tokio::task::spawn_blocking(move || {
            let status = cli.ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
            let connection: u64 = status
                .lines()
                .find_map(|line| line.trim().strip_prefix("unit          connection "))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("no unit in the status: {status}"));
            (status, connection)
        })
        .await
        .unwrap()
    };
    assert!(
        status.contains("1 changed records held") && status.contains("OPS.ACCT"),
        "{status}"
    );
    assert!(
        status.contains("units memory  1 KiB of changed records held by all units"),
        "the record and its key, under one KiB, counted against the server's limit: {status}"
    );
    // Another connection cannot take the record while the unit holds it.
    let other = Connection::connect(&address).await.unwrap();
    let theirs = Dataset::open(&other, "OPS.ACCT", OpenIntent::Update, 1)
        .await
        .unwrap();
    let held = theirs
        .put(0, RplOptions::direct(), 0, b"0001 theirs".to_vec())
        .await
        .unwrap_err();
    assert_eq!(held.vsam().unwrap().fdbk(), 0x14);
    let args = admin_args(&["rollback-unit", &connection.to_string()]);
    let rolled = tokio::task::spawn_blocking(move || {
        cli.ok(&args.iter().map(String::as_str).collect::<Vec<_>>())
    })
    .await
    .unwrap();
    assert!(rolled.contains("is rolled back"), "{rolled}");
    theirs
        .put(0, RplOptions::direct(), 0, b"0001 theirs".to_vec())
        .await
        .expect("the record is free at once");
    let told = stuck.read(b"0001").await.unwrap_err();
    let message = &told.vsam().unwrap().status.message;
    assert!(
        told.vsam().unwrap().r15() == 12
            && message.contains("rolled back by the operator")
            && message.contains("1 changes"),
        "{told}"
    );
    assert_eq!(stuck.read(b"0001").await.unwrap().data, b"0001 theirs");

    // A unit older than max_unit_secs (3 s) is rolled back by the server.
    stuck
        .put(0, RplOptions::direct(), 0, b"0002 slow".to_vec())
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(4500)).await;
    let expired = stuck.read(b"0002").await.unwrap_err();
    let message = &expired.vsam().unwrap().status.message;
    assert!(message.contains("max_unit_secs"), "{message}");
    assert!(
        theirs.read(b"0002").await.is_err(),
        "nothing of it is stored"
    );
    server.stop().await;
}

/// An operator finds the connection a refusal X'14' names (`vsamr admin
/// connections`: its address, client, open datasets, the records it holds
/// for update and in its unit of work) and ends it (`vsamr admin
/// disconnect`): the record is free, the unit's change never happened,
/// and the program ended is told why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_finds_the_connection_that_holds_a_record_and_ends_it() {
    use vsam_client::{Connection, Dataset, OpenIntent, RplOptions};
    let dir = tempfile::tempdir().unwrap();
    let (server, admin) = server_and_admin(dir.path(), |config| {
        config.metrics_listen = Some("127.0.0.1:0".parse().unwrap())
    })
    .await;
    let address = server.addr.to_string();
    let metrics = server.metrics_addr.expect("metrics on").to_string();
    let vsamr_admin = move |command: Vec<String>| {
        let mut args = admin.clone();
        args.extend(command);
        let cli = Cli {
            server: address.clone(),
        };
        tokio::task::spawn_blocking(move || {
            cli.run(&args.iter().map(String::as_str).collect::<Vec<_>>())
        })
    };

    // The program that will not let go: a GET UPD, and a change in its
    // unit of work.
    let named = vsam_client::ConnectOptions {
        client: Some("PAYROLL nightly".into()),
        ..Default::default()
    };
    let stuck = Connection::connect_with(&server.addr.to_string(), &named)
        .await
        .unwrap();
    for name in ["OPS.HOLD", "OPS.UNIT"] {
        vsam_client::define(&stuck, vsam_tests_spec(name))
            .await
            .unwrap();
    }
    let held = Dataset::open(&stuck, "OPS.HOLD", OpenIntent::Update, 1)
        .await
        .unwrap();
    held.put(0, RplOptions::direct(), 0, b"0001 first".to_vec())
        .await
        .unwrap();
    held.reading(RplOptions::direct().update())
        .key(b"0001")
        .records()
        .await
        .unwrap();
    let unit = Dataset::open_with_access(
        &stuck,
        "OPS.UNIT",
        OpenIntent::Update,
        vsam_protocol::access::COMMIT,
        1,
    )
    .await
    .unwrap();
    unit.put(0, RplOptions::direct(), 0, b"0009 uncommitted".to_vec())
        .await
        .unwrap();

    // Another program is refused the record, naming the connection.
    let other = Connection::connect(&server.addr.to_string()).await.unwrap();
    let theirs = Dataset::open(&other, "OPS.HOLD", OpenIntent::Update, 1)
        .await
        .unwrap();
    let take = || {
        theirs
            .reading(RplOptions::direct().update())
            .key(b"0001")
            .records()
    };
    let refused = take().await.unwrap_err();
    let message = refused.vsam().unwrap().status.message.clone();
    let connection: u64 = message
        .split_once("held for update by connection ")
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no connection named in: {message}"));

    let (ok, listed, error) = vsamr_admin(vec!["connections".into()]).await.unwrap();
    assert!(ok, "{error}");
    let line = listed
        .lines()
        .find(|line| line.split_whitespace().next() == Some(&connection.to_string()))
        .unwrap_or_else(|| panic!("connection {connection} not listed: {listed}"));
    let columns: Vec<&str> = line.split_whitespace().collect();
    assert!(columns[1].starts_with("127.0.0.1:"), "{line}");
    assert_eq!(columns[2], "anonymous", "{line}");
    assert!(line.contains("PAYROLL nightly"), "{line}");
    assert!(line.ends_with("1     1  OPS.HOLD, OPS.UNIT"), "{listed}");
    let (ok, json, error) = vsamr_admin(vec!["--json".into(), "connections".into()])
        .await
        .unwrap();
    assert!(ok, "{error}");
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    let rows = json["connections"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{json}");
    let row = rows
        .iter()
        .find(|row| row["connection"] == connection)
        .unwrap();
    assert_eq!(
        (&row["held_for_update"], &row["unit_records"]),
        (&serde_json::json!(1), &serde_json::json!(1)),
        "{row}"
    );
    assert!(row["requests"].as_u64().unwrap() >= 7, "{row}");

    let (ok, ended, error) = vsamr_admin(vec!["disconnect".into(), connection.to_string()])
        .await
        .unwrap();
    assert!(ok, "{error}");
    assert!(
        ended.contains(&format!(
            "connection {connection} (anonymous from 127.0.0.1:"
        )) && ended
            .contains("1 record(s) it held for update and 1 in its unit of work are released"),
        "{ended}"
    );
    // The record is free once the connection has closed.
    let started = std::time::Instant::now();
    while take().await.is_err() {
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let told = held.read(b"0001").await.unwrap_err().to_string();
    assert!(
        told.contains(
            "an operator ended this connection: ended by the operator (vsamr admin disconnect)"
        ),
        "{told}"
    );
    let rolled_back = operator_rollbacks(&metrics);
    assert_eq!(
        rolled_back, 1.0,
        "the unit ended with its connection is counted"
    );
    let units = Dataset::open(&other, "OPS.UNIT", OpenIntent::Input, 1)
        .await
        .unwrap();
    assert!(
        units.read(b"0009").await.is_err(),
        "the unit's change never happened"
    );
    let (ok, _, error) = vsamr_admin(vec!["disconnect".into(), connection.to_string()])
        .await
        .unwrap();
    assert!(
        !ok && error.contains(&format!("no connection {connection} is open")),
        "{error}"
    );
    let (_, listed, _) = vsamr_admin(vec!["connections".into()]).await.unwrap();
    assert_eq!(
        listed.lines().count(),
        2,
        "the header and the other: {listed}"
    );
    server.stop().await;
}

/// The wrong port or the wrong transport is named as such: `--tls` to a
/// server without TLS, `vsamr` given the admin port or the metrics port,
/// `vsamr admin` given the VSAM port; only an address where nothing
/// answers asks whether vsamrd runs, and one that takes the connection
/// but never answers is given up after `--timeout`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_port_or_transport_says_which() {
    let dir = tempfile::tempdir().unwrap();
    let (server, admin) = server_and_admin(dir.path(), |config| {
        config.metrics_listen = Some("127.0.0.1:0".parse().unwrap())
    })
    .await;
    let address = server.addr.to_string();
    let admin_address = admin[2].clone();
    let metrics = server.metrics_addr.expect("metrics on").to_string();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let cli = Cli {
        server: address.clone(),
    };
    let listen = address.clone();
    tokio::task::spawn_blocking(move || {
        let tls = cli.fails(&["--tls", "ping"]);
        assert!(
            tls.contains("does not take TLS on this port") && !tls.contains("is vsamrd running"),
            "{tls}"
        );
        let on_admin = cli.fails(&["--server", &admin_address, "ping"]);
        assert!(
            on_admin.contains(&format!(
                "this is vsamrd's admin port (JSON lines, for vsamr admin); VSAM requests go to its protocol port, {listen}"
            )) && !on_admin.contains("is vsamrd running"),
            "{on_admin}"
        );
        let mut on_vsam: Vec<&str> = admin.iter().map(String::as_str).collect();
        on_vsam[2] = &listen;
        on_vsam.push("status");
        let on_vsam = cli.fails(&on_vsam);
        assert!(
            on_vsam.contains(&format!("{listen} is a VSAM port, not the admin interface"))
                && on_vsam.contains("speaking the binary VSAM redirector protocol"),
            "{on_vsam}"
        );
        let on_metrics = cli.fails(&["--server", &metrics, "ping"]);
        assert!(
            on_metrics.contains("it answered in HTTP (a web server, or vsamrd's metrics port, [metrics] listen)"),
            "{on_metrics}"
        );
        let nothing = cli.fails(&["--server", &closed, "ping"]);
        assert!(nothing.contains("is vsamrd running?"), "{nothing}");
    })
    .await
    .unwrap();

    // A port that takes connections (the kernel's backlog) and never
    // answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_address = silent.local_addr().unwrap().to_string();
    let cli = Cli {
        server: address.clone(),
    };
    let waited = {
        let silent_address = silent_address.clone();
        tokio::task::spawn_blocking(move || {
            let started = std::time::Instant::now();
            let args = [
                "admin",
                "--admin",
                &silent_address,
                "--token",
                "t",
                "--timeout",
                "1",
            ];
            (
                cli.fails(&[&args[..], &["status"]].concat()),
                started.elapsed(),
            )
        })
        .await
        .unwrap()
    };
    let (stderr, took) = waited;
    assert!(
        stderr.contains(&format!(
            "{silent_address} did not answer `status` within 1 s"
        )) && stderr.contains("--timeout SECS waits longer"),
        "{stderr}"
    );
    assert!(took < Duration::from_secs(20), "gave up after {took:?}");
    // The library's client gives that connection up: a late answer would
    // be taken for the next request's.
    let mut client = vsam_client::admin::AdminClient::connect(&silent_address, "t".into())
        .await
        .unwrap();
    client.set_answer_limit(Some(Duration::from_millis(300)));
    let first = client.request(AdminCommand::Connections).await.unwrap_err();
    assert!(
        format!("{first:#}").contains("did not answer `connections` within 0.3 s"),
        "{first:#}"
    );
    let next = client.request(AdminCommand::Status).await.unwrap_err();
    assert!(
        format!("{next:#}").contains("is given up: it did not answer `connections` in time"),
        "{next:#}"
    );
    drop(silent);
    server.stop().await;
}

/// `vsamrd_units_rolled_back_by_server_total{reason="operator"}` now, read
/// from the server's `/metrics`.
fn operator_rollbacks(metrics: &str) -> f64 {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(metrics).unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: vsamrd\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    text.lines()
        .find_map(|line| {
            line.strip_prefix("vsamrd_units_rolled_back_by_server_total{reason=\"operator\"} ")
        })
        .map_or(0.0, |value| value.trim().parse().unwrap())
}

/// A KSDS entry for DEFINE, routed by the server.
fn vsam_tests_spec(name: &str) -> vsam_protocol::DatasetSpec {
    vsam_protocol::DatasetSpec {
        name: name.into(),
        organization: vsam_protocol::Organization::Ksds,
        key_offset: 0,
        key_length: 4,
        min_record: 0,
        max_record: 40,
        codepage: "ascii".into(),
        backend: String::new(),
        layout: String::new(),
    }
}

/// Runs vsamr with `args` against `server`; whether it succeeded, what it
/// printed, and its peak resident size in MiB: its `VmHWM`, read every
/// 5 ms while it runs. (`wait4`'s `ru_maxrss` would count this test
/// process's own resident size too: a child spawned from it starts from
/// its memory before `exec`.)
fn run_measured(server: &str, args: &[&str]) -> (bool, String, u64) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_vsamr"))
        .env("VSAMR_SERVER", server)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak_kib = 0;
    let status = loop {
        if let Ok(status) = std::fs::read_to_string(&status_file)
            && let Some(line) = status.lines().find(|l| l.starts_with("VmHWM:"))
        {
            let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
            peak_kib = peak_kib.max(kib);
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let output = child.wait_with_output().unwrap();
    let printed = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (status.success(), printed, peak_kib / 1024)
}

/// A load and an unload go through the memory of a few chains, whatever
/// the file's size: 160 MB of records in and out of a vsamr whose peak
/// resident size stays under 100 MB (it held the whole file, and the
/// records cut from it, before: 318 and 177 MB), and what comes out is
/// what went in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_and_an_unload_stream_the_file() {
    use std::io::{Read, Write};
    const RECORD: usize = 8192;
    const RECORDS: usize = 20_000;
    let dir = tempfile::tempdir().unwrap();
    let (server, cli) = server(dir.path()).await;
    let input = dir.path().join("big.dat");
    let output = dir.path().join("out.dat");
    {
        let mut file = std::io::BufWriter::new(std::fs::File::create(&input).unwrap());
        for n in 0..RECORDS {
            let mut record = format!("{n:08}").into_bytes();
            record.resize(RECORD, b'A' + (n % 26) as u8);
            file.write_all(&record).unwrap();
        }
        file.flush().unwrap();
    }
    let address = cli.server.clone();
    let (input_path, output_path) = (input.clone(), output.clone());
    let measured = tokio::task::spawn_blocking(move || {
        cli.ok(&[
            "define",
            "BIG.STREAM",
            "--org",
            "ksds",
            "--key-length",
            "8",
            "--record-size",
            "8192",
            "--codepage",
            "ascii",
        ]);
        let format = format!("fixed:{RECORD}");
        let (input, output) = (input_path.to_str().unwrap(), output_path.to_str().unwrap());
        let load = run_measured(
            &address,
            &["load", "BIG.STREAM", input, "--format", &format],
        );
        let unload = run_measured(
            &address,
            &["unload", "BIG.STREAM", output, "--format", &format],
        );
        (load, unload)
    })
    .await
    .unwrap();
    let ((loaded, load_said, load_mib), (unloaded, unload_said, unload_mib)) = measured;
    assert!(
        loaded && load_said.starts_with(&format!("loaded {RECORDS} of {RECORDS} records")),
        "{load_said}"
    );
    assert!(unloaded, "{unload_said}");
    let mut written = Vec::new();
    std::fs::File::open(&output)
        .unwrap()
        .read_to_end(&mut written)
        .unwrap();
    assert!(
        std::fs::read(&input).unwrap() == written,
        "the file came back changed"
    );
    assert!(load_mib < 100, "vsamr load peaked at {load_mib} MiB");
    assert!(unload_mib < 100, "vsamr unload peaked at {unload_mib} MiB");
    server.stop().await;
}

/// A reader of vsamr's output that goes away (`vsamr list | head -1`)
/// ends it quietly with status 141, as a closed pipe ends other tools: no
/// panic, no error for every later line. (The pipe's reading end is closed
/// before vsamr starts, so that every command meets it.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_output_pipe_ends_vsamr_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let (server, cli) = server(dir.path()).await;
    let cli = tokio::task::spawn_blocking(move || {
        cli.ok(&[
            "define",
            "PIPE.KSDS",
            "--org",
            "ksds",
            "--key-length",
            "4",
            "--record-size",
            "20",
        ]);
        cli.ok(&["put", "PIPE.KSDS", "K001first"]);
        for args in [
            &["list", "**"][..],
            &["--json", "list", "**"],
            &["info", "PIPE.KSDS"],
            &["browse", "PIPE.KSDS"],
            &["unload", "PIPE.KSDS", "-"],
            &["get", "PIPE.KSDS", "K001"],
            &["completions", "bash"],
        ] {
            // The reading end closed before vsamr starts: closed after, it
            // lost the race now and then to an output that fits in the pipe.
            let (reader, writer) = std::io::pipe().unwrap();
            drop(reader);
            let output = Command::new(env!("CARGO_BIN_EXE_vsamr"))
                .env("VSAMR_SERVER", &cli.server)
                .args(args)
                .stdout(writer)
                .stderr(std::process::Stdio::piped())
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(output.status.code(), Some(141), "vsamr {args:?}: {stderr}");
            assert!(stderr.is_empty(), "vsamr {args:?}: {stderr}");
        }
    });
    cli.await.unwrap();
    server.stop().await;
}
