"""wasmhost for Python: a process reads like the seed's Lua and like the Rust SDK.

    import wasmhost
    from wasmhost import process, time

    def main(sender, data):
        time.sleep("100ms")
        process.send(wasmhost.Pid.parse(sender), "echo_response",
                     {"data": data.upper(), "worker": process.pid()})
        return 0

    WitWorld = wasmhost.entry(main)

Payloads are CBOR (RFC 8949), decoded to Python values (dicts, lists, str, int, ...) with
cbor2. Inside a payload a pid is its text, `{app:processes|0x00004}` (`Pid.parse` reads it
back), and an exit reason is the returned value or a one-entry map such as
`{"error": "..."}`, as the WIT (`wit/wasmhost.wit`) documents. Everything here blocks only
where it says so; `select` waits on any mix of mailbox, events, timers and tickers.

A call into a module the registry entry does not grant ends the process with a trap naming
the module (the component imports every interface of the world; the host denies the ones
not granted).
"""

import collections
import re

import cbor2
from componentize_py_types import Err

from wit_world.imports import io as _io
from wit_world.imports import logger as _logger
from wit_world.imports import poll as _poll
from wit_world.imports import process as _process
from wit_world.imports import time as _time
from wit_world.imports import types as _types

__all__ = [
    "Pid", "ExitReason", "Message", "Exit", "LinkDown", "Cancel", "Upgrade", "SendError", "SpawnError",
    "RegisterError", "Denied", "HibernateError", "entry", "select", "encode", "decode", "duration",
    "process", "time", "logger", "io",
]


# --- pids, payloads, durations ------------------------------------------------------------

_PID = re.compile(r"^\{(?:([a-z0-9][a-z0-9_-]{0,62})\.([0-9]+)@)?([^@]+)\|0x([0-9a-fA-F]+)\}$")


class Pid:
    """A process identifier: the node of a cluster it runs on (`node`, a `(name,
    incarnation)` pair, or None outside a cluster), the host entry and a node-wide id."""

    __slots__ = ("node", "host", "id")

    def __init__(self, host: str, id: int, node: "tuple[str, int] | None" = None):
        self.node = node
        self.host = host
        self.id = id

    @classmethod
    def parse(cls, text: str) -> "Pid":
        """A pid from its text, `{app:processes|0x00004}` or `{b.7@app:processes|0x00004}`
        (as payloads carry it)."""
        found = _PID.match(text) if isinstance(text, str) else None
        if found is None:
            raise ValueError(f"{text!r} is not a pid like {{app:processes|0x00004}}")
        name, incarnation, host, id = found.groups()
        node = (name, int(incarnation)) if name is not None else None
        return cls(host, int(id, 16), node)

    @classmethod
    def _of(cls, wit: "_types.Pid") -> "Pid":
        node = (wit.node.name, wit.node.incarnation) if wit.node is not None else None
        return cls(wit.host, wit.id, node)

    def _wit(self) -> "_types.Pid":
        node = _types.NodeId(name=self.node[0], incarnation=self.node[1]) if self.node else None
        return _types.Pid(node=node, host=self.host, id=self.id)

    def __str__(self) -> str:
        if self.node is not None:
            return "{%s.%d@%s|0x%05x}" % (self.node[0], self.node[1], self.host, self.id)
        return "{%s|0x%05x}" % (self.host, self.id)

    __repr__ = __str__

    def __eq__(self, other) -> bool:
        return isinstance(other, Pid) and (self.node, self.host, self.id) == (
            other.node, other.host, other.id)

    def __hash__(self) -> int:
        return hash((self.node, self.host, self.id))


def _encode_default(encoder, value):
    if isinstance(value, Pid):
        encoder.encode(str(value))
    elif isinstance(value, ExitReason):
        if value._raw is not None:
            # A returned value goes in as the bytes it came as: never decoded to be logged.
            encoder.write(value._raw)
        else:
            encoder.encode(value.value if value.normal else {value.kind: value.message})
    else:
        raise TypeError(f"cannot put a {type(value).__name__} in a payload")


def encode(value) -> bytes:
    """`value` as a payload (CBOR). Pids and exit reasons take their documented forms; a
    returned value goes in as the bytes it came as."""
    if isinstance(value, ExitReason) and value._raw is not None:
        return value._raw
    return cbor2.dumps(value, default=_encode_default)


def decode(payload: bytes):
    """A payload as a Python value."""
    return cbor2.loads(payload)


_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000,
          "m": 60_000_000_000, "h": 3_600_000_000_000}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ns|us|µs|ms|s|m|h)\s*$")


def duration(d) -> int:
    """Nanoseconds from `"100ms"`, `"5s"`, `"1.5m"`, or a number of seconds."""
    if isinstance(d, bool):
        raise TypeError("a duration is a text like \"100ms\" or a number of seconds")
    if isinstance(d, (int, float)):
        if d < 0:
            raise ValueError("a duration cannot be negative")
        return int(d * 1_000_000_000)
    found = _DURATION.match(d) if isinstance(d, str) else None
    if found is None:
        raise ValueError(f"{d!r} is not a duration like \"100ms\", \"5s\" or \"2m\"")
    return int(float(found.group(1)) * _UNITS[found.group(2)])


# --- exit reasons and events --------------------------------------------------------------

# How large a returned value `str(reason)` shows; a larger one is named by its size.
_SHOWN_VALUE = 1024


class ExitReason:
    """Why a process ended. `normal` only for a return; `value` is what it returned.

    A returned value is another process's data, as large and as deep as it liked: it is kept
    as its CBOR bytes (`raw`) and decoded only when `value` is read. Showing or logging a
    reason never decodes it whole."""

    __slots__ = ("kind", "_value", "_raw", "message")

    def __init__(self, kind: str, value=None, message: str = "", raw: bytes = None):
        self.kind = kind
        self._value = value
        self._raw = raw
        self.message = message

    @property
    def value(self):
        """What the process returned, decoded (on first use)."""
        if self._raw is not None and self._value is None:
            self._value = decode(self._raw)
        return self._value

    @property
    def raw(self) -> bytes:
        """What the process returned, as CBOR."""
        return self._raw if self._raw is not None else encode(self._value)

    @property
    def normal(self) -> bool:
        return self.kind == "normal"

    @classmethod
    def _of(cls, wit) -> "ExitReason":
        if isinstance(wit, _types.ExitReason_Normal):
            return cls("normal", raw=bytes(wit.value))
        if isinstance(wit, _types.ExitReason_LinkDown):
            return cls("link_down", message=str(Pid._of(wit.value)))
        if isinstance(wit, _types.ExitReason_NoProcess):
            return cls("no_process")
        if isinstance(wit, _types.ExitReason_NoConnection):
            return cls("no_connection", message=str(wit.value))
        kinds = {_types.ExitReason_Error: "error", _types.ExitReason_Trap: "trap",
                 _types.ExitReason_Limit: "limit", _types.ExitReason_Killed: "killed",
                 _types.ExitReason_Cancelled: "cancelled"}
        return cls(kinds.get(type(wit), "error"), message=str(wit.value))

    def __str__(self) -> str:
        if self.normal:
            if len(self.raw) > _SHOWN_VALUE:
                return f"<a value of {len(self.raw)} bytes>"
            return repr(self.value)
        return {
            "killed": f"killed by {self.message}",
            "link_down": f"linked process {self.message} exited",
            "no_process": "no such process",
            "no_connection": f"no connection to node {self.message}",
        }.get(self.kind, f"{self.kind}: {self.message}")

    __repr__ = __str__

    def __eq__(self, other) -> bool:
        if not isinstance(other, ExitReason) or (self.kind, self.message) != (other.kind, other.message):
            return False
        return not self.normal or self.raw == other.raw


class Exit:
    """A monitored process ended (`EXIT` in the seed)."""

    def __init__(self, from_: Pid, reason: ExitReason):
        self.from_ = from_
        self.reason = reason

    def __repr__(self) -> str:
        return f"Exit(from={self.from_}, reason={self.reason})"


class LinkDown(Exit):
    """A linked process ended abnormally (delivered only while trapping links)."""

    def __repr__(self) -> str:
        return f"LinkDown(from={self.from_}, reason={self.reason})"


class Cancel:
    """Someone asked this process to stop, with a reason; it has a grace period to do so."""

    def __init__(self, reason: str):
        self.reason = reason

    def __repr__(self) -> str:
        return f"Cancel(reason={self.reason!r})"


class Upgrade:
    """The node upgrades this process's entry (`wasmhost upgrade`): hand over to the new
    component with `process.hand_over(state)`."""

    def __repr__(self) -> str:
        return "Upgrade()"


def _event(wit):
    if isinstance(wit, _types.Event_Cancel):
        return Cancel(wit.value)
    if isinstance(wit, _types.Event_Upgrade):
        return Upgrade()
    exit_ = wit.value
    kind = LinkDown if isinstance(wit, _types.Event_LinkDown) else Exit
    return kind(Pid._of(exit_.from_), ExitReason._of(exit_.reason))


class Message:
    """A message: its topic, who it is from (`from_`: None when the node sent it) and its
    payload."""

    __slots__ = ("topic", "from_", "raw")

    def __init__(self, wit):
        self.topic = wit.topic
        self.from_ = Pid._of(wit.from_) if wit.from_ is not None else None
        self.raw = wit.payload

    @property
    def payload(self):
        """The payload, decoded."""
        return decode(self.raw)

    def __repr__(self) -> str:
        return f"Message(topic={self.topic!r}, from_={self.from_}, payload={self.payload!r})"


# --- errors -------------------------------------------------------------------------------

class SendError(Exception):
    """`send` refused a message: `kind` is `unknown_name`, `too_large`, `mailbox_full` or
    `limit` (one of the sender's own: a topic or name over 255 bytes, its `host_memory`, the
    node's memory budget)."""

    def __init__(self, kind: str, detail):
        self.kind = kind
        self.detail = detail
        text = {
            "unknown_name": f"no process is registered as {detail!r}",
            "too_large": f"the message is larger than the receiver's limit of {detail} bytes",
            "mailbox_full": f"the mailbox of {detail} is full",
            "limit": f"limit: {detail}",
        }[kind]
        super().__init__(text)


class SpawnError(Exception):
    """A spawn failed: `kind` is `unknown_entry`, `unknown_host`, `limit` or `denied`."""

    def __init__(self, kind: str, message: str):
        self.kind = kind
        super().__init__(f"{kind.replace('_', ' ')}: {message}")


class RegisterError(Exception):
    """`register` failed: `kind` is `taken`, `invalid`, `reserved` or `limit`."""

    def __init__(self, kind: str, message: str):
        self.kind = kind
        super().__init__(message)


class Denied(Exception):
    """The caller has no authority over the target process."""


class HibernateError(Exception):
    """`hibernate` was refused (the state is over the process's `message_size`, or its
    `host_memory` or the node's budget cannot hold it); the process runs on."""


def _raise_from(err: Err, table):
    value = err.value
    for wit_type, make in table:
        if isinstance(value, wit_type):
            raise make(value.value) from None
    raise err


_SEND_ERRORS = [
    (_process.SendError_UnknownName, lambda v: SendError("unknown_name", v)),
    (_process.SendError_TooLarge, lambda v: SendError("too_large", v)),
    (_process.SendError_MailboxFull, lambda v: SendError("mailbox_full", Pid._of(v))),
    (_process.SendError_Limit, lambda v: SendError("limit", v)),
]
_SPAWN_ERRORS = [
    (_process.SpawnError_UnknownEntry, lambda v: SpawnError("unknown_entry", v)),
    (_process.SpawnError_UnknownHost, lambda v: SpawnError("unknown_host", v)),
    (_process.SpawnError_Limit, lambda v: SpawnError("limit", v)),
    (_process.SpawnError_Denied, lambda v: SpawnError("denied", v)),
]
_REGISTER_ERRORS = [
    (_process.RegisterError_Taken, lambda v: RegisterError("taken", f"the name is held by {Pid._of(v)}")),
    (_process.RegisterError_Invalid, lambda v: RegisterError("invalid", v)),
    (_process.RegisterError_Reserved, lambda v: RegisterError("reserved", v)),
    (_process.RegisterError_Limit, lambda v: RegisterError("limit", v)),
]


# --- waiting: sources and select ----------------------------------------------------------

class _Source:
    """Something `select` can wait on: it has a pollable and something to take when ready."""

    def _pollable(self):
        raise NotImplementedError

    def _take(self):
        """The next value if one is ready, else None."""
        raise NotImplementedError

    def recv(self, timeout=None):
        """Waits for the next value; None if `timeout` passes first."""
        got = select(self, timeout=timeout)
        return None if got is None else got[1]


def select(*sources, timeout=None):
    """Waits until one of `sources` (mailbox, events, timers, tickers) has something, and
    returns `(source, value)`; `None` if `timeout` (a duration) passes first. The first
    source that is ready wins."""
    deadline = _time.Timer(duration(timeout)) if timeout is not None else None
    try:
        while True:
            for source in sources:
                value = source._take()
                if value is not None:
                    return source, value
            if deadline is not None and deadline.fired():
                return None
            pollables = [source._pollable() for source in sources]
            if deadline is not None:
                pollables.append(deadline.subscribe())
            try:
                _poll.poll(pollables)
            finally:
                for pollable in pollables:
                    pollable.__exit__(None, None, None)
    finally:
        if deadline is not None:
            deadline.__exit__(None, None, None)


# Messages taken from the host in one call and not handed out yet, shared by every Mailbox as
# they share the one mailbox: the rest of a run of waiting messages costs no host call.
_TAKE_AT_ONCE = 32
_taken = collections.deque()


class Mailbox(_Source):
    """This process's messages, in the order they came (per sender)."""

    def __init__(self):
        self._mailbox = _process.Mailbox()

    def _pollable(self):
        return self._mailbox.subscribe()

    def _take(self):
        if not _taken:
            _taken.extend(self._mailbox.try_receive_many(_TAKE_AT_ONCE))
        return Message(_taken.popleft()) if _taken else None

    def recv(self, timeout=None):
        """Waits for the next message; None if `timeout` passes first."""
        if timeout is not None or _taken:
            return super().recv(timeout)
        # Nothing but a message ends the wait: one host call waits and takes.
        _taken.extend(self._mailbox.receive_many(_TAKE_AT_ONCE))
        return Message(_taken.popleft())

    def try_recv(self):
        """The next message if one waits, else None."""
        return self._take()

    def __iter__(self):
        while True:
            yield self.recv()


class Events(_Source):
    """This process's lifecycle events: `Exit`, `LinkDown`, `Cancel`, `Upgrade`."""

    def __init__(self):
        self._stream = _process.Events()

    def _pollable(self):
        return self._stream.subscribe()

    def _take(self):
        wit = self._stream.try_receive()
        return _event(wit) if wit is not None else None

    def try_recv(self):
        return self._take()


class Timer(_Source):
    """Fires once, after its duration; `recv` returns True then."""

    def __init__(self, d):
        self._timer = _time.Timer(duration(d))
        self._taken = False

    def _pollable(self):
        return self._timer.subscribe()

    def _take(self):
        if not self._taken and self._timer.fired():
            self._taken = True
            return True
        return None


class Ticker(_Source):
    """Fires every period; `recv` returns how many ticks passed since the last one taken."""

    def __init__(self, period):
        self._ticker = _time.Ticker(duration(period))

    def _pollable(self):
        return self._ticker.subscribe()

    def _take(self):
        ticks = self._ticker.tick()
        return ticks if ticks > 0 else None


# --- the modules, named as the seed's --------------------------------------------------------

class _ProcessModule:
    """Messaging, spawning, monitoring, links and names (module `process`)."""

    Mailbox = Mailbox
    Events = Events

    def __init__(self):
        self._mailbox = None
        self._events = None

    def pid(self) -> Pid:
        return Pid._of(_process.self_pid())

    def send(self, dest, topic: str, data=None) -> None:
        """Sends `data` (any value; encoded) to a pid or a registered name."""
        to = _process.Destination_Pid(dest._wit()) if isinstance(dest, Pid) \
            else _process.Destination_Name(dest)
        try:
            _process.send(to, topic, encode(data))
        except Err as err:
            _raise_from(err, _SEND_ERRORS)

    def mailbox(self) -> Mailbox:
        """This process's mailbox (the seed's `process.inbox()`)."""
        if self._mailbox is None:
            self._mailbox = Mailbox()
        return self._mailbox

    def events(self) -> Events:
        if self._events is None:
            self._events = Events()
        return self._events

    def _spawn(self, how, entry: str, host: str, args) -> Pid:
        try:
            return Pid._of(how(entry, host, [encode(a) for a in args]))
        except Err as err:
            _raise_from(err, _SPAWN_ERRORS)

    def spawn(self, entry: str, host: str, *args) -> Pid:
        return self._spawn(_process.spawn, entry, host, args)

    def spawn_monitored(self, entry: str, host: str, *args) -> Pid:
        """Spawns and monitors: its `Exit` comes on `events()`."""
        return self._spawn(_process.spawn_monitored, entry, host, args)

    def spawn_linked(self, entry: str, host: str, *args) -> Pid:
        return self._spawn(_process.spawn_linked, entry, host, args)

    def monitor(self, target: Pid) -> None:
        _process.monitor(target._wit())

    def unmonitor(self, target: Pid) -> None:
        _process.unmonitor(target._wit())

    def _authority(self, call, *args):
        try:
            return call(*args)
        except Err as err:
            raise Denied(err.value) from None

    def link(self, target: Pid) -> None:
        self._authority(_process.link, target._wit())

    def unlink(self, target: Pid) -> None:
        self._authority(_process.unlink, target._wit())

    def trap_links(self, enabled: bool = True) -> None:
        _process.trap_links(enabled)

    def terminate(self, target: Pid) -> bool:
        return self._authority(_process.terminate, target._wit())

    def cancel(self, target: Pid, reason: str, grace="5s") -> bool:
        return self._authority(_process.cancel, target._wit(), reason, duration(grace))

    def register(self, name: str) -> None:
        try:
            _process.register(name)
        except Err as err:
            _raise_from(err, _REGISTER_ERRORS)

    def lookup(self, name: str):
        found = _process.lookup(name)
        return Pid._of(found) if found is not None else None

    def unregister(self, name: str) -> bool:
        return _process.unregister(name)

    def hibernate(self, state=None, wake_after=None):
        """Hibernates with `state`: the instance ends here, and the next message or event
        (or `wake_after`, if given) starts a new one, which calls `main` again with the
        spawn arguments; there `resumed()` returns `state`. Timers and handles end with the
        instance; the mailbox, events, names, links and monitors stay. Messages taken from
        the host and not read yet are kept, and come first. Returns only by raising
        `HibernateError`."""
        unread = [[m.topic, str(Pid._of(m.from_)) if m.from_ is not None else None, m.payload]
                  for m in _taken]
        kept = cbor2.dumps([list(_entry_args), encode(state), unread])
        # Unread messages wake it at once, as messages waiting in the mailbox would.
        after = 0 if unread else (None if wake_after is None else duration(wake_after))
        raise HibernateError(_process.hibernate(kept, after))

    def hand_over(self, state=None):
        """Hands over to the new component when the node upgrades this process's entry (on
        an `Upgrade` event): hibernates with `state`, and an instance of the new component
        starts at once, with the same pid, names, links, monitors and mailbox; there
        `resumed()` returns `state`. Returns only by raising `HibernateError`."""
        self.hibernate(state, wake_after=0)

    def resumed(self):
        """The state this instance woke with (see `hibernate`); None in the instance the
        spawn made."""
        return decode(_resumed[0]) if _resumed else None


class _TimeModule:
    """Timers (module `time`). Durations are texts like "100ms" or numbers of seconds."""

    Timer = Timer
    Ticker = Ticker

    def sleep(self, d) -> None:
        _time.sleep(duration(d))

    def after(self, d) -> Timer:
        return Timer(d)

    def ticker(self, period) -> Ticker:
        return Ticker(period)


def _fields(fields) -> list:
    return [(str(k), encode(v)) for k, v in fields.items()]


class _LoggerModule:
    """Structured logging through the host (module `logger`): `logger.info("msg", n=1)` or
    `logger.info("msg", {"n": 1})`; field values keep their types in the host's log."""

    def _log(self, level, message: str, fields, more):
        fields = dict(fields or {}, **more)
        _logger.log(level, str(message), _fields(fields))

    def trace(self, message, fields=None, **more):
        self._log(_logger.Level.TRACE, message, fields, more)

    def debug(self, message, fields=None, **more):
        self._log(_logger.Level.DEBUG, message, fields, more)

    def info(self, message, fields=None, **more):
        self._log(_logger.Level.INFO, message, fields, more)

    def warn(self, message, fields=None, **more):
        self._log(_logger.Level.WARN, message, fields, more)

    def error(self, message, fields=None, **more):
        self._log(_logger.Level.ERROR, message, fields, more)


class _IoModule:
    """The terminal (module `io`): the process bound to it reads and writes it; a process
    elsewhere that is granted `io` prints into the log and reads end of input."""

    def print(self, text="") -> None:
        _io.print(str(text))

    def write(self, text) -> None:
        _io.write(str(text))

    def eprint(self, text) -> None:
        _io.eprint(str(text))

    def readline(self):
        """The next line without its newline; None at the end of input. Blocks."""
        return _io.readline()

    def color(self) -> bool:
        return _io.color()


process = _ProcessModule()
time = _TimeModule()
logger = _LoggerModule()
io = _IoModule()


# --- the entry point ----------------------------------------------------------------------

# The spawn arguments, kept for `hibernate`; the state this instance woke with, if it did.
_entry_args = []
_resumed = []


def _woken(args):
    """The arguments to call `main` with: the spawn's, or, in an instance that wakes from
    hibernation, those kept with its state (and its unread messages put back)."""
    # The host calls a woken instance with no arguments: a spawn with some asks nothing.
    kept = _process.resumed() if not args else None
    if kept is not None:
        args, state, unread = cbor2.loads(kept)
        _resumed.append(state)
        for topic, sender, payload in unread:
            sender = Pid.parse(sender)._wit() if sender is not None else None
            _taken.append(_process.Message(topic=topic, from_=sender, payload=payload))
    _entry_args.extend(args)
    return args


def entry(main):
    """The component's export for `main(*args)`: each spawn argument is decoded and passed
    in order; the return value is the process's result (a number is `wasmhost run`'s exit
    code). An exception is an abnormal exit (`error`) with its type and message."""
    from wit_world import WitWorld as _Protocol

    class WitWorld(_Protocol):
        def main(self, args):
            try:
                values = [decode(a) for a in _woken(args)]
                return encode(main(*values))
            except Err:
                raise
            except BaseException as exc:  # noqa: BLE001 - every failure is an exit reason
                raise Err(f"{type(exc).__name__}: {exc}") from None

    return WitWorld
