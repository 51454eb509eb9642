use super::*;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, "test.toml", Path::new("/etc/vsamrd"))
}

#[test]
fn the_embedded_default_offers_csv_and_objects_beside_the_default_sqlite() {
    let config = Config::embedded_default();
    assert_eq!(config.backends["objects"].plugin, "s3");
    assert_eq!(
        config.backends["objects"].bucket,
        Some(BucketSpec::Directory(PathBuf::from("./vsam-data/objects")))
    );
    assert_eq!(config.listen.to_string(), "127.0.0.1:2387");
    assert_eq!(config.plugins["csv"], PluginSource::Builtin("csv".into()));
    assert_eq!(
        config.backends["csv"].directory.as_deref(),
        Some(Path::new("./vsam-data/csv"))
    );
    assert_eq!(config.default_backend.as_deref(), Some("sqlite"));
}

#[test]
fn the_documented_example_is_valid() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/vsamrd.toml");
    let config = Config::load(&path).unwrap();
    assert_eq!(
        config.rules,
        vec![("TEST.**".to_string(), "scratch".to_string())]
    );
    assert_eq!(config.datasets[0].name, "PROD.CUST.MASTER");
    assert_eq!(config.datasets[0].backend, "csv");
    assert!(
        config.datasets[0]
            .layout
            .as_deref()
            .unwrap()
            .contains("CUSTOMER-RECORD")
    );
    assert_eq!(
        config.backends["csv"].params,
        vec![("durability".to_string(), "fsync".to_string())]
    );
}

#[test]
fn the_documented_mirrors_and_change_stream_are_valid() {
    // The commented `[changes]` and `[[mirrors]]` sections of the example,
    // switched on.
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/vsamrd.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let from = text.find("# [changes]").unwrap();
    let to = text.find("# The operator's interface").unwrap();
    let sections: Vec<&str> = text[from..to]
        .lines()
        .filter_map(|line| line.strip_prefix("# "))
        // Indented lines are alternatives to the lines above them.
        .filter(|line| line.starts_with('[') || (line.contains(" = ") && !line.starts_with(' ')))
        .collect();
    let alternatives: Vec<&str> = text[from..to]
        .lines()
        .filter_map(|line| line.strip_prefix("#   "))
        .filter(|line| line.contains(" = "))
        .collect();
    let table = Config::parse(
        &format!("{text}\n[changes]\n{}\n", alternatives.join("\n")),
        "vsamrd.toml",
        path.parent().unwrap(),
    )
    .unwrap()
    .changes
    .stream
    .unwrap()
    .table
    .unwrap();
    assert_eq!(table.name, "_vsamrd_change_stream");
    let config = Config::parse(
        &format!("{text}\n{}\n", sections.join("\n")),
        "vsamrd.toml",
        path.parent().unwrap(),
    )
    .unwrap();
    assert!(!config.changes.strict);
    assert_eq!(
        config.changes.stream.as_ref().unwrap().datasets,
        ["PROD.**"]
    );
    assert_eq!(config.mirrors[0].backends, ["objects"]);
    assert_eq!(config.mirrors[0].datasets, "PROD.CUST.**");
}

#[test]
fn relative_paths_resolve_against_the_file() {
    let config = parse("[plugins.x]\npath = \"plugins/x.wasm\"\n").unwrap();
    assert_eq!(
        config.plugins["x"],
        PluginSource::File("/etc/vsamrd/plugins/x.wasm".into())
    );
    assert_eq!(config.server.data_dir, Path::new("/etc/vsamrd/vsam-data"));
}

#[test]
fn unknown_fields_name_the_line_and_field() {
    let error = parse("[server]\nlisten = \"127.0.0.1:1\"\nlisen = 3\n").unwrap_err();
    assert_eq!(error.line, Some(3));
    assert!(error.message.contains("lisen"), "{error}");
    assert!(error.to_string().starts_with("test.toml:3"), "{error}");
}

#[test]
fn wrong_types_name_the_line() {
    let error = parse("[server]\n\nmax_frame = \"big\"\n").unwrap_err();
    assert_eq!(error.line, Some(3), "{error}");
    let error = parse("[server]\nlisten = \"127.0.0.1:1\"\nmax_connections = -1\n").unwrap_err();
    assert_eq!(
        (error.line, error.field.as_str()),
        (Some(3), "server.max_connections"),
        "{error}"
    );
    assert!(
        error.to_string().contains("field `server.max_connections`"),
        "{error}"
    );
}

#[test]
fn references_to_missing_things_name_the_line_and_field() {
    let error = parse("[backends.b]\nplugin = \"nope\"\n").unwrap_err();
    assert_eq!(
        (error.line, error.field.as_str()),
        (Some(2), "backends.b.plugin")
    );
    assert!(
        error.message.contains("no plugin named \"nope\"; add a [plugins.nope] section (path = a component file, or one of the builtins: builtin:sql, builtin:csv, builtin:s3, builtin:memory)"),
        "{error}"
    );
    // The embedded default's names, which a file must declare itself.
    let error = parse("[backends.b]\nplugin = \"sql\"\n").unwrap_err();
    assert!(
        error
            .message
            .contains("no plugin named \"sql\"; add [plugins.sql] with path = \"builtin:sql\""),
        "{error}"
    );
    let error =
        parse("[[routing.rules]]\npattern = \"PAY.**\"\nbackend = \"sqlite\"\n").unwrap_err();
    assert_eq!(error.field, "routing.rules[0].backend");
    assert!(
        error.message.contains("no backend named \"sqlite\"; configured backends: (none) (a configuration file replaces the embedded default: declare the backends sqlite, csv and objects it had"),
        "{error}"
    );

    let error = parse("[plugins.p]\npath = \"builtin:mysql\"\n").unwrap_err();
    assert_eq!(error.line, Some(2));
    assert!(
        error.message.contains("builtins are sql, csv, s3, memory"),
        "{error}"
    );

    let error = parse("[routing]\ndefault = \"gone\"\n").unwrap_err();
    assert_eq!(
        (error.line, error.field.as_str()),
        (Some(2), "routing.default")
    );
}

#[test]
fn bad_datasets_are_refused_with_their_place() {
    let base = "[plugins.m]\npath = \"builtin:memory\"\n[backends.m]\nplugin = \"m\"\n[routing]\ndefault = \"m\"\n";
    let error = parse(&format!("{base}[[datasets]]\nname = \"1BAD\"\norganization = \"ksds\"\nkey_length = 4\nrecord_size = 10\n")).unwrap_err();
    assert_eq!(
        (error.line, error.field.as_str()),
        (Some(8), "datasets[0].name")
    );
    let error = parse(&format!(
        "{base}[[datasets]]\nname = \"A.B\"\norganization = \"kdsd\"\nrecord_size = 10\n"
    ))
    .unwrap_err();
    assert_eq!(error.field, "datasets[0].organization");
    let error = parse(&format!("{base}[[datasets]]\nname = \"A.B\"\norganization = \"ksds\"\nkey_offset = 8\nkey_length = 4\nrecord_size = 10\n")).unwrap_err();
    assert!(
        error.message.contains("ends past the record size"),
        "{error}"
    );
    // A key offset near 2^32 must not wrap round to a key inside the record.
    let error = parse(&format!("{base}[[datasets]]\nname = \"A.B\"\norganization = \"ksds\"\nkey_offset = 4294967295\nkey_length = 1\nrecord_size = 10\n")).unwrap_err();
    assert!(
        error.message.contains("ends past the record size"),
        "{error}"
    );
    let ok = parse(&format!(
        "{base}[[datasets]]\nname = \"a.b\"\norganization = \"rrds\"\nrecord_size = 10\n"
    ))
    .unwrap();
    assert_eq!(
        (ok.datasets[0].name.as_str(), ok.datasets[0].min_record),
        ("A.B", 10)
    );
    let variable = parse(&format!(
        "{base}[[datasets]]\nname = \"a.v\"\norganization = \"vrrds\"\nrecord_size = 10\n"
    ))
    .unwrap();
    assert_eq!(
        (
            variable.datasets[0].organization,
            variable.datasets[0].min_record
        ),
        (vsam_protocol::Organization::Vrrds, 1),
        "a VRRDS's records are 1 byte or more"
    );
}

#[test]
fn a_bad_listen_address_is_named() {
    let error = parse("[server]\nlisten = \"localhost\"\n").unwrap_err();
    assert_eq!(error.field, "server.listen");
    assert_eq!(error.line, Some(2));
}

#[test]
fn idle_polling_defaults_to_200_us_and_is_bounded() {
    assert_eq!(parse("").unwrap().server.idle_poll_us, 200);
    assert_eq!(
        parse("[server]\nidle_poll_us = 0\n")
            .unwrap()
            .server
            .idle_poll_us,
        0
    );
    let error = parse("[server]\nidle_poll_us = 1000000\n").unwrap_err();
    assert_eq!(error.field, "server.idle_poll_us");
    assert_eq!(error.line, Some(2));
    assert!(error.message.contains("at most 10000"), "{error}");
}

#[test]
fn the_delay_of_a_refused_token_defaults_to_a_second_and_is_bounded() {
    assert_eq!(parse("").unwrap().server.auth_failure_delay_ms, 1000);
    let error = parse("[server]\nauth_failure_delay_ms = 60000\n").unwrap_err();
    assert_eq!(error.field, "server.auth_failure_delay_ms");
    assert_eq!(error.line, Some(2));
    assert!(
        error.message.contains("at most 10000 (10 s), not 60000"),
        "{error}"
    );
}

#[test]
fn the_default_routes_to_embedded_sqlite_and_data_dir_moves_carry_its_file() {
    let mut config = Config::embedded_default();
    assert_eq!(config.default_backend.as_deref(), Some("sqlite"));
    assert_eq!(config.backends["sqlite"].plugin, "sql");
    assert!(config.backends.contains_key("csv"));
    config.move_data_dir(PathBuf::from("/srv/vsam"));
    assert_eq!(
        config.backends["sqlite"].database,
        Some(DatabaseUrl::Sqlite(PathBuf::from(
            "/srv/vsam/sqlite/vsam.db"
        )))
    );
    assert_eq!(
        config.backends["csv"].directory.as_deref(),
        Some(Path::new("/srv/vsam/csv"))
    );
}

#[test]
fn database_urls_are_checked_and_passwords_never_shown() {
    let bad = Config::parse(
        "[plugins.p]\npath = \"builtin:sql\"\n[backends.b]\nplugin = \"p\"\ndatabase = \"mysql://x\"\n",
        "t.toml",
        Path::new("."),
    )
    .unwrap_err();
    assert_eq!(bad.line, Some(5));
    assert!(bad.message.contains("sqlite:PATH or postgres://"), "{bad}");
    let good = Config::parse(
        "[plugins.p]\npath = \"builtin:sql\"\n[backends.b]\nplugin = \"p\"\ndatabase = \"postgres://app:s3cret@db.example:5432/vsam\"\n",
        "t.toml",
        Path::new("."),
    )
    .unwrap();
    let shown = format!("{:?}", good.backends["b"].database);
    assert!(
        shown.contains("app:***@db.example") && !shown.contains("s3cret"),
        "{shown}"
    );
}

#[test]
fn readers_need_a_database_and_a_bound() {
    let backend = |extra: &str| {
        Config::parse(
            &format!("[plugins.p]\npath = \"builtin:sql\"\n[backends.b]\nplugin = \"p\"\n{extra}"),
            "t.toml",
            Path::new("."),
        )
    };
    let files = backend("readers = 2\n").unwrap_err();
    assert!(
        files.field == "backends.b.readers" && files.message.contains("database"),
        "{files}"
    );
    let many = backend("database = \"sqlite:x.db\"\nreaders = 99\n").unwrap_err();
    assert!(many.message.contains("at most 15"), "{many}");
    let good = backend("database = \"sqlite:x.db\"\nreaders = 3\n").unwrap();
    assert_eq!(good.backends["b"].readers, 3);
    let default = backend("database = \"sqlite:x.db\"\n").unwrap();
    assert_eq!(default.backends["b"].readers, 0);
}

#[test]
fn buckets_are_a_directory_or_an_s3_bucket_and_secrets_are_never_shown() {
    let backend = |bucket: &str| {
        parse(&format!(
            "[plugins.s3]\npath = \"builtin:s3\"\n[backends.o]\nplugin = \"s3\"\nbucket = {bucket}\n"
        ))
    };
    let local = backend(r#"{ directory = "objects" }"#).unwrap();
    assert_eq!(
        local.backends["o"].bucket,
        Some(BucketSpec::Directory(PathBuf::from(
            "/etc/vsamrd/vsam-data/objects"
        )))
    );
    let s3 = backend(
        r#"{ name = "vsam", endpoint = "http://127.0.0.1:8333", access_key_id = "AK", secret_access_key = "SECRET" }"#,
    )
    .unwrap();
    let Some(BucketSpec::S3(spec)) = &s3.backends["o"].bucket else {
        panic!("an S3 bucket");
    };
    assert_eq!(
        (spec.bucket.as_str(), spec.virtual_hosted_style),
        ("vsam", false)
    );
    let shown = format!("{:?}", s3.backends["o"]);
    assert!(
        shown.contains("bucket vsam at http://127.0.0.1:8333"),
        "{shown}"
    );
    assert!(!shown.contains("SECRET"), "{shown}");

    for (bucket, says) in [
        (
            r#"{ directory = "o", name = "b" }"#,
            "either a local `directory` or an S3 bucket",
        ),
        ("{}", "give `directory"),
        (
            r#"{ name = "b", endpoint = "127.0.0.1:8333" }"#,
            "is not a URL",
        ),
        (
            r#"{ name = "b", access_key_id = "AK" }"#,
            "give both access_key_id",
        ),
        (r#"{ name = "b", bucket = "x" }"#, "unknown field `bucket`"),
    ] {
        let error = backend(bucket).unwrap_err();
        assert_eq!(error.line, Some(5), "{error}");
        assert!(error.to_string().contains(says), "{bucket}: {error}");
    }
}

#[test]
fn the_admin_interface_defaults_to_loopback_2388_or_a_free_port() {
    let config = parse("").unwrap();
    let vsam: std::net::SocketAddr = "0.0.0.0:2387".parse().unwrap();
    assert_eq!(
        config.admin.address(vsam).unwrap().to_string(),
        "127.0.0.1:2388",
        "loopback even when the VSAM port listens everywhere"
    );
    let tests: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
    assert_eq!(config.admin.address(tests).unwrap().port(), 0);
    assert!(config.admin.token_file.ends_with("vsam-data/admin.token"));
    assert!(config.admin.watch_files);
    let set = parse("[admin]\nlisten = \"127.0.0.1:9000\"\nwatch_files = false\n").unwrap();
    assert_eq!(
        set.admin.address(vsam).unwrap().to_string(),
        "127.0.0.1:9000"
    );
    assert!(!set.admin.watch_files);
    let off = parse("[admin]\nenabled = false\n").unwrap();
    assert_eq!(off.admin.address(vsam), None);
    let bad = parse("[admin]\nlisten = \"nowhere\"\n").unwrap_err();
    assert_eq!(bad.field, "admin.listen");
}

#[test]
fn access_sections_are_checked_with_their_place() {
    let digest = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    let base = format!("[[clients]]\nname = \"batch\"\ntoken_sha256 = \"{digest}\"\n");
    let config = parse(&format!(
        "{base}[[access]]\nclients = [\"batch\", \"anonymous\"]\ndatasets = \"pay.**\"\nlevel = \"Update\"\n"
    ))
    .unwrap();
    assert_eq!(config.access.clients[0].name, "BATCH");
    assert_eq!(config.access.rules[0].datasets, "PAY.**");
    assert_eq!(
        config.access.rules[0].clients,
        vec!["BATCH".to_string(), "anonymous".to_string()]
    );
    assert!(config.access.client_for_token("test").is_some());

    let cases = [
        (
            format!(
                "{base}[[access]]\nclients = [\"nobody\"]\ndatasets = \"A.*\"\nlevel = \"read\"\n"
            ),
            "access[0].clients",
            "no [[clients]] entry is named \"nobody\"",
        ),
        (
            format!(
                "{base}[[access]]\nclients = [\"batch\"]\ndatasets = \"A.*\"\nlevel = \"write\"\n"
            ),
            "access[0].level",
            "read (OPEN INPUT, LISTCAT), update",
        ),
        (
            "[[clients]]\nname = \"x\"\ntoken_sha256 = \"abc\"\n".to_string(),
            "clients[0].token_sha256",
            "64 hex digits",
        ),
        (
            "[[clients]]\nname = \"x\"\n".to_string(),
            "clients[0].name",
            "no way to prove who it is",
        ),
        (
            "[[clients]]\nname = \"x\"\ncertificate_name = \"x.example\"\n".to_string(),
            "clients[0].certificate_name",
            "need [tls] with client_ca",
        ),
        (
            format!("{base}[[clients]]\nname = \"BATCH\"\ntoken_sha256 = \"{digest}\"\n"),
            "clients[1].name",
            "names are unique",
        ),
        (
            format!(
                "{base}[[clients]]\nname = \"online\"\ntoken_sha256 = \"{}\"\n",
                digest.to_uppercase()
            ),
            "clients[1].token_sha256",
            "client ONLINE has the token of client BATCH: a token names one client",
        ),
        (
            "[tls]\ncertificate = \"/nonexistent/server.pem\"\nkey = \"/nonexistent/server.key\"\n"
                .to_string(),
            "tls",
            "/nonexistent/server.pem",
        ),
        (
            "[tls]\ncertificate = \"a.pem\"\nkey = \"a.key\"\nplain = \"sometimes\"\n".to_string(),
            "tls.plain",
            "loopback (plain TCP from this machine only), allow or refuse",
        ),
        (
            "[server]\nmax_connections_per_address = 0\n".to_string(),
            "server.max_connections_per_address",
            "at least 1",
        ),
        (
            "[server]\nmax_record = 100000000\n".to_string(),
            "server.max_record",
            "must fit in a frame",
        ),
    ];
    for (text, field, message) in cases {
        let error = parse(&text).unwrap_err();
        assert_eq!(error.field, field, "{error}");
        assert!(error.message.contains(message), "{error}");
        assert!(error.line.is_some(), "{error}");
    }
}

#[test]
fn local_storage_paths_never_climb_out_of_the_data_dir() {
    let plugin = "[plugins.p]\npath = \"builtin:csv\"\n";
    for (backend, field) in [
        (
            "directory = \"../../../etc/vsamtest\"",
            "backends.b.directory",
        ),
        ("database = \"sqlite:../vsam.db\"", "backends.b.database"),
        (
            "bucket = { directory = \"x/../../objects\" }",
            "backends.b.bucket",
        ),
    ] {
        let error = parse(&format!(
            "{plugin}[backends.b]\nplugin = \"p\"\n{backend}\n"
        ))
        .unwrap_err();
        assert_eq!(error.field, field, "{error}");
        assert!(
            error.message.contains("leads out of the data dir"),
            "{error}"
        );
    }
    let config = parse(&format!(
        "{plugin}[backends.b]\nplugin = \"p\"\ndirectory = \"/srv/csv\"\ndatabase = \"sqlite:sub/../vsam.db\"\n"
    ))
    .unwrap();
    assert_eq!(
        config.backends["b"].directory.as_deref(),
        Some(Path::new("/srv/csv"))
    );
}

#[test]
fn two_backends_never_share_local_storage() {
    let plugin = "[plugins.p]\npath = \"builtin:csv\"\n";
    for (a, b) in [
        ("directory = \"csv\"", "directory = \"csv\""),
        ("directory = \"csv\"", "directory = \"csv/inner\""),
        (
            "directory = \"objects\"",
            "bucket = { directory = \"objects\" }",
        ),
        ("directory = \"data\"", "database = \"sqlite:data/vsam.db\""),
        (
            "database = \"sqlite:vsam.db\"",
            "database = \"sqlite:./vsam.db\"",
        ),
    ] {
        let config = parse(&format!(
            "{plugin}[backends.a]\nplugin = \"p\"\n{a}\n[backends.b]\nplugin = \"p\"\n{b}\n"
        ))
        .unwrap();
        let error = crate::local_storage::check_separate(&config).unwrap_err();
        assert!(error.to_string().contains("overlap"), "{a} / {b}: {error}");
    }
    let config = parse(&format!(
        "{plugin}[backends.a]\nplugin = \"p\"\ndirectory = \"csv\"\n[backends.b]\nplugin = \"p\"\ndirectory = \"csv2\"\ndatabase = \"sqlite:csv.db\"\n"
    ))
    .unwrap();
    crate::local_storage::check_separate(&config).unwrap();
}

#[test]
fn the_change_log_never_shares_a_backends_local_storage() {
    let plugin = "[plugins.p]\npath = \"builtin:csv\"\n";
    let follow = "stream = \"file\"\n";
    for (store, changes) in [
        ("directory = \"csv\"", "directory = \"csv\""),
        ("directory = \"csv\"", "directory = \"csv/changes\""),
        ("directory = \"changes/csv\"", ""),
        ("database = \"sqlite:changes/vsam.db\"", ""),
        ("bucket = { directory = \"log\" }", "directory = \"log\""),
    ] {
        let config = parse(&format!(
            "{plugin}[backends.a]\nplugin = \"p\"\n{store}\n[changes]\n{follow}{changes}\n"
        ))
        .unwrap();
        let error = crate::local_storage::check_separate(&config).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("the change log needs a directory of its own")
                && error.to_string().contains("backend a's"),
            "{store} / {changes}: {error}"
        );
        // Nothing follows: the directory is not used.
        let quiet = parse(&format!(
            "{plugin}[backends.a]\nplugin = \"p\"\n{store}\n[changes]\n{changes}\n"
        ))
        .unwrap();
        crate::local_storage::check_separate(&quiet).unwrap();
    }
    let config = parse(&format!(
        "{plugin}[backends.a]\nplugin = \"p\"\ndirectory = \"csv\"\ndatabase = \"sqlite:vsam.db\"\n[changes]\n{follow}directory = \"csv2\"\n"
    ))
    .unwrap();
    crate::local_storage::check_separate(&config).unwrap();
}

#[test]
fn units_rules_resolve_in_order_and_a_bad_pattern_names_its_line() {
    let config = parse(
        "[[units]]\ndatasets = \"pay.**\"\nrecoverable = true\ncheckpoint_records = 500\n[[units]]\ndatasets = \"**\"\ncheckpoint_ms = 250\n",
    )
    .unwrap();
    let pay = UnitRule::find(&config.units, "PAY.LEDGER").unwrap();
    assert!(pay.recoverable);
    assert_eq!(pay.checkpoint_records, 500);
    assert_eq!(pay.checkpoint_after, None);
    let other = UnitRule::find(&config.units, "HR.STAFF").unwrap();
    assert!(!other.recoverable);
    assert_eq!(
        other.checkpoint_after,
        Some(std::time::Duration::from_millis(250))
    );
    let error = parse("[server]\n[[units]]\ndatasets = \"PAY.?\"\n").unwrap_err();
    assert_eq!(error.line, Some(3), "{error}");
    assert!(error.to_string().contains("units[0].datasets"), "{error}");
    let error = parse("[[units]]\ndatasets = \"A\"\nrecover = true\n").unwrap_err();
    assert!(error.to_string().contains("recover"), "{error}");
}

#[test]
fn metrics_listen_is_off_unless_set_and_must_be_an_address() {
    let parse = |extra: &str| Config::parse(extra, "m.toml", Path::new("."));
    assert_eq!(parse("").unwrap().metrics_listen, None);
    assert_eq!(
        parse("[metrics]\nlisten = \"127.0.0.1:9387\"\n")
            .unwrap()
            .metrics_listen,
        Some("127.0.0.1:9387".parse().unwrap())
    );
    let error = parse("[metrics]\nlisten = \"nowhere\"\n")
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("metrics.listen") && error.contains("127.0.0.1:9387"),
        "{error}"
    );
    let error = parse("[metrics]\nport = 9387\n").unwrap_err().to_string();
    assert!(error.contains("unknown field `port`"), "{error}");
    assert_eq!(
        parse("[metrics]\ndatasets = [\"prod.cust.*\", \"A.**\"]\n")
            .unwrap()
            .metrics_datasets,
        ["PROD.CUST.*", "A.**"]
    );
    let error = parse("[metrics]\ndatasets = [\"PROD/CUST\"]\n")
        .unwrap_err()
        .to_string();
    assert!(error.contains("metrics.datasets"), "{error}");
}

/// Three SQL backends: `main` (the default route), `hr` (for `HR.**`) and
/// `report`, and `extra` appended.
fn with_mirrors(extra: &str) -> Result<Config, ConfigError> {
    parse(&format!(
        "[plugins.sql]\npath = \"builtin:sql\"\n\
         [backends.main]\nplugin = \"sql\"\ndatabase = \"sqlite:main.db\"\n\
         [backends.hr]\nplugin = \"sql\"\ndatabase = \"sqlite:hr.db\"\n\
         [backends.report]\nplugin = \"sql\"\ndatabase = \"sqlite:report.db\"\n\
         [routing]\ndefault = \"main\"\n[[routing.rules]]\npattern = \"HR.**\"\nbackend = \"hr\"\n{extra}"
    ))
}

#[test]
fn mirrors_resolve_with_their_defaults() {
    let config = with_mirrors(
        "[changes]\nstream = \"file\"\nstream_datasets = [\"pay.**\"]\n\
         [[mirrors]]\ndatasets = \"pay.**\"\nbackends = [\"report\"]\n\
         [[mirrors]]\ndatasets = \"HR.**\"\nbackends = [\"main\"]\nmode = \"sync\"\non_unavailable = \"degrade\"\nwait_ms = 250\n",
    )
    .unwrap();
    assert_eq!(config.mirrors.len(), 2);
    let first = &config.mirrors[0];
    assert_eq!(first.datasets, "PAY.**");
    assert_eq!(first.mode, MirrorMode::Async);
    assert_eq!(first.max_queue, 1_000_000);
    assert_eq!(first.on_full, OnFull::Stop);
    let second = &config.mirrors[1];
    assert_eq!(second.mode, MirrorMode::Sync);
    assert_eq!(second.on_unavailable, OnUnavailable::Degrade);
    assert_eq!(second.wait, std::time::Duration::from_millis(250));
    assert_eq!(
        config.changes.directory,
        Path::new("/etc/vsamrd/vsam-data/changes")
    );
    let stream = config.changes.stream.as_ref().unwrap();
    assert_eq!(stream.datasets, vec!["PAY.**".to_string()]);
    assert_eq!(stream.keep_files, 8);
    assert_eq!(stream.table, None);
    let table = with_mirrors(
        "[changes]\nstream = \"postgres\"\nstream_database = \"postgres://u:secret@127.0.0.1/db\"\n",
    )
    .unwrap()
    .changes
    .stream
    .unwrap()
    .table
    .unwrap();
    assert_eq!(
        (table.name.as_str(), table.keep_changes),
        ("_vsamrd_change_stream", 1_000_000)
    );
    assert_eq!(table.database.to_string(), "postgres://u:***@127.0.0.1/db");
    assert_eq!(
        config.changes.followed(&config.mirrors),
        vec!["PAY.**", "HR.**", "PAY.**"]
    );
    // The changes directory moves with the data dir.
    let mut moved = config.clone();
    moved.move_data_dir(PathBuf::from("/srv/data"));
    assert_eq!(moved.changes.directory, Path::new("/srv/data/changes"));
    // Nothing follows without a stream or a mirror.
    let plain = with_mirrors("").unwrap();
    assert!(plain.changes.followed(&plain.mirrors).is_empty());
}

#[test]
fn bad_mirrors_are_refused_with_their_place() {
    let cases = [
        (
            "[[mirrors]]\ndatasets = \"PAY.**\"\nbackends = [\"nowhere\"]\n",
            "mirrors[0].backends[0]",
            "no backend named \"nowhere\"",
        ),
        (
            // Every dataset routed to main by default: main cannot mirror
            // its own datasets.
            "[[mirrors]]\ndatasets = \"PAY.**\"\nbackends = [\"report\", \"main\"]\n",
            "mirrors[0].backends",
            "cannot mirror to its own backend",
        ),
        (
            // hr's datasets go to report, report's... none are routed there,
            // but main's go to hr and hr's to main: a circle.
            "[[mirrors]]\ndatasets = \"PAY.**\"\nbackends = [\"hr\"]\n\
             [[mirrors]]\ndatasets = \"HR.**\"\nbackends = [\"main\"]\n",
            "mirrors[",
            "a mirror of a mirror",
        ),
        (
            "[[mirrors]]\ndatasets = \"PAY.**\"\nbackends = [\"report\"]\n\
             [[mirrors]]\ndatasets = \"HR.**\"\nbackends = [\"report\"]\n",
            "mirrors[1].backends[0]",
            "already a mirror of rule mirrors[0]",
        ),
        (
            "[[mirrors]]\ndatasets = \"PAY.**\"\nbackends = [\"report\"]\nmode = \"eventually\"\n",
            "mirrors[0].mode",
            "\"eventually\" is not one of async, sync",
        ),
        (
            "[[mirrors]]\ndatasets = \"PAY.**\"\nbackends = []\n",
            "mirrors[0].backends",
            "names no backend",
        ),
        (
            "[[mirrors]]\ndatasets = \"PAY/**\"\nbackends = [\"report\"]\n",
            "mirrors[0].datasets",
            "not a dataset name pattern",
        ),
        (
            "[changes]\nstream = \"kafka\"\n",
            "changes.stream",
            "\"kafka\" is not one of off, file, postgres",
        ),
        (
            "[changes]\nstream = \"postgres\"\n",
            "changes.stream",
            "needs stream_database",
        ),
        (
            "[changes]\nstream = \"postgres\"\nstream_database = \"sqlite:changes.db\"\n",
            "changes.stream_database",
            "PostgreSQL only",
        ),
        (
            "[changes]\nstream = \"postgres\"\nstream_database = \"postgres://u:p@127.0.0.1/db\"\nstream_table = \"pay; drop table x\"\n",
            "changes.stream_table",
            "not a table name the stream takes",
        ),
        (
            "[changes]\nstream = \"postgres\"\nstream_database = \"postgres://u:p@127.0.0.1/db\"\nstream_table = \"a_name_of_fifty_five_characters_which_is_one_too_long_x\"\n",
            "changes.stream_table",
            "at most 54 characters",
        ),
        (
            "[changes]\nstream = \"postgres\"\nstream_database = \"postgres://u:p@127.0.0.1/db\"\nstream_keep_files = 3\n",
            "changes.stream_keep_files",
            "does not apply to stream = \"postgres\"",
        ),
        (
            "[changes]\nstream = \"file\"\nstream_table = \"changes\"\n",
            "changes.stream_table",
            "does not apply to stream = \"file\"",
        ),
        (
            "[changes]\nstream = \"postgres\"\nstream_database = \"postgres://u:p@127.0.0.1/db\"\nstream_keep_changes = 0\n",
            "changes.stream_keep_changes",
            "at least 1",
        ),
        (
            "[changes]\nstream = \"file\"\nstream_keep_files = 0\n",
            "changes.stream_keep_files",
            "at least 1",
        ),
    ];
    for (extra, field, message) in cases {
        let error = with_mirrors(extra).unwrap_err();
        assert!(error.field.starts_with(field), "{extra}: {error}");
        assert!(error.message.contains(message), "{extra}: {error}");
        assert!(error.line.is_some(), "{extra}: {error}");
    }
}

#[test]
fn a_backend_name_that_could_name_another_file_is_refused_on_its_line() {
    for name in [
        "\"../followed\"",
        "\"pg/reporting\"",
        "\"my backend\"",
        "\"\"",
        &"b".repeat(65),
    ] {
        let text =
            format!("[plugins.p]\npath = \"builtin:csv\"\n[backends.{name}]\nplugin = \"p\"\n");
        let error = parse(&text).unwrap_err();
        assert_eq!(error.line, Some(3), "{name}: {error}");
        assert!(
            error.message.contains(
                "is not a backend name: letters, digits, '-' and '_' only, at most 64 characters"
            ),
            "{name}: {error}"
        );
    }
    let text = format!(
        "[plugins.p]\npath = \"builtin:csv\"\n[backends.{}]\nplugin = \"p\"\n[backends.pg-reporting_2]\nplugin = \"p\"\n",
        "b".repeat(64)
    );
    parse(&text).unwrap();
}
