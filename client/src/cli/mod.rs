//! Command-line parsing and dispatch.

/// `println!` for vsamr's output: a reader of standard output that went
/// away ends vsamr quietly (see [`stdout`]).
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::cli::stdout::line(format_args!($($arg)*))
    };
}

mod admin;
mod alternate;
mod browse;
mod commands;
mod fields;
mod idcams;
mod manpages;
mod migrate;
mod records;
mod repro;
mod stdout;
mod unit;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use vsam_client::{ConnectOptions, Connection, DEFAULT_SERVER, TlsOptions};

/// The token itself, for scripts that hold it in the environment rather
/// than in a file (`--token-file`, `VSAMR_AUTH_TOKEN_FILE`).
pub const AUTH_TOKEN_VARIABLE: &str = "VSAMR_AUTH_TOKEN";

/// The help heading of the options every command takes, so that a
/// command's help shows its own options apart from them.
const CONNECTION_HEADING: &str = "Connection (every command)";
/// See [`CONNECTION_HEADING`].
const OUTPUT_HEADING: &str = "Keys and records (every command)";

/// Command-line client of the VSAM redirector server (vsamrd, port 2387).
///
/// Keys and records are text in the dataset's code page (write a byte as
/// \xHH, a backslash as \\), or hex with --hex.
#[derive(Parser)]
#[command(name = "vsamr", version)]
pub struct Args {
    /// Server address, or the addresses of several servers of a fleet
    /// separated by commas: the first that answers is used, and the next
    /// when its connection is lost.
    #[arg(long, global = true, env = "VSAMR_SERVER", default_value = DEFAULT_SERVER, help_heading = CONNECTION_HEADING)]
    server: String,
    /// Print one JSON object per record (key, record, rba/rrn).
    #[arg(long, global = true, help_heading = OUTPUT_HEADING)]
    json: bool,
    /// Keys and records are given and printed as hex.
    #[arg(long, global = true, help_heading = OUTPUT_HEADING)]
    hex: bool,
    #[command(flatten, next_help_heading = CONNECTION_HEADING)]
    security: Security,
    #[command(subcommand)]
    command: Command,
}

/// TLS and credentials, for the protocol port and `vsamr admin` alike.
#[derive(clap::Args)]
struct Security {
    /// Connect with TLS (implied by the other --tls options).
    #[arg(long, global = true, env = "VSAMR_TLS")]
    tls: bool,
    /// PEM CA certificates that sign the server's certificate (default:
    /// the system's trusted roots).
    #[arg(long, global = true, env = "VSAMR_TLS_CA", value_name = "FILE")]
    tls_ca: Option<PathBuf>,
    /// PEM certificate chain of this client (with --tls-key), for servers
    /// that name clients by certificate.
    #[arg(
        long,
        global = true,
        env = "VSAMR_TLS_CERT",
        value_name = "FILE",
        requires = "tls_key"
    )]
    tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(
        long,
        global = true,
        env = "VSAMR_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    tls_key: Option<PathBuf>,
    /// The name the server's certificate carries (default: the host of
    /// --server).
    #[arg(
        long,
        global = true,
        env = "VSAMR_TLS_SERVER_NAME",
        value_name = "NAME"
    )]
    tls_server_name: Option<String>,
    /// File holding this client's token (the server's `[[clients]]` entry
    /// holds its SHA-256); VSAMR_AUTH_TOKEN gives the token itself. (Not
    /// the admin token of `vsamr admin --token-file`.)
    #[arg(
        long,
        global = true,
        env = "VSAMR_AUTH_TOKEN_FILE",
        value_name = "FILE"
    )]
    auth_token_file: Option<PathBuf>,
}

impl Security {
    fn options(&self) -> Result<ConnectOptions> {
        let tls = (self.tls
            || self.tls_ca.is_some()
            || self.tls_cert.is_some()
            || self.tls_server_name.is_some())
        .then(|| TlsOptions {
            ca_file: self.tls_ca.clone(),
            certificate: self.tls_cert.clone().zip(self.tls_key.clone()),
            server_name: self.tls_server_name.clone(),
        });
        let token = match &self.auth_token_file {
            Some(path) => Some(
                std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read the token file {}", path.display()))?
                    .trim()
                    .to_string(),
            ),
            None => std::env::var(AUTH_TOKEN_VARIABLE)
                .ok()
                .filter(|t| !t.is_empty()),
        };
        Ok(ConnectOptions {
            tls,
            token,
            ..Default::default()
        })
    }
}

/// Output options shared by commands that print records.
#[derive(Clone, Copy)]
pub struct Output {
    pub json: bool,
    pub hex: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Checks that the server answers and prints its name and round trip.
    Ping,
    /// Defines a dataset (IDCAMS DEFINE CLUSTER).
    Define(commands::DefineArgs),
    /// Defines an alternate index over a KSDS or ESDS (IDCAMS DEFINE AIX).
    DefineAix(alternate::DefineAixArgs),
    /// Defines a path: a name that opens the base by an alternate key.
    DefinePath {
        name: String,
        /// The alternate index (PATHENTRY).
        #[arg(long)]
        aix: String,
    },
    /// Builds an alternate index from its base's records (IDCAMS BLDINDEX).
    Bldindex { aix: String },
    /// Deletes a dataset and its records (with its alternate indexes and
    /// paths).
    Delete { name: String },
    /// Lists datasets (`*` matches within a qualifier, `**` across).
    List { pattern: Option<String> },
    /// Shows a dataset's catalog entry.
    Info { name: String },
    /// Inserts a record; prints the RBA (ESDS) or RRN (RRDS) it got.
    Put(commands::PutArgs),
    /// Reads one record by key, RBA or RRN.
    Get(commands::GetArgs),
    /// Replaces a record: GET UPD by the record's key (or --rba/--rrn), then PUT.
    Update(commands::UpdateArgs),
    /// Erases a record by key (or --rrn).
    Erase(commands::EraseArgs),
    /// Lists records in key order.
    Browse(browse::BrowseArgs),
    /// Runs several changes (a script of put, update and erase lines) as
    /// one unit of work: committed together, or rolled back together at
    /// the first that fails.
    Unit(unit::UnitArgs),
    /// Loads records from a file (REPRO in: --replace, --reuse, a key
    /// range, --skip, --count, --error-limit).
    Load(repro::LoadArgs),
    /// Writes records to a file (REPRO out: a key range, --skip, --count).
    Unload(repro::UnloadArgs),
    /// Runs an IDCAMS deck as written (DEFINE, REPRO, PRINT, LISTCAT,
    /// DELETE, ALTER, VERIFY, BLDINDEX; IF/SET/DO): SYSIN records, or a
    /// job's JCL. Prints IDCAMS's listing; the exit status is MAXCC.
    Idcams(idcams::IdcamsArgs),
    /// Administers a running vsamrd through its admin interface (port 2388).
    Admin(admin::AdminArgs),
    /// Prints the shell completion script of vsamr (e.g.
    /// `vsamr completions bash > /etc/bash_completion.d/vsamr`).
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Writes the manual pages of vsamr (vsamr.1, vsamr-idcams.1...) into a
    /// directory.
    Manpages {
        /// The directory (made if missing), e.g. /usr/local/share/man/man1.
        dir: PathBuf,
    },
}

/// Runs the command; returns the exit status (IDCAMS's MAXCC for a deck).
/// `client` is what the connection tells the server it is.
pub async fn run(args: Args, client: String) -> Result<u8> {
    let output = Output {
        json: args.json,
        hex: args.hex,
    };
    match &args.command {
        Command::Completions { shell } => {
            use clap::CommandFactory;
            let mut out = stdout::Records::new();
            clap_complete::generate(*shell, &mut Args::command(), "vsamr", &mut out);
            std::io::Write::flush(&mut out)?;
            return Ok(0);
        }
        Command::Manpages { dir } => {
            use clap::CommandFactory;
            for page in manpages::write(Args::command(), "1", dir)? {
                outln!("{}", page.display());
            }
            return Ok(0);
        }
        _ => {}
    }
    let mut options = args.security.options()?;
    options.client = Some(client);
    if let Command::Admin(admin) = args.command {
        return admin::run(admin, options.tls, args.json).await.map(|()| 0);
    }
    let conn = Connection::connect_with(&args.server, &options).await?;
    if let Command::Idcams(deck) = args.command {
        return idcams::run(&conn, deck).await;
    }
    let done = match args.command {
        Command::Ping => commands::ping(&conn).await,
        Command::Define(define) => commands::define(&conn, define, output).await,
        Command::DefineAix(define) => alternate::define_aix(&conn, define, output).await,
        Command::DefinePath { name, aix } => {
            alternate::define_path(&conn, &name, &aix, output).await
        }
        Command::Bldindex { aix } => alternate::bldindex(&conn, &aix).await,
        Command::Delete { name } => commands::delete(&conn, &name).await,
        Command::List { pattern } => {
            commands::list(&conn, pattern.as_deref().unwrap_or("**"), output).await
        }
        Command::Info { name } => commands::info(&conn, &name, output).await,
        Command::Put(put) => commands::put(&conn, &put.name, &put.record, put.rrn, output).await,
        Command::Get(get) => commands::get(&conn, get, output).await,
        Command::Update(update) => {
            commands::update(
                &conn,
                &update.name,
                &update.record,
                update.rba.or(update.rrn),
                output,
            )
            .await
        }
        Command::Erase(erase) => {
            commands::erase(&conn, &erase.name, erase.key.as_deref(), erase.rrn, output).await
        }
        Command::Browse(browse) => browse::run(&conn, browse, output).await,
        Command::Unit(unit) => unit::run(&conn, unit, output).await,
        Command::Load(load) => repro::load(&conn, load).await,
        Command::Unload(unload) => repro::unload(&conn, unload, output).await,
        Command::Admin(_)
        | Command::Idcams(_)
        | Command::Completions { .. }
        | Command::Manpages { .. } => unreachable!("handled above"),
    };
    done.map(|()| 0)
}
