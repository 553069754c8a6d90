"""The Python library, exercised: each mode runs one check and returns what it saw, for
tests/it/languages.rs to assert on."""

import wasmhost
from wasmhost import Cancel, Exit, Pid, SendError, Upgrade, logger, process, select, time


def pid(text):
    """A pid's text read and written back (None if it is not a pid), and whether it equals
    itself read again."""
    try:
        read = Pid.parse(text)
    except ValueError:
        return None
    return [str(read), read == Pid.parse(str(read))]


def send_by_name(_):
    process.register("py-checks")
    process.send("py-checks", "greeting", {"n": 1, "pid": process.pid()})
    message = process.mailbox().recv(timeout="10s")
    return [message.topic, message.payload, message.from_ == process.pid()]


def unknown_name(_):
    try:
        process.send("nobody", "greeting", "hi")
    except SendError as err:
        return [err.kind, str(err)]
    return "sent"


def select_timeout(_):
    mailbox = process.mailbox()
    timed_out = select(mailbox, timeout="20ms")
    timer = time.after("10ms")
    source, fired = select(mailbox, timer)
    return [timed_out, source is timer, fired]


def monitor(entry):
    events = process.events()
    seen = []
    for args in (("return", {"answer": 42}), ("fail", "on purpose")):
        child = process.spawn_monitored(entry, "app:processes", *args)
        event = events.recv(timeout="10s")
        assert isinstance(event, Exit), event
        seen.append([event.from_ == child, event.reason.kind, event.reason.value,
                     event.reason.message, str(event.reason)])
    return seen


def log(_):
    logger.info("checked", count=3, name="py", items=[1, 2], pid=process.pid())
    return 0


def socket(_):
    # What a Python author would write. (componentize-py's CPython has no `socket` module;
    # the WASI socket imports every component has are denied by the host whatever the
    # language: tests/it/hostile.rs pins that.)
    try:
        import socket as sockets
        sockets.create_connection(("127.0.0.1", 9), timeout=1)
    except Exception as exc:  # noqa: BLE001 - any refusal will do; success would not
        return f"{type(exc).__name__}: {exc}"
    return "connected"


def file(_):
    try:
        with open("/etc/passwd") as f:
            return "read " + f.read(10)
    except Exception as exc:  # noqa: BLE001
        return f"{type(exc).__name__}: {exc}"


def ungranted(_):
    process.send(process.pid(), "note", "before")
    time.sleep("1ms")
    return "slept"


def wait(_):
    """Blocks until cancelled (a live, idle process)."""
    events = process.events()
    while True:
        event = events.recv()
        if isinstance(event, Cancel):
            return event.reason


def hibernate(count):
    """Sends itself `count` numbers and reads one (the library takes the run at once), then
    hibernates: the unread ones are kept and wake it at once. Reads the rest there and
    hibernates again, woken by its timer this time; returns what it read, in order."""
    state = process.resumed()
    mailbox = process.mailbox()
    if state is None:
        me = process.pid()
        for i in range(count):
            process.send(me, "n", i)
        process.hibernate({"step": 1, "seen": [mailbox.recv().payload]}, wake_after="10s")
    if state["step"] == 1:
        seen = state["seen"] + [mailbox.recv(timeout="10s").payload for _ in range(count - 1)]
        process.hibernate({"step": 2, "seen": seen}, wake_after="1ms")
    return [count, state["seen"], mailbox.try_recv() is None]


def upgrade(answer):
    """Sends itself a number, waits for the upgrade and hands `answer` over; the new instance
    returns [answer, the number], which waited in the mailbox meanwhile."""
    state = process.resumed()
    if state is None:
        process.send(process.pid(), "n", 7)
        event = process.events().recv(timeout="10s")
        if not isinstance(event, Upgrade):
            raise ValueError(f"not an upgrade: {event!r}")
        process.hand_over(answer)
    return [state, process.mailbox().recv(timeout="10s").payload]


def return_(value):
    return value


def fail(message):
    raise ValueError(message)


def fifo(count):
    """Sends itself `count` numbers, then takes them back every way there is: a blocking
    `recv` (which takes a run at once), `try_recv`, `select` and `recv` with a timeout."""
    me = process.pid()
    for i in range(count):
        process.send(me, "n", i)
    mailbox = process.mailbox()
    seen = [mailbox.recv().payload]
    while len(seen) < count:
        way = len(seen) % 3
        if way == 0:
            got = mailbox.try_recv()
        elif way == 1:
            got = select(mailbox, timeout="10s")[1]
        else:
            got = mailbox.recv(timeout="10s")
        seen.append(got.payload)
    return [seen, mailbox.try_recv() is None]


MODES = {
    "send-by-name": send_by_name, "unknown-name": unknown_name,
    "select-timeout": select_timeout, "pid": pid, "monitor": monitor, "log": log, "socket": socket,
    "file": file, "ungranted": ungranted, "fifo": fifo, "return": return_, "fail": fail, "wait": wait,
    "hibernate": hibernate, "upgrade": upgrade,
}


def main(mode, arg=None):
    return MODES[mode](arg)


WitWorld = wasmhost.entry(main)
