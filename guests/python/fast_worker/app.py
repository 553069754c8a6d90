"""The echo worker without its 100 ms sleep, for benchmarks: answers the sender at once."""

import wasmhost
from wasmhost import Pid, process


def main(sender, data):
    process.send(
        Pid.parse(sender),
        "echo_response",
        {"data": data.upper(), "worker": process.pid()},
    )
    return 0


WitWorld = wasmhost.entry(main)
