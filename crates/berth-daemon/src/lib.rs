//! # berth-daemon: the Docker Engine API on a unix socket
//!
//! `berth daemon` listens on `/run/berth/berth.sock` (mode 0660) and turns each request into
//! one call on a [`berth_engine::Engine`]:
//!
//! ```text
//!  docker CLI / docker-py / berth CLI
//!        │  HTTP/1.1 over the unix socket, /v1.NN/ prefixes
//!        ▼
//!  prefix layer (strip /v1.NN, check 1.24–1.47, add Api-Version/Server/Ostype)
//!        ▼
//!  routes/*  ── parse query + JSON (berth-api types) ──► convert ──► Engine call
//!        ▲                                                              │
//!        └──── JSON / streamed frames / 101 hijack ◄── convert ◄────────┘
//!                     engine ErrorKind → status in error::status_for (ONE place)
//! ```
//!
//! Streams: `wait`, `logs`, `stats`, `events`, pull progress are bodies fed from channels,
//! so their headers go out at once. `attach` and `exec start` answer `101` and then pump raw
//! bytes both ways ([`routes::hijack`]). Uploads extracted under a container's lock are read
//! to their end first ([`spool`]), so a stalled client never holds `stop` or `rm`.

#![forbid(unsafe_code)]

pub mod args;
pub mod convert;
pub mod error;
pub mod host;
pub mod idle;
pub mod prefix;
pub mod query;
pub mod routes;
pub mod server;
pub mod spool;
pub mod state;

use std::sync::Arc;

use clap::Parser;

pub use args::DaemonArgs;
pub use state::AppState;

/// Opens the engine with the daemon's settings and builds the shared state.
pub async fn open_state(args: &DaemonArgs) -> Result<AppState, berth_engine::EngineError> {
    let mut config = berth_engine::EngineConfig {
        data_root: args.data_root.clone(),
        exec_root: args.exec_root.clone(),
        insecure_registries: args.insecure_registries.clone(),
        cgroup_parent: args.cgroup_parent.clone(),
        init_binary: args.init_path.clone(),
        // BERTH_NO_SHIM_ZYGOTE=1 exec's every shim (to compare, or to debug a shim).
        shim_zygote: std::env::var_os("BERTH_NO_SHIM_ZYGOTE").is_none(),
        ..Default::default()
    };
    if args.bridge == "none" {
        config.net = None;
    } else if let Some(net) = config.net.as_mut() {
        net.default_bridge = args.bridge.clone();
        net.nft_table = args.nft_table.clone();
        net.veth_prefix = args.veth_prefix.clone();
        net.user_bridge_prefix = args.user_bridge_prefix.clone();
        if let Some(cidr) = &args.fixed_cidr {
            let subnet = cidr.parse().map_err(|_| {
                berth_engine::EngineError::invalid(format!(
                    "invalid --fixed-cidr {cidr:?}: use an IPv4 CIDR like 10.88.0.0/16"
                ))
            })?;
            net.default_subnet = Some(subnet);
        }
    }
    let engine = berth_engine::Engine::open(config).await?;
    Ok(AppState {
        engine,
        inner: Arc::new(state::Fixed {
            host: host::HostFacts::read(),
            engine_id: host::engine_id(&args.data_root),
            data_root: args.data_root.clone(),
            insecure_registries: args.insecure_registries.clone(),
        }),
    })
}

/// Entry point of `berth daemon` (argv after the face name). Returns the process exit code.
pub fn main(args: Vec<String>) -> i32 {
    let argv = std::iter::once("berth daemon".to_string()).chain(args);
    let args = match DaemonArgs::try_parse_from(argv) {
        Ok(a) => a,
        Err(e) => {
            let code = if e.use_stderr() { 125 } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    let filter = tracing_subscriber_filter(&args.log_level);
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
    // An idle daemon should be small: two malloc arenas instead of one per busy thread, and
    // free heap pages handed back to the kernel when a burst of requests is over (`idle`).
    berth_sys::memory::limit_malloc_arenas(2);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(16)
        // Blocking threads of a burst exit 2 s after it (tokio's default: 10 s), before the
        // idle trim, so their stacks and malloc caches are gone when it runs.
        .thread_keep_alive(BLOCKING_KEEP_ALIVE)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("berth daemon: cannot start the async runtime: {e}");
            return 1;
        }
    };
    match rt.block_on(run(args)) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("berth daemon: {e:#}");
            1
        }
    }
}

fn tracing_subscriber_filter(level: &str) -> tracing_subscriber::EnvFilter {
    tracing_subscriber::EnvFilter::try_from_env("BERTH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level))
}

async fn run(args: DaemonArgs) -> anyhow::Result<()> {
    let socket = args.socket_path().map_err(anyhow::Error::msg)?;
    for d in [&args.data_root, &args.exec_root] {
        std::fs::create_dir_all(d)
            .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", d.display()))?;
    }
    // Before anything is created in it (pidfile, socket, shims' state).
    match berth_sys::mounts::ensure_tmpfs(&args.exec_root) {
        Ok(true) => {
            tracing::info!(exec_root = %args.exec_root.display(), "mounted a tmpfs at the exec root (it was on a disk filesystem)")
        }
        Ok(false) => {}
        Err(e) => {
            tracing::warn!(exec_root = %args.exec_root.display(), "exec root stays on its filesystem: cannot mount a tmpfs there: {e}")
        }
    }
    let _pidfile = server::Pidfile::create(&args.pidfile_path())?;
    tokio::spawn(idle::trim_when_idle(
        &idle::REQUESTS,
        idle::QUIET,
        idle::PERIOD,
        trim_heap,
    ));
    let state = open_state(&args)
        .await
        .map_err(|e| anyhow::anyhow!("cannot open the engine: {e}"))?;
    let listener = server::bind(&socket)?;
    tracing::info!(socket = %socket.display(), data_root = %args.data_root.display(), "berth daemon listening");
    let r = server::serve(listener, state).await;
    let _ = std::fs::remove_file(&socket);
    r.map_err(|e| anyhow::anyhow!("serving {}: {e}", socket.display()))
}

/// How long an idle blocking-pool thread lives (shorter than [`idle::QUIET`]).
const BLOCKING_KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(2);

/// Returns free heap pages to the kernel (`malloc_trim`: well under a millisecond for the
/// daemon's few MB of heap, so it runs on the worker rather than waking a blocking thread).
async fn trim_heap() {
    let t0 = std::time::Instant::now();
    let released = berth_sys::memory::trim_heap();
    tracing::debug!(?released, elapsed = ?t0.elapsed(), "idle: heap trimmed");
}
