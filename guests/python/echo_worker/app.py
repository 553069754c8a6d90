"""The echo worker (worker.lua) in Python: spawned once per message, answers the sender
directly with the data upper-cased and its own pid."""

import wasmhost
from wasmhost import Pid, process, time


def main(sender, data):
    time.sleep("100ms")
    process.send(
        Pid.parse(sender),
        "echo_response",
        {"data": data.upper(), "worker": process.pid()},
    )
    return 0


WitWorld = wasmhost.entry(main)
