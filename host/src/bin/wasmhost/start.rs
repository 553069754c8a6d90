//! Loading an app and building its node as the subcommands do: every problem printed, and a
//! spinner on the terminal while a component compiles.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Result, bail};
use wasmhost::app::values::show_size;
use wasmhost::app::{self, App, AppRoot};
use wasmhost::runtime::{CompileProgress, Node, NodeConfig, StartError};

/// Loads the registry, printing every problem found. `None` if there were any.
pub fn load(root: &AppRoot) -> Option<App> {
    match app::load(root) {
        Ok(app) => Some(app),
        Err(problems) => {
            eprintln!("{problems}");
            None
        }
    }
}

/// Builds the node: checks the configuration against the app, compiles and checks the
/// components, printing every problem found. `None` if there were any.
pub fn node(app: App, config: NodeConfig) -> Result<Option<Arc<Node>>> {
    let built = Node::builder(app)
        .config(config)
        .interfaces(wasmhost::abi::INTERFACES)
        .progress(Arc::new(CompileSpinner::default()))
        .build();
    match built {
        Ok(node) => Ok(Some(node)),
        Err(StartError::Invalid(problems)) => {
            eprintln!("{problems}");
            Ok(None)
        }
        Err(StartError::Config(err)) => bail!(
            "invalid node setting {err}\n  hint: settings come from [node] in wasmhost.toml and the command line (`wasmhost --help`)"
        ),
        Err(err) => Err(err.into()),
    }
}

/// Shows a long compile on the terminal: the component, its size and the time so far.
#[derive(Default)]
struct CompileSpinner {
    bar: Mutex<Option<indicatif::ProgressBar>>,
}

impl CompileProgress for CompileSpinner {
    fn compiling(&self, source: &Path, bytes: usize) {
        // Drawn only on a terminal; indicatif hides it otherwise.
        let bar = indicatif::ProgressBar::new_spinner().with_message(format!(
            "compiling {} ({}; later starts load it from the compile cache)",
            source.display(),
            show_size(bytes as u64)
        ));
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {msg} {elapsed}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        bar.enable_steady_tick(Duration::from_millis(120));
        if let Ok(mut slot) = self.bar.lock() {
            *slot = Some(bar);
        }
    }

    fn compiled(&self, source: &Path, took: Duration) {
        if let Some(bar) = self.bar.lock().ok().and_then(|mut slot| slot.take()) {
            bar.finish_and_clear();
        }
        tracing::debug!(source = %source.display(), "compiled in {took:.2?}");
    }
}
