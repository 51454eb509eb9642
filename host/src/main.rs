//! `vsamrd`: the VSAM redirector server.

use anyhow::Result;
use clap::{CommandFactory, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use vsam_host::Server;
use vsam_host::after_panic::spawn_essential;
use vsam_host::config::Config;
use vsam_host::reload::ConfigSource;

/// VSAM Redirector server: runs VSAM requests from redirector clients
/// against WebAssembly backend plugins (port 2387).
#[derive(Parser)]
#[command(name = "vsamrd", version = vsam_host::long_version(), about)]
struct Cli {
    /// Configuration file (TOML). Without it the embedded default runs: the
    /// SQLite, CSV and object-store backends under the data dir. SIGHUP,
    /// `vsamr admin reload` and a change of the file reload it.
    #[arg(long, short, global = true, env = "VSAMRD_CONFIG")]
    config: Option<PathBuf>,
    /// Listen address, overriding `server.listen`.
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Data directory, overriding `server.data_dir`.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Admin listen address, overriding `admin.listen`.
    #[arg(long)]
    admin_listen: Option<SocketAddr>,
    /// Where `/metrics`, `/healthz` and `/readyz` are served, overriding
    /// `metrics.listen`.
    #[arg(long)]
    metrics_listen: Option<SocketAddr>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Checks a configuration file and prints what it defines.
    CheckConfig {
        /// The file to check (default: the one `--config` or VSAMRD_CONFIG
        /// names, which the server would run with).
        file: Option<PathBuf>,
    },
    /// Prints the shell completion script of vsamrd (e.g.
    /// `vsamrd completions bash > /etc/bash_completion.d/vsamrd`).
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Writes the manual pages of vsamrd (vsamrd.8, vsamrd-check-config.8...)
    /// into a directory.
    Manpages {
        /// The directory (made if missing), e.g. /usr/local/share/man/man8.
        dir: PathBuf,
    },
}

fn main() -> ExitCode {
    // A misspelt VSAMRD_CONFIG would start the embedded default instead
    // of the configuration meant.
    let [log, log_format] = vsam_host::logging::VARIABLES;
    let environment = vsam_protocol::environment::check_program(
        &Cli::command(),
        "VSAMRD_",
        &[log, log_format, vsam_host::REVISION_VARIABLE],
    );
    if let Err(error) = environment {
        eprintln!("vsamrd: {error}");
        return ExitCode::FAILURE;
    }
    let format = match vsam_host::logging::Format::from_env() {
        Ok(format) => format,
        Err(error) => {
            eprintln!("vsamrd: {error}");
            return ExitCode::FAILURE;
        }
    };
    vsam_host::logging::init(format);
    vsam_host::logging::log_panics();
    let cli = Cli::parse();
    // What a command prints is made whole first, then written at once.
    let printed = match cli.command {
        Some(Command::CheckConfig { file }) => {
            config_to_check(file, cli.config).and_then(|file| check_config(&file))
        }
        Some(Command::Completions { shell }) => {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "vsamrd", &mut script);
            Ok(String::from_utf8_lossy(&script).into_owned())
        }
        Some(Command::Manpages { dir }) => vsam_host::manpages::write(Cli::command(), "8", &dir)
            .map(|pages| {
                pages
                    .iter()
                    .map(|page| format!("{}\n", page.display()))
                    .collect()
            }),
        None => run(ConfigSource::from_cli(cli.config)
            .listen(cli.listen)
            .data_dir(cli.data_dir)
            .admin_listen(cli.admin_listen)
            .metrics_listen(cli.metrics_listen))
        .map(|()| String::new()),
    };
    match printed {
        Ok(text) => print_whole(&text),
        Err(error) => {
            eprintln!("vsamrd: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Writes what a command printed. A reader that went away (`| head`,
/// `| true`) ends vsamrd quietly with 128 + SIGPIPE, as a closed pipe
/// ends other tools, instead of the panic `println!` makes of it.
fn print_whole(text: &str) -> ExitCode {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => {
            const SIGPIPE: u8 = 13;
            ExitCode::from(128 + SIGPIPE)
        }
        Err(error) => {
            eprintln!("vsamrd: cannot write to standard output: {error}");
            ExitCode::FAILURE
        }
    }
}

/// The file `check-config` checks: the one it names, or else the one the
/// server would run with; both given, they must be the same.
fn config_to_check(named: Option<PathBuf>, running: Option<PathBuf>) -> Result<PathBuf> {
    match (named, running) {
        (Some(named), Some(running)) if named != running => anyhow::bail!(
            "check-config names {} but --config (or VSAMRD_CONFIG) names {}: give one file",
            named.display(),
            running.display()
        ),
        (Some(file), _) | (None, Some(file)) => Ok(file),
        (None, None) => anyhow::bail!(
            "check-config needs a file: vsamrd check-config FILE (or --config FILE, or VSAMRD_CONFIG); without one the server runs its embedded default, which needs no check"
        ),
    }
}

/// The checked file's report: what it defines, and its warnings.
fn check_config(file: &std::path::Path) -> Result<String> {
    use std::fmt::Write;
    let config = Config::load(file)?;
    vsam_host::local_storage::check_separate(&config)?;
    vsam_host::local_storage::check_creatable(&config)?;
    vsam_host::runtime::wasm::room::room_for(&config.backends)
        .map_err(|error| anyhow::anyhow!("{}: {error}", file.display()))?;
    // Every plugin compiled and checked against the contract, as at start.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let plugins = vsam_host::runtime::PluginRuntime::new(None, runtime.handle().clone())?;
    for (name, source) in &config.plugins {
        let checked = vsam_host::runtime::plugin_bytes(name, source)
            .and_then(|bytes| plugins.load(name, &bytes));
        if let Err(error) = checked {
            anyhow::bail!("{}: field `plugins.{name}.path`: {error:#}", file.display());
        }
    }
    let mut report = String::new();
    // Writing to a String cannot fail.
    macro_rules! line {
        ($($arg:tt)*) => {{
            let _ = writeln!(report, $($arg)*);
        }};
    }
    line!("{}: OK", file.display());
    for warning in config.warnings(Some(file)) {
        line!("  warning   {warning}");
    }
    line!("  listen    {}", config.listen);
    line!("  data dir  {}", config.server.data_dir.display());
    match config.admin.address(config.listen) {
        Some(address) => line!(
            "  admin     {address} (token {}{})",
            config.admin.token_file.display(),
            if config.admin.watch_files {
                ", reload on file changes"
            } else {
                ""
            }
        ),
        None => line!("  admin     off"),
    }
    for (name, source) in &config.plugins {
        line!("  plugin    {name} = {source:?}");
    }
    for (name, backend) in &config.backends {
        line!(
            "  backend   {name}: plugin {}, timeout {} ms, memory {} MiB",
            backend.plugin,
            backend.call_timeout_ms,
            backend.memory_limit >> 20
        );
        for store in backend.local_stores() {
            line!(
                "              data in {} {} (locked by the server that runs it)",
                store.kind,
                store.path.display()
            );
        }
        if let Some(vsam_host::runtime::sql::DatabaseUrl::Postgres(_)) = &backend.database {
            line!("              data in a PostgreSQL database (may be shared)");
        }
        if let Some(vsam_host::runtime::objects::BucketSpec::S3(spec)) = &backend.bucket {
            line!(
                "              data in S3 bucket {} (may be shared)",
                spec.bucket
            );
        }
        if backend.local_stores().is_empty()
            && backend.database.is_none()
            && backend.bucket.is_none()
        {
            line!("              no storage granted: records live in the plugin instance's memory");
        }
    }
    for (pattern, backend) in &config.rules {
        line!("  route     {pattern} -> {backend}");
    }
    if let Some(default) = &config.default_backend {
        line!("  route     (default) -> {default}");
    }
    for ds in &config.datasets {
        line!(
            "  dataset   {} ({}) -> {}",
            ds.name,
            ds.organization.name(),
            ds.backend
        );
    }
    for rule in &config.mirrors {
        let mode = match rule.mode {
            vsam_host::config::MirrorMode::Async => "async",
            vsam_host::config::MirrorMode::Sync => "sync",
        };
        line!(
            "  mirror    {} -> {} ({mode})",
            rule.datasets,
            rule.backends.join(", ")
        );
    }
    if let Some(stream) = &config.changes.stream {
        let target = match &stream.table {
            Some(table) => vsam_host::changes::stream::table::StreamTableWriter::describe(table),
            None => format!(
                "files in {}",
                config.changes.directory.join("stream").display()
            ),
        };
        line!("  stream    {} -> {target}", stream.datasets.join(", "));
    }
    Ok(report)
}

fn run(source: ConfigSource) -> Result<()> {
    use vsam_host::machine;
    machine::raise_open_files();
    if let Some(warning) = machine::root_warning(machine::user_id()) {
        tracing::warn!("{warning}");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let server = Server::bind_source(source, Default::default()).await?;
        let reloader = server.reloader();
        spawn_essential("SIGHUP's reloads", async move {
            use tokio::signal::unix::{SignalKind, signal};
            let Ok(mut hangup) = signal(SignalKind::hangup()) else {
                tracing::warn!("cannot catch SIGHUP; reload with vsamr admin reload");
                return;
            };
            while hangup.recv().await.is_some() {
                reloader.reload("SIGHUP").await;
            }
        });
        let (stop, stopped) = tokio::sync::watch::channel(false);
        spawn_essential("SIGTERM's clean stop", async move {
            wait_for_signal().await;
            tracing::info!("signal received: finishing in-flight requests");
            let _ = stop.send(true);
        });
        server.run(stopped).await;
        Ok(())
    })
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("installing the SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
