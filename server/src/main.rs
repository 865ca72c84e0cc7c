//! `loghound`: the server (`serve`) and its command-line client.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use loghound_server::config::{ServerConfig, TlsConfig};
use loghound_server::tokens::Scope;

/// jemalloc: less CPU and less resident memory than glibc's malloc under
/// indexing (BENCHMARKS.md, "Server ingest").
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
#[command(name = "loghound", version, about = "Loghound: log search and alerts")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve {
        /// Address to listen on (default 127.0.0.1:7700).
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// Data directory (default ./loghound-data).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// server.toml; flags override it.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Serve HTTPS with this PEM certificate chain (with --tls-key).
        #[arg(long, value_name = "FILE")]
        tls_cert: Option<PathBuf>,
        /// The PEM private key of --tls-cert.
        #[arg(long, value_name = "FILE")]
        tls_key: Option<PathBuf>,
    },
    /// Where a data directory's index bytes go: per day, per part of
    /// the index (terms, postings, positions, fast columns, stored lines)
    /// and per field. Reads the directory; a running server may keep
    /// writing to it.
    DiskUsage {
        /// Data directory (default ./loghound-data).
        #[arg(long, default_value = "loghound-data")]
        data_dir: PathBuf,
    },
    /// Manage API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Search a running server; prints matching lines, newest first.
    /// `search save|list|rm` manage saved searches (to search for one of
    /// those words, write the options first, then `-- list`).
    #[command(args_conflicts_with_subcommands = true)]
    Search {
        #[command(subcommand)]
        saved: Option<SavedCommand>,
        /// The query (empty matches everything).
        query: Option<String>,
        #[command(flatten)]
        server: ServerArgs,
        #[command(flatten)]
        range: RangeArgs,
        /// Most lines to print.
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Print each hit as the API's JSON object, one per line.
        #[arg(long, conflicts_with = "count")]
        json: bool,
        /// Print only the number of matching lines.
        #[arg(long)]
        count: bool,
    },
    /// Count matching lines per time bucket; prints `START COUNT` lines.
    Histogram {
        #[command(flatten)]
        client: ClientArgs,
        #[command(flatten)]
        range: RangeArgs,
        /// Most buckets, 1 to 1000 (default 60).
        #[arg(long)]
        buckets: Option<usize>,
    },
    /// Compute a table from a query's pipes, like
    /// `'status:>=500 | stats count(), p99(duration_ms) by (path)'`; prints
    /// it aligned (or, with `--json`, the API's answer).
    Stats {
        #[command(flatten)]
        client: ClientArgs,
        #[command(flatten)]
        range: RangeArgs,
        /// Print the API's JSON answer instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Follow new matching lines as they arrive (like `tail -f`) until Ctrl-C.
    Tail {
        #[command(flatten)]
        client: ClientArgs,
        /// Print each line as the API's JSON, one object per line.
        #[arg(long)]
        json: bool,
    },
}

/// The query of a client command and how to reach the server.
#[derive(Args)]
struct ClientArgs {
    /// The query (empty matches everything).
    query: String,
    #[command(flatten)]
    server: ServerArgs,
}

/// How to reach the server.
#[derive(Args)]
struct ServerArgs {
    /// Server URL.
    #[arg(long, env = "LOGHOUND_SERVER", default_value = "http://127.0.0.1:7700")]
    server: String,
    /// A token with the `read` scope (`admin` to save or remove).
    #[arg(long, env = "LOGHOUND_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// PEM file of a private CA to trust for an https:// server, instead
    /// of the built-in public roots.
    #[arg(long, env = "LOGHOUND_CA", value_name = "FILE")]
    ca: Option<PathBuf>,
}

impl ServerArgs {
    fn into_server(self) -> anyhow::Result<loghound_server::cli::saved::Server> {
        match self.token {
            Some(token) => Ok(loghound_server::cli::saved::Server {
                url: self.server,
                token,
                ca_file: self.ca,
            }),
            None => anyhow::bail!("a token is needed: --token or LOGHOUND_TOKEN"),
        }
    }
}

#[derive(Subcommand)]
enum SavedCommand {
    /// Save a query under a name (needs an `admin` token).
    Save {
        /// Unique name.
        name: String,
        /// The query.
        query: String,
        /// Default time range for the web UI, such as `1h`.
        #[arg(long)]
        range: Option<String>,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// List saved searches.
    List {
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Remove a saved search by name or id (needs an `admin` token).
    Rm {
        /// Name or id.
        name: String,
        #[command(flatten)]
        server: ServerArgs,
    },
}

/// A time range; open ends take all of time (the histogram: the span of
/// the matches).
#[derive(Args)]
struct RangeArgs {
    /// Start of the range: `-1h`, `now`, or RFC 3339.
    #[arg(long, allow_hyphen_values = true)]
    from: Option<String>,
    /// End of the range.
    #[arg(long, allow_hyphen_values = true)]
    to: Option<String>,
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a token and print it; only its hash is stored.
    Create {
        /// The server's data directory.
        #[arg(long)]
        data_dir: PathBuf,
        /// ingest, read or admin; repeat for several.
        #[arg(long = "scope", required = true)]
        scopes: Vec<Scope>,
    },
    /// List tokens: id, scopes, creation time, revocation.
    List {
        /// The server's data directory.
        #[arg(long)]
        data_dir: PathBuf,
    },
    /// Revoke a token by id; a running server refuses it within 10 s.
    Revoke {
        /// The server's data directory.
        #[arg(long)]
        data_dir: PathBuf,
        /// The token's id, from `loghound token list`.
        id: i64,
    },
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,tantivy=warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve {
            listen,
            data_dir,
            config,
            tls_cert,
            tls_key,
        } => {
            init_logging();
            let mut settings = match config {
                Some(path) => ServerConfig::load(&path)?,
                None => ServerConfig::default(),
            };
            if let Some(listen) = listen {
                settings.listen = listen;
            }
            if let Some(data_dir) = data_dir {
                settings.data_dir = data_dir;
            }
            settings.tls = tls_settings(settings.tls, tls_cert, tls_key)?;
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            runtime.block_on(loghound_server::serve::run(settings))
        }
        Command::DiskUsage { data_dir } => {
            let root = data_dir.join("indexes");
            if !root.is_dir() {
                anyhow::bail!("{} has no index directory", data_dir.display());
            }
            let days = loghound_server::index::usage::usage(&root)?;
            print!("{}", loghound_server::index::usage::report(&days));
            Ok(())
        }
        Command::Token {
            command: TokenCommand::Create { data_dir, scopes },
        } => {
            std::fs::create_dir_all(&data_dir)?;
            let token = loghound_server::tokens::create(&data_dir, &scopes)?;
            println!("{token}");
            let id = loghound_server::tokens::last_id(&data_dir)?;
            eprintln!("created token {id}; only its hash is stored, so keep it now");
            Ok(())
        }
        Command::Token {
            command: TokenCommand::List { data_dir },
        } => {
            println!("{:>4}  {:<20}  {:<20}  STATUS", "ID", "SCOPES", "CREATED");
            for token in loghound_server::tokens::list(&data_dir)? {
                let status = match token.revoked_at {
                    Some(at) => format!("revoked {}", loghound_server::timeparse::rfc3339_secs(at)),
                    None => "active".to_string(),
                };
                println!(
                    "{:>4}  {:<20}  {:<20}  {status}",
                    token.id,
                    token.scopes,
                    loghound_server::timeparse::rfc3339_secs(token.created_at)
                );
            }
            Ok(())
        }
        Command::Token {
            command: TokenCommand::Revoke { data_dir, id },
        } => {
            loghound_server::tokens::revoke(&data_dir, id)?;
            eprintln!("revoked token {id}");
            Ok(())
        }
        Command::Search {
            saved: Some(saved), ..
        } => match saved {
            SavedCommand::Save {
                name,
                query,
                range,
                server,
            } => loghound_server::cli::saved::save(
                &server.into_server()?,
                &name,
                &query,
                range.as_deref(),
            ),
            SavedCommand::List { server } => {
                loghound_server::cli::saved::list(&server.into_server()?)
            }
            SavedCommand::Rm { name, server } => {
                loghound_server::cli::saved::remove(&server.into_server()?, &name)
            }
        },
        Command::Search {
            saved: None,
            query,
            server,
            range,
            limit,
            json,
            count,
        } => {
            let Some(query) = query else {
                anyhow::bail!("a query is needed (`''` matches everything)");
            };
            let server = server.into_server()?;
            loghound_server::cli::search::run(&loghound_server::cli::search::SearchArgs {
                server: server.url,
                token: server.token,
                query,
                from: range.from,
                to: range.to,
                limit,
                json,
                count_only: count,
                ca_file: server.ca_file,
            })
        }
        Command::Histogram {
            client,
            range,
            buckets,
        } => {
            let server = client.server.into_server()?;
            loghound_server::cli::histogram::run(&loghound_server::cli::histogram::HistogramArgs {
                server: server.url,
                token: server.token,
                query: client.query,
                from: range.from,
                to: range.to,
                buckets,
                ca_file: server.ca_file,
            })
        }
        Command::Stats {
            client,
            range,
            json,
        } => {
            let server = client.server.into_server()?;
            loghound_server::cli::stats::run(&loghound_server::cli::stats::StatsArgs {
                server: server.url,
                token: server.token,
                query: client.query,
                from: range.from,
                to: range.to,
                json,
                ca_file: server.ca_file,
            })
        }
        Command::Tail { client, json } => {
            let server = client.server.into_server()?;
            loghound_server::cli::tail::run(&loghound_server::cli::tail::TailArgs {
                server: server.url,
                token: server.token,
                query: client.query,
                json,
                ca_file: server.ca_file,
            })
        }
    }
}

/// `[tls]` with the `--tls-cert`/`--tls-key` flags laid over it; a flag
/// alone is enough when the file has the other half.
fn tls_settings(
    file: Option<TlsConfig>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
) -> anyhow::Result<Option<TlsConfig>> {
    if cert.is_none() && key.is_none() {
        return Ok(file);
    }
    let handshake_timeout_ms = file.as_ref().map_or(
        loghound_server::config::default_handshake_timeout_ms(),
        |tls| tls.handshake_timeout_ms,
    );
    let (file_cert, file_key) = file.map(|tls| (tls.cert, tls.key)).unzip();
    match (cert.or(file_cert), key.or(file_key)) {
        (Some(cert), Some(key)) => Ok(Some(TlsConfig {
            cert,
            key,
            handshake_timeout_ms,
        })),
        (Some(_), None) => anyhow::bail!("--tls-cert needs --tls-key (or `key` in [tls])"),
        (None, _) => anyhow::bail!("--tls-key needs --tls-cert (or `cert` in [tls])"),
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("loghound: {error:#}");
            ExitCode::FAILURE
        }
    }
}
