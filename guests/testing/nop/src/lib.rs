//! Returns an empty payload at once: the floor of what a process costs.

wit_bindgen::generate!({
    path: "../../../wit",
    world: "wasmhost:abi/guest",
    generate_all,
});

struct Nop;

impl Guest for Nop {
    fn main(_args: Vec<Vec<u8>>) -> Result<Vec<u8>, String> {
        Ok(Vec::new())
    }
}

export!(Nop);
