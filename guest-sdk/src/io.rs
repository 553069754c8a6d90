//! The terminal (granted to the process on a `terminal.host`): print, write, readline,
//! and ANSI styles that switch themselves off when stdout is not a terminal or `NO_COLOR`
//! is set.

use std::sync::OnceLock;

use crate::bindings::wasmhost::abi::io as abi;

/// Prints `text` and a newline.
pub fn print(text: &str) {
    abi::print(text);
}

/// Prints `text` without a newline (for prompts).
pub fn write(text: &str) {
    abi::write(text);
}

/// Prints `text` and a newline to stderr.
pub fn eprint(text: &str) {
    abi::eprint(text);
}

/// Reads a line; `None` at end of input. Blocks the whole process.
pub fn readline() -> Option<String> {
    abi::readline()
}

/// Whether output is styled.
pub fn color() -> bool {
    static COLOR: OnceLock<bool> = OnceLock::new();
    *COLOR.get_or_init(abi::color)
}

fn paint(code: &str, text: &str) -> String {
    if color() {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

pub fn dim(text: &str) -> String {
    paint("2", text)
}

pub fn green(text: &str) -> String {
    paint("32", text)
}

pub fn yellow(text: &str) -> String {
    paint("33", text)
}

pub fn cyan(text: &str) -> String {
    paint("36", text)
}

pub fn bold(text: &str) -> String {
    paint("1", text)
}
