"""A wasmhost process: prints a greeting with its pid on the terminal, and ends."""

import wasmhost
from wasmhost import io, process


def main():
    io.print(f"Hello from Python! I am {process.pid()}.")
    return 0


WitWorld = wasmhost.entry(main)
