// wasmhost for JavaScript (componentize-js): a process reads like the seed's Lua and like
// the Rust SDK.
//
//     import { entry, Pid, process, time } from "wasmhost";
//     export const main = entry((sender, data) => {
//       time.sleep("100ms");
//       process.send(Pid.parse(sender), "echo_response",
//                    { data: data.toUpperCase(), worker: process.pid() });
//       return 0;
//     });
//
// Payloads are CBOR (RFC 8949), encoded and decoded with cbor-x. Inside a payload a pid is
// its text, `{app:processes|0x00004}` (`Pid.parse` reads it back), and an exit reason is the
// returned value or a one-entry map such as `{error: "..."}`, as wit/wasmhost.wit documents.
// Everything here blocks only where it says so; `select` waits on any mix of mailbox, events,
// timers and tickers.

import { Encoder } from "cbor-x";
import * as host from "wasmhost:abi/process@0.5.0";
import * as hostTime from "wasmhost:abi/time@0.5.0";
import * as hostLogger from "wasmhost:abi/logger@0.5.0";
import * as hostIo from "wasmhost:abi/io@0.5.0";
import { poll } from "wasi:io/poll@0.2.12";

// Plain CBOR: no records extension, maps with text keys as objects, byte strings untagged.
const cbor = new Encoder({ useRecords: false, mapsAsObjects: true, tagUint8Array: false });

// --- pids, payloads, durations ------------------------------------------------------------

const PID = /^\{(?:([a-z0-9][a-z0-9_-]{0,62})\.([0-9]+)@)?([^@]+)\|0x([0-9a-fA-F]+)\}$/;

export class Pid {
  /** `node` is the node of a cluster it runs on, `{ name, incarnation }`, or `undefined`
   * outside a cluster. */
  constructor(host, id, node = undefined) {
    this.node = node;
    this.host = host;
    this.id = BigInt(id);
  }

  /** A pid from its text, `{app:processes|0x00004}` or `{b.7@app:processes|0x00004}` (as
   * payloads carry it). */
  static parse(text) {
    const found = typeof text === "string" ? PID.exec(text) : null;
    if (!found) throw new TypeError(`${JSON.stringify(text)} is not a pid like {app:processes|0x00004}`);
    const node = found[1] === undefined ? undefined : { name: found[1], incarnation: BigInt(found[2]) };
    return new Pid(found[3], BigInt("0x" + found[4]), node);
  }

  toString() {
    const id = this.id.toString(16).padStart(5, "0");
    if (this.node === undefined) return `{${this.host}|0x${id}}`;
    return `{${this.node.name}.${this.node.incarnation}@${this.host}|0x${id}}`;
  }

  equals(other) {
    return (
      other instanceof Pid &&
      other.host === this.host &&
      other.id === this.id &&
      other.node?.name === this.node?.name &&
      other.node?.incarnation === this.node?.incarnation
    );
  }
}

const pidOf = (wit) =>
  new Pid(wit.host, wit.id, wit.node == null ? undefined : { name: wit.node.name, incarnation: BigInt(wit.node.incarnation) });
const witOf = (pid) => ({
  node: pid.node === undefined ? undefined : { name: pid.node.name, incarnation: BigInt(pid.node.incarnation) },
  host: pid.host,
  id: pid.id,
});

/** `value` with pids and exit reasons in their documented payload forms. */
function plain(value) {
  if (value instanceof Pid) return value.toString();
  if (value instanceof ExitReason) return value.normal ? plain(value.value) : { [value.kind]: value.message };
  if (Array.isArray(value)) return value.map(plain);
  if (value instanceof Uint8Array || value === null || typeof value !== "object") return value;
  if (value instanceof Map) return new Map([...value].map(([k, v]) => [plain(k), plain(v)]));
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
}

/** `value` as a payload (CBOR). A returned value goes in as the bytes it came as. */
export function encode(value) {
  if (value instanceof ExitReason && value.raw !== null) return value.raw;
  return cbor.encode(plain(value === undefined ? null : value));
}

/** A payload as a JavaScript value. */
export function decode(payload) {
  return cbor.decode(payload);
}

const UNITS = { ns: 1n, us: 1000n, µs: 1000n, ms: 1000000n, s: 1000000000n, m: 60000000000n, h: 3600000000000n };

/** Nanoseconds (a BigInt) from `"100ms"`, `"5s"`, `"2m"`, or a number of seconds. */
export function duration(d) {
  if (typeof d === "number") {
    if (!(d >= 0)) throw new RangeError("a duration cannot be negative");
    return BigInt(Math.round(d * 1e9));
  }
  const found = typeof d === "string" ? /^\s*(\d+(?:\.\d+)?)\s*(ns|us|µs|ms|s|m|h)\s*$/.exec(d) : null;
  if (!found) throw new TypeError(`${JSON.stringify(d)} is not a duration like "100ms", "5s" or "2m"`);
  const [whole, fraction = ""] = found[1].split(".");
  const unit = UNITS[found[2]];
  const scale = 10n ** BigInt(fraction.length);
  return (BigInt(whole) * scale + BigInt(fraction || "0")) * unit / scale;
}

// --- exit reasons, events, messages -------------------------------------------------------

/** How large a returned value `toString()` shows; a larger one is named by its size. */
const SHOWN_VALUE = 1024;

/**
 * Why a process ended. `normal` only for a return; `value` is what it returned.
 *
 * A returned value is another process's data, as large and as deep as it liked: it is kept as
 * its CBOR bytes (`raw`) and decoded only when `value` is read. Showing or logging a reason
 * never decodes it whole.
 */
export class ExitReason {
  constructor(kind, value = null, message = "", raw = null) {
    this.kind = kind;
    this._value = value;
    this.message = message;
    this.raw = raw;
  }

  /** What the process returned, decoded (on first use). */
  get value() {
    if (this.raw !== null && this._value === null) this._value = decode(this.raw);
    return this._value;
  }

  get normal() {
    return this.kind === "normal";
  }

  static of(wit) {
    switch (wit.tag) {
      case "normal": return new ExitReason("normal", null, "", wit.val);
      case "link-down": return new ExitReason("link_down", null, pidOf(wit.val).toString());
      case "no-process": return new ExitReason("no_process");
      case "no-connection": return new ExitReason("no_connection", null, wit.val);
      default: return new ExitReason(wit.tag, null, String(wit.val));
    }
  }

  toString() {
    if (this.normal && this.raw !== null && this.raw.length > SHOWN_VALUE) return `<a value of ${this.raw.length} bytes>`;
    if (this.normal) return JSON.stringify(this.value, (_, v) => (typeof v === "bigint" ? v.toString() : v));
    if (this.kind === "killed") return `killed by ${this.message}`;
    if (this.kind === "link_down") return `linked process ${this.message} exited`;
    if (this.kind === "no_process") return "no such process";
    if (this.kind === "no_connection") return `no connection to node ${this.message}`;
    return `${this.kind}: ${this.message}`;
  }
}

/** A monitored process ended (`EXIT` in the seed). */
export class Exit {
  constructor(from, reason) {
    this.from = from;
    this.reason = reason;
  }
}

/** A linked process ended abnormally (delivered only while trapping links). */
export class LinkDown extends Exit {}

/** Someone asked this process to stop; it has a grace period to do so. */
export class Cancel {
  constructor(reason) {
    this.reason = reason;
  }
}

/** The node upgrades this process's entry (`wasmhost upgrade`): hand over to the new
 * component with `process.handOver(state)`. */
export class Upgrade {}

function eventOf(wit) {
  if (wit.tag === "cancel") return new Cancel(wit.val);
  if (wit.tag === "upgrade") return new Upgrade();
  const kind = wit.tag === "link-down" ? LinkDown : Exit;
  return new kind(pidOf(wit.val.from), ExitReason.of(wit.val.reason));
}

/** A message: its topic, who it is from (null when the node sent it) and its payload. */
export class Message {
  constructor(wit) {
    this.topic = wit.topic;
    this.from = wit.from ? pidOf(wit.from) : null;
    this.raw = wit.payload;
  }

  /** The payload, decoded. */
  get payload() {
    return decode(this.raw);
  }
}

// --- errors -------------------------------------------------------------------------------

/** An operation was refused: `kind` says which way (`unknown_name`, `limit`, `denied`, …). */
export class WasmhostError extends Error {
  constructor(kind, message) {
    super(message);
    this.kind = kind;
  }
}

/** Calls `f`, turning a WIT error into a WasmhostError with `describe(tag, val)`. */
function checked(f, describe) {
  try {
    return f();
  } catch (err) {
    const failure = err && err.payload !== undefined ? err.payload : null;
    if (failure === null) throw err;
    if (typeof failure === "string") throw new WasmhostError("denied", failure);
    throw new WasmhostError(failure.tag.replace(/-/g, "_"), describe(failure.tag, failure.val));
  }
}

function sendError(tag, val) {
  switch (tag) {
    case "unknown-name": return `no process is registered as ${JSON.stringify(val)}`;
    case "too-large": return `the message is larger than the receiver's limit of ${val} bytes`;
    case "mailbox-full": return `the mailbox of ${pidOf(val)} is full`;
    case "limit": return `limit: ${val}`;
    default: return String(val);
  }
}
const spawnError = (tag, val) => `${tag.replace(/-/g, " ")}: ${val}`;
const registerError = (tag, val) => (tag === "taken" ? `the name is held by ${pidOf(val)}` : String(val));

// --- waiting: sources and select ----------------------------------------------------------

/**
 * Waits until one of `sources` (mailbox, events, timers, tickers) has something; returns
 * `[source, value]`, or null if `options.timeout` (a duration) passes first. Blocks.
 */
export function select(sources, options = {}) {
  const deadline = options.timeout !== undefined ? new hostTime.Timer(duration(options.timeout)) : null;
  for (;;) {
    for (const source of sources) {
      const value = source.take();
      if (value !== null && value !== undefined) return [source, value];
    }
    if (deadline && deadline.fired()) return null;
    const pollables = sources.map((s) => s.pollable());
    if (deadline) pollables.push(deadline.subscribe());
    poll(pollables);
  }
}

class Source {
  /** The next value; null if `timeout` passes first. Blocks. */
  recv(timeout) {
    const got = select([this], timeout === undefined ? {} : { timeout });
    return got ? got[1] : null;
  }

  /** The next value if one is ready, else null. */
  tryRecv() {
    const value = this.take();
    return value === undefined ? null : value;
  }
}

// Messages taken from the host in one call and not handed out yet, shared by every Mailbox as
// they share the one mailbox: the rest of a run of waiting messages costs no host call.
const TAKE_AT_ONCE = 32;
const taken = [];

export class Mailbox extends Source {
  constructor() {
    super();
    this.mailbox = new host.Mailbox();
  }
  pollable() {
    return this.mailbox.subscribe();
  }
  take() {
    if (taken.length === 0) taken.push(...this.mailbox.tryReceiveMany(TAKE_AT_ONCE));
    const wit = taken.shift();
    return wit ? new Message(wit) : null;
  }
  recv(timeout) {
    if (timeout !== undefined || taken.length > 0) return super.recv(timeout);
    // Nothing but a message ends the wait: one host call waits and takes.
    taken.push(...this.mailbox.receiveMany(TAKE_AT_ONCE));
    return new Message(taken.shift());
  }
}

export class Events extends Source {
  constructor() {
    super();
    this.stream = new host.Events();
  }
  pollable() {
    return this.stream.subscribe();
  }
  take() {
    const wit = this.stream.tryReceive();
    return wit ? eventOf(wit) : null;
  }
}

export class Timer extends Source {
  constructor(d) {
    super();
    this.timer = new hostTime.Timer(duration(d));
    this.taken = false;
  }
  pollable() {
    return this.timer.subscribe();
  }
  take() {
    if (!this.taken && this.timer.fired()) {
      this.taken = true;
      return true;
    }
    return null;
  }
}

export class Ticker extends Source {
  constructor(period) {
    super();
    this.ticker = new hostTime.Ticker(duration(period));
  }
  pollable() {
    return this.ticker.subscribe();
  }
  take() {
    const ticks = this.ticker.tick();
    return ticks > 0n ? Number(ticks) : null;
  }
}

// --- the modules, named as the seed's -------------------------------------------------------

let theMailbox = null;
let theEvents = null;

const destination = (dest) => (dest instanceof Pid ? { tag: "pid", val: witOf(dest) } : { tag: "name", val: String(dest) });
const spawnWith = (how) => (entryName, hostName, ...args) =>
  pidOf(checked(() => how(entryName, hostName, args.map(encode)), spawnError));

/** Messaging, spawning, monitoring, links and names (module `process`). */
export const process = {
  pid: () => pidOf(host.selfPid()),
  /** Sends `data` (any value; encoded) to a pid or a registered name. */
  send: (dest, topic, data) => checked(() => host.send(destination(dest), topic, encode(data)), sendError),
  /** This process's mailbox (the seed's `process.inbox()`). */
  mailbox: () => (theMailbox ??= new Mailbox()),
  events: () => (theEvents ??= new Events()),
  spawn: spawnWith(host.spawn),
  /** Spawns and monitors: its `Exit` comes on `events()`. */
  spawnMonitored: spawnWith(host.spawnMonitored),
  spawnLinked: spawnWith(host.spawnLinked),
  monitor: (pid) => host.monitor(witOf(pid)),
  unmonitor: (pid) => host.unmonitor(witOf(pid)),
  link: (pid) => checked(() => host.link(witOf(pid))),
  unlink: (pid) => checked(() => host.unlink(witOf(pid))),
  trapLinks: (enabled = true) => host.trapLinks(enabled),
  terminate: (pid) => checked(() => host.terminate(witOf(pid))),
  cancel: (pid, reason, grace = "5s") => checked(() => host.cancel(witOf(pid), reason, duration(grace))),
  register: (name) => checked(() => host.register(name), registerError),
  lookup: (name) => {
    const found = host.lookup(name);
    return found ? pidOf(found) : null;
  },
  unregister: (name) => host.unregister(name),
  /**
   * Hibernates with `state`: the instance ends here, and the next message or event (or
   * `wakeAfter`, if given) starts a new one, which calls the entry point again with the
   * spawn arguments; there `resumed()` returns `state`. Timers and handles end with the
   * instance; the mailbox, events, names, links and monitors stay. Messages taken from the
   * host and not read yet are kept, and come first. Returns only by throwing a
   * WasmhostError (`limit`).
   */
  hibernate: (state = null, wakeAfter = undefined) => {
    const unread = taken.map((m) => [m.topic, m.from ? pidOf(m.from).toString() : null, m.payload]);
    const kept = cbor.encode([entryArgs, encode(state), unread]);
    // Unread messages wake it at once, as messages waiting in the mailbox would.
    const after = unread.length > 0 ? 0n : wakeAfter === undefined ? undefined : duration(wakeAfter);
    throw new WasmhostError("limit", host.hibernate(kept, after));
  },
  /**
   * Hands over to the new component when the node upgrades this process's entry (on an
   * `Upgrade` event): hibernates with `state`, and an instance of the new component starts
   * at once, with the same pid, names, links, monitors and mailbox; there `resumed()`
   * returns `state`. Returns only by throwing a WasmhostError (`limit`).
   */
  handOver: (state = null) => process.hibernate(state, 0),
  /** The state this instance woke with (see `hibernate`); null in the instance the spawn made. */
  resumed: () => (resumed === undefined ? null : decode(resumed)),
};

/** Timers (module `time`). Durations are texts like "100ms" or numbers of seconds. */
export const time = {
  sleep: (d) => hostTime.sleep(duration(d)),
  after: (d) => new Timer(d),
  ticker: (period) => new Ticker(period),
};

const log = (level) => (message, fields = {}) =>
  hostLogger.log(level, String(message), Object.entries(fields).map(([k, v]) => [k, encode(v)]));

/** Structured logging through the host (module `logger`): `logger.info("msg", {n: 1})`. */
export const logger = {
  trace: log("trace"),
  debug: log("debug"),
  info: log("info"),
  warn: log("warn"),
  error: log("error"),
};

/** The terminal (module `io`): the process bound to it reads and writes it; a process elsewhere that is granted `io` prints into the log and reads end of input. */
export const io = {
  print: (text = "") => hostIo.print(String(text)),
  write: (text) => hostIo.write(String(text)),
  eprint: (text) => hostIo.eprint(String(text)),
  /** The next line without its newline; null at the end of input. Blocks. */
  readline: () => hostIo.readline() ?? null,
  color: () => hostIo.color(),
};

// --- the entry point ----------------------------------------------------------------------

// The spawn arguments, kept for `hibernate`; the state this instance woke with, if it did.
let entryArgs = [];
let resumed = undefined;

/**
 * The arguments to call the entry point with: the spawn's, or, in an instance that wakes from
 * hibernation, those kept with its state (and its unread messages put back).
 */
function woken(args) {
  // The host calls a woken instance with no arguments: a spawn with some asks nothing.
  const kept = args.length === 0 ? host.resumed() : undefined;
  if (kept !== undefined && kept !== null) {
    const [spawnArgs, state, unread] = decode(kept);
    args = spawnArgs.map((a) => new Uint8Array(a));
    resumed = state;
    for (const [topic, sender, payload] of unread) {
      taken.push({ topic, from: sender === null ? undefined : witOf(Pid.parse(sender)), payload: new Uint8Array(payload) });
    }
  }
  entryArgs = args;
  return args;
}

/**
 * The component's `main` export for `fn(...args)`: each spawn argument is decoded and passed
 * in order; the return value is the process's result (a number is `wasmhost run`'s exit
 * code). A thrown error is an abnormal exit (`error`) with its name and message.
 */
export function entry(fn) {
  return (args) => {
    let result;
    try {
      result = fn(...woken(args).map(decode));
    } catch (err) {
      throw err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    }
    return encode(result);
  };
}
