//! The `loghound-agent` binary: parses the command line and hands over to
//! the library (`loghound_agent::run`, `loghound_agent::status::print`);
//! errors end here, printed with their chain.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use loghound_agent::config::{self, ConfigFile, Overrides};
use loghound_agent::status;

/// Config file read when `--config` is not given, if it exists.
const DEFAULT_CONFIG: &str = "/etc/loghound/agent.toml";

/// Follows log files and the systemd journal and ships them to a Loghound
/// server.
#[derive(Debug, Parser)]
#[command(
    name = "loghound-agent",
    version,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Prints every checkpointed file: path, file id, acked offset, size,
    /// lag and last error; then the agent's last error and the spool's size.
    Status {
        /// State directory of the agent.
        #[arg(long, default_value = config::DEFAULT_STATE_DIR)]
        state_dir: PathBuf,
    },
}

#[derive(Debug, Args)]
struct RunArgs {
    /// Config file (TOML); flags override it. Default: /etc/loghound/agent.toml if present.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Server base URL; repeat for failover, tried in order.
    #[arg(long = "server", value_name = "URL")]
    servers: Vec<String>,
    /// Ingest token.
    #[arg(long, env = "LOGHOUND_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Directory for the agent id and checkpoints.
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Glob of files to follow (`**` allowed); repeatable.
    #[arg(long = "path", value_name = "GLOB")]
    paths: Vec<String>,
    /// Also ship the system journal (through journalctl), from its oldest
    /// entry on the first start.
    #[arg(long)]
    journald: bool,
    /// Glob of files never to follow; repeatable. `*.gz` is always excluded.
    #[arg(long = "exclude", value_name = "GLOB")]
    exclude: Vec<String>,
    /// Host name sent with every line (default: the machine's).
    #[arg(long)]
    host: Option<String>,
    /// Flush a batch at this many bytes of uncompressed NDJSON.
    #[arg(long, value_name = "N")]
    batch_max_bytes: Option<usize>,
    /// Flush a batch when its oldest line is this old.
    #[arg(long, value_name = "N")]
    batch_max_age_ms: Option<u64>,
    /// Batches sent at the same time.
    #[arg(long, value_name = "N")]
    max_in_flight: Option<usize>,
    /// Period of the safety-net rescan.
    #[arg(long, value_name = "N")]
    rescan_interval_ms: Option<u64>,
    /// Most bytes of the disk spool used while no server takes batches; 0: no spool.
    #[arg(long, value_name = "N")]
    spool_max_bytes: Option<u64>,
    /// Most descriptors of followed files held at once.
    #[arg(long, value_name = "N")]
    max_open_files: Option<usize>,
    /// Serve Prometheus /metrics on this address (e.g. 127.0.0.1:9464).
    #[arg(long, value_name = "ADDR")]
    metrics_listen: Option<String>,
    /// PEM file of the CA that signed the server's certificate; trusted
    /// instead of the built-in public roots.
    #[arg(long, value_name = "FILE")]
    tls_ca: Option<PathBuf>,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Status { state_dir }) => {
            status::print(&state_dir, &mut std::io::stdout().lock()).map_err(anyhow::Error::from)
        }
        None => run(cli.run),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("loghound-agent: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: RunArgs) -> anyhow::Result<()> {
    let config_path = args.config.clone().or_else(|| {
        let default = Path::new(DEFAULT_CONFIG);
        default.exists().then(|| default.to_path_buf())
    });
    let file = match &config_path {
        Some(path) => Some((path.as_path(), ConfigFile::load(path)?)),
        None => None,
    };
    let overrides = Overrides {
        servers: args.servers,
        token: args.token,
        state_dir: args.state_dir,
        host: args.host,
        paths: args.paths,
        journald: args.journald,
        exclude: args.exclude,
        batch_max_bytes: args.batch_max_bytes,
        batch_max_age_ms: args.batch_max_age_ms,
        max_in_flight: args.max_in_flight,
        rescan_interval_ms: args.rescan_interval_ms,
        spool_max_bytes: args.spool_max_bytes,
        max_open_files: args.max_open_files,
        metrics_listen: args.metrics_listen,
        tls_ca: args.tls_ca,
    };
    let settings = config::resolve(file, overrides)?;
    if let Some(path) = &config_path {
        tracing::info!(path = %path.display(), "loaded config");
    }
    loghound_agent::run(settings)?;
    Ok(())
}
