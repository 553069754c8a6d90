//! The global flags that size the node. They are `[node]` settings given on the command line:
//! read into the same `NodeSettings` the root file gives and applied after it, so there is
//! one override path.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use wasmhost::app::values::{parse_duration, parse_size};
use wasmhost::app::{AppRoot, NodeSettings};
use wasmhost::runtime::NodeConfig;

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
