"""The echo relay (relay.lua) in Python: registers as `relay`, spawns a monitored worker per
`echo` message (the Rust `app:worker` unless an argument names another: languages mix), logs
each worker's exit, and reports stats every 5 s. `!crash` makes it fail on purpose, as the
Rust relay does, to show its supervisor restarting it."""

import wasmhost
from wasmhost import Cancel, Exit, SpawnError, logger, process, select, time


def main(worker="app:worker"):
    mailbox = process.mailbox()
    events = process.events()
    process.register("relay")
    logger.info("relay started", pid=process.pid())

    stats = time.ticker("5s")
    messages = spawned = 0
    while True:
        source, value = select(events, mailbox, stats)
        if source is events:
            if isinstance(value, Cancel):
                return 0
            if isinstance(value, Exit):
                logger.info("worker exited", {"from": value.from_, "result": value.reason})
        elif source is stats:
            logger.info("stats", messages=messages, workers_spawned=spawned)
        elif value.topic == "echo" and isinstance(value.payload, dict):
            echo = value.payload
            if echo.get("data") == "!crash":
                logger.error("crashing on purpose", requested_by=echo.get("sender"))
                raise RuntimeError("crashed on purpose (!crash)")
            messages += 1
            try:
                process.spawn_monitored(worker, "app:processes", echo.get("sender"), echo.get("data"))
                spawned += 1
            except SpawnError as err:
                logger.error("spawn failed", error=str(err))


WitWorld = wasmhost.entry(main)
