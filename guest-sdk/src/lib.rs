//! Write wasmhost processes in Rust.
//!
//! A process is an async function that receives its spawn arguments and returns its
//! result. Everything else mirrors the seed's API:
//!
//! ```no_run
//! use wasmhost_guest::prelude::*;
//!
//! entry!(worker);
//!
//! async fn worker((sender, data): (Pid, String)) -> i32 {
//!     time::sleep("100ms").await;
//!     let _ = process::send(&sender, "echo_response", &data.to_uppercase());
//!     0
//! }
//! # fn main() {}
//! ```
//!
//! Inside a process: [`process`] (pid, send, mailbox, events, spawn, monitor, link, names),
//! [`time`] (sleep, after, ticker), [`logger`], [`io`] (the terminal), [`channel`]
//! (in-process channels), [`spawn_task`] (a concurrent task sharing the process's memory) and
//! [`select!`] (wait for whichever of several sources is ready first).

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "wasmhost:abi/guest",
        pub_export_macro: true,
        export_macro_name: "__export_process",
        default_bindings_module: "wasmhost_guest::bindings",
        generate_all,
    });
}

pub mod channel;
mod entry;
mod hibernation;
pub mod io;
pub mod logger;
pub mod payload;
pub mod process;
mod rt;
pub mod time;

pub use entry::{FromArgs, IntoArgs, IntoExit};
pub use process::{Event, ExitReason, Message, Pid};
pub use rt::spawn_task;

/// Everything a guest usually needs.
pub mod prelude {
    pub use crate::process::{self, Event, ExitReason, Message, Pid};
    pub use crate::{channel, entry, fields, io, logger, select, spawn_task, time};
}

#[doc(hidden)]
pub mod __private {
    pub use crate::entry::run_main;
    pub use futures::FutureExt;
    pub use futures::select;
}

/// Declares the process's entry point: an `async fn` taking its arguments (a tuple of
/// deserializable values, or `()`) and returning an exit value (a number, `()`, or a
/// `Result` whose error becomes an abnormal exit).
#[macro_export]
macro_rules! entry {
    ($main:path) => {
        struct __WasmhostEntry;

        impl $crate::bindings::Guest for __WasmhostEntry {
            fn main(
                args: ::std::vec::Vec<::std::vec::Vec<u8>>,
            ) -> ::std::result::Result<::std::vec::Vec<u8>, ::std::string::String> {
                $crate::__private::run_main(args, $main)
            }
        }

        $crate::bindings::__export_process!(__WasmhostEntry with_types_in $crate::bindings);
    };
}

/// Waits for whichever branch is ready first and runs its block; the others are dropped
/// without consuming anything. Branches are tried in random order, so no source starves.
///
/// ```no_run
/// use wasmhost_guest::prelude::*;
///
/// async fn wait_for_reply() -> Option<String> {
///     let mailbox = process::mailbox();
///     let events = process::events();
///     select! {
///         msg = mailbox.recv() => { msg.payload().ok() }
///         event = events.recv() => {
///             if let Event::Exit { from, reason } = event {
///                 logger::warn("exited", fields! { from, reason });
///             }
///             None
///         }
///         _ = time::after("2s") => { None }
///     }
/// }
/// ```
#[macro_export]
macro_rules! select {
    ($($pat:pat = $future:expr => $body:block $(,)?)+) => {{
        use $crate::__private::FutureExt as _;
        $crate::__private::select! {
            $( $pat = ($future).fuse() => $body, )+
        }
    }};
}

/// Log fields: `fields! { messages: n, from }` (`from` alone means `from: from`), each
/// value any serde type.
///
/// ```no_run
/// use wasmhost_guest::prelude::*;
///
/// let from = process::pid();
/// logger::info("worker exited", fields! { from, messages: 3 });
/// ```
#[macro_export]
macro_rules! fields {
    ($($key:ident $(: $value:expr)?),* $(,)?) => {
        $crate::logger::Fields::from(::std::vec![
            $( (::std::stringify!($key), $crate::payload::encode(&$crate::__field_value!($key $(, $value)?))) ),*
        ])
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __field_value {
    ($key:ident) => {
        $key
    };
    ($key:ident, $value:expr) => {
        $value
    };
}
