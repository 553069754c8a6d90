//! The global flags that size the node. They are `[node]` settings given on the command line:
//! read into the same `NodeSettings` the root file gives and applied after it, so there is
//! one override path.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;
use wasmhost::app::values::{parse_duration, parse_size};
use wasmhost::app::{App, AppRoot, ClusterSettings, NodeSettings, registry_digest};
use wasmhost::runtime::{ClusterConfig, NodeConfig};

/// The node's sizes; each overrides its setting in `[node]` of wasmhost.toml.
#[derive(Args)]
pub struct NodeFlags {
    /// Processes alive at once (the size of the instance pool) [default: 10000].
    #[arg(long, global = true, value_name = "N")]
    max_processes: Option<u32>,

    /// The largest memory a process may have, e.g. 64MiB [default: 64MiB].
    #[arg(long, global = true, value_name = "SIZE", value_parser = parse_size)]
    max_memory: Option<u64>,

    /// How long a guest runs before it yields to others, e.g. 5ms [default: 2ms].
    #[arg(long, global = true, value_name = "DURATION", value_parser = parse_duration)]
    epoch_tick: Option<Duration>,

    /// Threads for processes of hosts without `workers` of their own [default: one per core].
    #[arg(long, global = true, value_name = "N")]
    workers: Option<usize>,

    /// Keep compiled components in DIR, so later starts skip compiling [default:
    /// $XDG_CACHE_HOME/wasmhost, else ~/.cache/wasmhost].
    #[arg(
        long,
        global = true,
        value_name = "DIR",
        conflicts_with = "no_compile_cache"
    )]
    compile_cache: Option<PathBuf>,

    /// Compile every component on every start.
    #[arg(long, global = true)]
    no_compile_cache: bool,
}

impl NodeFlags {
    /// The defaults, then `[node]`, then these flags.
    pub fn config(&self, root: &AppRoot) -> NodeConfig {
        let flags = NodeSettings {
            max_processes: self.max_processes,
            max_memory: self.max_memory,
            epoch_tick: self.epoch_tick,
            workers: self.workers,
            ..NodeSettings::default()
        };
        let mut config = NodeConfig::default()
            .with_settings(&root.node)
            .with_settings(&flags);
        if let Some(dir) = &self.compile_cache {
            config.compile_cache = Some(dir.clone());
        }
        if self.no_compile_cache {
            config.compile_cache = None;
        }
        config
    }
}

/// How `run` joins a cluster; each overrides its setting in `[cluster]` of wasmhost.toml.
#[derive(Args)]
pub struct ClusterFlags {
    /// Join the cluster whose NATS server (2.11 or later, with JetStream) is at URL, e.g.
    /// nats://127.0.0.1:4222.
    #[arg(long = "cluster", value_name = "URL")]
    url: Option<String>,

    /// This node's name in the cluster: 1 to 63 of a-z, 0-9, `-` and `_`.
    #[arg(long, value_name = "NAME")]
    node: Option<String>,

    /// The services (and supervisors) this node of the cluster runs, comma-separated, or
    /// `none` [default: every one that starts itself].
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    services: Option<Vec<String>>,

    /// How often the node tells the others it is alive, e.g. 1s [default: 1s].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    heartbeat: Option<Duration>,

    /// How long a node may be silent before the others take it for down [default: 3s].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    down_after: Option<Duration>,
}

impl ClusterFlags {
    /// `[cluster]`, then these flags.
    fn settings(&self, root: &AppRoot) -> ClusterSettings {
        root.cluster.merged(&ClusterSettings {
            url: self.url.clone(),
            node: self.node.clone(),
            heartbeat: self.heartbeat,
            down_after: self.down_after,
            services: self.services.clone(),
            ..ClusterSettings::default()
        })
    }

    /// The cluster to join, if the settings name one.
    pub fn config(&self, root: &AppRoot) -> Result<Option<ClusterConfig>> {
        let settings = self.settings(root);
        if settings.url.is_none() && settings.node.is_none() {
            if settings.services.is_some() {
                bail!(
                    "--services places services on the nodes of a cluster: give --cluster URL and --node NAME too"
                );
            }
            return Ok(None);
        }
        let registry = registry_digest(&root.registry_dir()).with_context(|| {
            format!("reading the registry in {}", root.registry_dir().display())
        })?;
        Ok(ClusterConfig::from_settings(&settings, registry)?)
    }

    /// The top-level services and supervisors this node runs, resolved in the app (a bare
    /// name in the app's namespace); `None`: every one that starts itself.
    pub fn placement(&self, root: &AppRoot, app: &App) -> Result<Option<Vec<String>>> {
        let Some(listed) = self.settings(root).services else {
            return Ok(None);
        };
        let mut placed = Vec::new();
        for name in listed.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
            if name == "none" {
                continue;
            }
            let found = app.top.iter().find(|id| {
                *id == name || id.rsplit_once(':').is_some_and(|(_, bare)| bare == name)
            });
            match found {
                Some(id) => placed.push(id.clone()),
                None => bail!(
                    "services: {name} is not a service or supervisor of the app that starts at the top\n  hint: the app's are {}",
                    app.top.join(", ")
                ),
            }
        }
        Ok(Some(placed))
    }
}
