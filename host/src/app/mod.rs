//! The app: its root file, its registry (YAML → validated model) and the problems found
//! in them. Data flows one way: `load` → `App` → the runtime.

mod diagnostic;
mod load;
mod model;
mod modules;
mod root;
mod yaml;

pub use diagnostic::{Diagnostic, Diagnostics};
pub use load::load;
pub use model::*;
pub use modules::{ABI_PACKAGE, Grant, Module};
pub use root::{AppRoot, ROOT_FILE, init};
