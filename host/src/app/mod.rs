//! The app: its root file, its registry (YAML → validated model) and the problems found in
//! them, and the limits of a process (`limits`, defined once). Data flows one way: `discover` finds the files, `parse` reads each with the schema
//! of its kinds, `resolve` turns them into the model, and the model goes to the runtime.

mod diagnostic;
mod discover;
pub mod limits;
mod load;
mod model;
mod parse;
mod resolve;
mod root;
mod schema;
pub mod values;

pub use diagnostic::{Diagnostic, Diagnostics};
pub use discover::digest as registry_digest;
pub use limits::{LIMITS, LimitOverrides, Limits, Pool};
pub use load::{load, load_text};
pub use model::*;
pub use resolve::MAX_NAME_LEN;
pub use root::{AppRoot, GuestBuild, GuestLang, ROOT_FILE};
pub use schema::Kind;
