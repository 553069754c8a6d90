//! How a node is sized: its process pool, the largest memory a process may have, how often
//! running guests yield, its threads, and the limits a process gets when neither its entry
//! nor its host sets them. Read from `[node]` in `wasmhost.toml`, overridable by flags.

use std::path::PathBuf;
use std::time::Duration;

use crate::app::{LimitOverrides, Limits, NodeSettings, Pool, values::show_size};

use super::compile_cache;
use super::machine;

/// A node's sizes. `NodeConfig::default()` is what `wasmhost` uses unless told otherwise.
///
/// ```
/// use wasmhost::runtime::NodeConfig;
///
/// let config = NodeConfig { max_processes: 2, ..NodeConfig::default() };
/// config.validate().unwrap();
/// assert_eq!(config.default_limits().children, 2);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct NodeConfig {
    /// Processes alive at once: the size of the instance pool. A spawn beyond it is refused.
    pub max_processes: u32,
    /// What to do when the machine cannot map `max_processes` live processes (its
    /// `vm.max_map_count`, see `machine.rs`): `true` shrinks the pool to what fits and logs a
    /// warning; `false` refuses to start and says what to raise. `true` by default; setting
    /// `max_processes` in `[node]` or by flag makes it `false`, as a number asked for is kept.
    pub fit_to_machine: bool,
    /// Pool slots only the node itself may fill (services, `wasmhost run`), so a spawn storm
    /// inside the app cannot keep a failed service from restarting. `None`: 1 % of
    /// `max_processes`.
    pub reserved_processes: Option<u32>,
    /// The largest linear memory any process may have: the size of a pool slot. No limit in
    /// the registry may exceed it.
    pub max_memory: u64,
    /// Linear memory of all processes together; a process that would grow past it is ended
    /// with `limit: memory`. `None`: half of the machine's memory.
    pub memory_budget: Option<u64>,
    /// How long a guest runs before it yields to the others (epoch interruption), and the
    /// unit of CPU accounting.
    pub epoch_tick: Duration,
    /// Threads shared by the processes of hosts without `workers` of their own (`None`: one
    /// per core): the node's scheduler (`runtime/scheduler.rs`).
    pub workers: Option<usize>,
    /// Whether a pooled fiber stack (the native stack a process's wasm and host calls run
    /// on) is zeroed when its process ends. Wasm cannot address that stack, so this only
    /// guards against an engine bug reading a slot before writing it; it costs about 9 % of
    /// an echo's CPU (a `madvise` and the page faults after it, per process). Off by default,
    /// as in wasmtime.
    pub zero_stacks: bool,
    /// Limits for every process whose entry and host set none (`[node.limits]`).
    pub limits: LimitOverrides,
    /// The folder compiled components are kept in, so later starts skip compiling
    /// (`compile_cache.rs`). `None`: compile on every start. Default: the user's cache
    /// folder (`$XDG_CACHE_HOME/wasmhost`, else `~/.cache/wasmhost`).
    pub compile_cache: Option<PathBuf>,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            max_processes: 10_000,
            fit_to_machine: true,
            reserved_processes: None,
            max_memory: 64 << 20,
            memory_budget: None,
            // Short enough that, with eight spinning processes per core, an interactive
            // process's turn comes within tens of milliseconds (docs/engine.md).
            epoch_tick: Duration::from_millis(2),
            workers: None,
            zero_stacks: false,
            limits: LimitOverrides::default(),
            compile_cache: compile_cache::default_dir(),
        }
    }
}

/// A node setting that cannot be honoured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{setting}`: {message}")]
pub struct ConfigError {
    /// The setting as written in `[node]` (`max_memory`, `limits.children`, …).
    pub setting: &'static str,
    pub message: String,
}

/// A process's linear memory is allocated in 64 KiB pages.
const WASM_PAGE: u64 = 64 << 10;

/// The most processes a pool is sized for: past this, its reservation of address space
/// (pool slots and fiber stacks) outgrows what a 64-bit process can map.
pub const MAX_PROCESSES: u32 = 1 << 22;

impl NodeConfig {
    /// `self` with the settings of `[node]` applied.
    pub fn with_settings(mut self, settings: &NodeSettings) -> Self {
        if let Some(n) = settings.max_processes {
            self.max_processes = n;
            self.fit_to_machine = false;
        }
        if settings.reserved_processes.is_some() {
            self.reserved_processes = settings.reserved_processes;
        }
        if let Some(size) = settings.max_memory {
            self.max_memory = size;
        }
        if settings.memory_budget.is_some() {
            self.memory_budget = settings.memory_budget;
        }
        if let Some(tick) = settings.epoch_tick {
            self.epoch_tick = tick;
        }
        if settings.workers.is_some() {
            self.workers = settings.workers;
        }
        if let Some(zero) = settings.zero_stacks {
            self.zero_stacks = zero;
        }
        self.limits = settings.limits.or(&self.limits);
        self
    }

    /// Checks that the node can be built as configured.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let fail = |setting, message: String| Err(ConfigError { setting, message });
        if !(1..=MAX_PROCESSES).contains(&self.max_processes) {
            return fail(
                "max_processes",
                format!(
                    "{} is not between 1 and {MAX_PROCESSES}",
                    self.max_processes
                ),
            );
        }
        if !(WASM_PAGE..=4 << 30).contains(&self.max_memory) {
            return fail(
                "max_memory",
                format!(
                    "{} is not between 64 KiB (one page) and 4 GiB (a 32-bit memory)",
                    show_size(self.max_memory)
                ),
            );
        }
        if !(Duration::from_millis(1)..=Duration::from_secs(1)).contains(&self.epoch_tick) {
            return fail(
                "epoch_tick",
                format!("{:?} is not between 1ms and 1s", self.epoch_tick),
            );
        }
        if self.workers == Some(0) {
            return fail("workers", "must be at least 1".into());
        }
        if let Some(n) = self.reserved_processes.filter(|&n| n >= self.max_processes) {
            return fail(
                "reserved_processes",
                format!(
                    "{n} leaves no room for the app's own spawns (max_processes is {})",
                    self.max_processes
                ),
            );
        }
        if let Some(budget) = self.memory_budget.filter(|&b| b < self.max_memory) {
            return fail(
                "memory_budget",
                format!(
                    "{} is less than one process may have (`max_memory`, {})",
                    show_size(budget),
                    show_size(self.max_memory)
                ),
            );
        }
        if let Some(beyond) = self.limits.beyond(&self.pool()).into_iter().next() {
            return fail(beyond.field, beyond.message);
        }
        if let Some((field, least, _)) = self.limits.below_minimum().into_iter().next() {
            return fail(field, format!("must be at least {least}"));
        }
        Ok(())
    }

    /// `self` with a pool the machine can map: shrunk to fit if `fit_to_machine`, else an
    /// error that says what to raise. Checked before the engine maps its pool, where going
    /// past the machine's limit fails with a bare "cannot allocate memory", or later, at
    /// some spawn.
    pub fn fitted_to_machine(self) -> Result<Self, ConfigError> {
        match machine::mappings() {
            Some((allowed, in_use)) => self.fitted_to(allowed, in_use),
            None => Ok(self),
        }
    }

    /// `fitted_to_machine` for a machine that allows `allowed` mappings, `in_use` taken.
    fn fitted_to(mut self, allowed: u64, in_use: u64) -> Result<Self, ConfigError> {
        match machine::check_mappings(self.max_processes, allowed, in_use) {
            Ok(()) => Ok(self),
            Err(_) if self.fit_to_machine => {
                let fit = machine::processes_that_fit(allowed, in_use);
                let fit = u32::try_from(fit).unwrap_or(u32::MAX).max(1);
                tracing::warn!(
                    "the pool holds {fit} processes, not {}: this machine allows {allowed} memory \
                     mappings per process (vm.max_map_count); raise it to run more",
                    self.max_processes
                );
                self.max_processes = fit;
                Ok(self)
            }
            Err(err) => Err(err),
        }
    }

    /// Pool slots kept for the node's own spawns.
    pub fn reserved(&self) -> u32 {
        self.reserved_processes.unwrap_or(self.max_processes / 100)
    }

    /// The linear memory all processes together may have.
    pub fn memory_budget(&self) -> u64 {
        self.memory_budget
            .unwrap_or_else(|| machine::memory().map_or(16 << 30, |total| total / 2))
            .max(self.max_memory)
    }

    /// The limits of a process whose entry and host set none.
    pub fn default_limits(&self) -> Limits {
        Limits::defaults(&self.limits, &self.pool())
    }

    /// The pool's sizes, which some limits' defaults and bounds come from.
    pub fn pool(&self) -> Pool {
        Pool {
            max_memory: self.max_memory,
            max_processes: self.max_processes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_pool_shrinks_to_the_machine_and_a_number_asked_for_is_refused() {
        let fitted = NodeConfig::default()
            .fitted_to(65_530, 20_000)
            .expect("shrinks");
        assert_eq!(fitted.max_processes, 7_255);
        assert_eq!(fitted.default_limits().children, 7_255);
        let asked = NodeConfig::default().with_settings(&NodeSettings {
            max_processes: Some(10_000),
            ..NodeSettings::default()
        });
        let err = asked
            .fitted_to(65_530, 20_000)
            .expect_err("kept, so refused");
        assert_eq!(err.setting, "max_processes");
        let roomy = NodeConfig::default().fitted_to(1 << 20, 500).expect("fits");
        assert_eq!(roomy.max_processes, 10_000);
    }

    #[test]
    fn the_defaults_are_valid() {
        assert_eq!(NodeConfig::default().validate(), Ok(()));
    }

    #[test]
    fn a_limit_the_pool_cannot_give_is_an_error_not_a_silent_cut() {
        let mut config = NodeConfig::default();
        config.limits.memory = Some(128 << 20);
        let err = config.validate().expect_err("128 MiB > 64 MiB");
        assert_eq!(
            err.to_string(),
            "`limits.memory`: 128.0 MiB is more than the node's `max_memory` of 64.0 MiB: no pool slot is that large"
        );
        let mut config = NodeConfig::default();
        config.limits.children = Some(20_000);
        assert_eq!(
            config.validate().map_err(|e| e.setting),
            Err("limits.children")
        );
    }

    #[test]
    fn settings_override_the_defaults() {
        let settings = NodeSettings {
            max_processes: Some(50),
            epoch_tick: Some(Duration::from_millis(5)),
            ..NodeSettings::default()
        };
        let config = NodeConfig::default().with_settings(&settings);
        assert_eq!(config.max_processes, 50);
        assert_eq!(config.epoch_tick, Duration::from_millis(5));
        assert_eq!(config.max_memory, 64 << 20);
        assert_eq!(config.default_limits().children, 50);
    }
}
