//! The entry point: spawn arguments in, exit value out.

use std::fmt::Display;
use std::future::Future;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::payload::{self, DecodeError};

/// Decodes the spawn arguments: `()`, or a tuple with one type per argument.
pub trait FromArgs: Sized {
    fn from_args(args: &[Vec<u8>]) -> Result<Self, DecodeError>;
}

/// Encodes spawn arguments: `()`, or a tuple of serde values.
pub trait IntoArgs {
    fn into_args(self) -> Vec<Vec<u8>>;
}

/// What an entry point may return: a number or `()` (a normal exit), or a `Result`
/// (`Err` is an abnormal exit with the error's message).
pub trait IntoExit {
    fn into_exit(self) -> Result<Vec<u8>, String>;
}

impl FromArgs for () {
    fn from_args(_: &[Vec<u8>]) -> Result<Self, DecodeError> {
        Ok(())
    }
}

impl FromArgs for Vec<Vec<u8>> {
    fn from_args(args: &[Vec<u8>]) -> Result<Self, DecodeError> {
        Ok(args.to_vec())
    }
}

impl IntoArgs for () {
    fn into_args(self) -> Vec<Vec<u8>> {
        Vec::new()
    }
}

macro_rules! tuple_args {
    ($count:literal: $($t:ident $i:tt),+) => {
        impl<$($t: DeserializeOwned),+> FromArgs for ($($t,)+) {
            fn from_args(args: &[Vec<u8>]) -> Result<Self, DecodeError> {
                if args.len() != $count {
                    return Err(DecodeError(format!(
                        "expected {} arguments, got {}", $count, args.len()
                    )));
                }
                Ok(($(payload::decode::<$t>(&args[$i])
                    .map_err(|e| DecodeError(format!("argument {}: {}", $i + 1, e.0)))?,)+))
            }
        }

        impl<$($t: Serialize),+> IntoArgs for ($($t,)+) {
            fn into_args(self) -> Vec<Vec<u8>> {
                vec![$(payload::encode(&self.$i)),+]
            }
        }
    };
}

tuple_args!(1: A 0);
tuple_args!(2: A 0, B 1);
tuple_args!(3: A 0, B 1, C 2);
tuple_args!(4: A 0, B 1, C 2, D 3);
tuple_args!(5: A 0, B 1, C 2, D 3, E 4);

macro_rules! exit_value {
    ($($t:ty),+) => {$(
        impl IntoExit for $t {
            fn into_exit(self) -> Result<Vec<u8>, String> {
                Ok(payload::encode(&self))
            }
        }
    )+};
}

exit_value!((), i8, i16, i32, i64, u8, u16, u32, u64, String, &str);

impl<T: Serialize, E: Display> IntoExit for Result<T, E> {
    fn into_exit(self) -> Result<Vec<u8>, String> {
        self.map(|value| payload::encode(&value))
            .map_err(|err| err.to_string())
    }
}

/// Runs the entry point to completion on the process's executor.
pub fn run_main<A, F, Fut>(args: Vec<Vec<u8>>, main: F) -> Result<Vec<u8>, String>
where
    A: FromArgs,
    F: FnOnce(A) -> Fut,
    Fut: Future,
    Fut::Output: IntoExit,
{
    let (args, resumed) = crate::hibernation::entry_args(args)
        .map_err(|err| format!("waking from hibernation: {err}"))?;
    let typed = A::from_args(&args).map_err(|err| format!("bad arguments: {err}"))?;
    crate::rt::keep(args, resumed);
    crate::rt::block_on(main(typed)).into_exit()
}
