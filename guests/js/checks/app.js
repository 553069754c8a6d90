// The JavaScript library, exercised: each mode runs one check and returns what it saw, for
// tests/it/languages.rs to assert on (the same checks as guests/python/checks).

import { entry, Cancel, Exit, Pid, Upgrade, WasmhostError, logger, process, select, time } from "wasmhost";

const modes = {
  // A pid's text read and written back (null if it is not a pid), and whether it equals
  // itself read again.
  pid: (text) => {
    let pid;
    try {
      pid = Pid.parse(text);
    } catch {
      return null;
    }
    return [pid.toString(), pid.equals(Pid.parse(pid.toString()))];
  },
  "send-by-name": () => {
    process.register("js-checks");
    process.send("js-checks", "greeting", { n: 1, pid: process.pid() });
    const message = process.mailbox().recv("10s");
    return [message.topic, message.payload, message.from.equals(process.pid())];
  },

  "unknown-name": () => {
    try {
      process.send("nobody", "greeting", "hi");
    } catch (err) {
      if (err instanceof WasmhostError) return [err.kind, err.message];
      throw err;
    }
    return "sent";
  },

  // Sends itself `count` numbers, then takes them back every way there is: a blocking
  // `recv` (which takes a run at once), `tryRecv`, `select` and `recv` with a timeout.
  fifo: (count) => {
    const me = process.pid();
    for (let i = 0; i < count; i++) process.send(me, "n", i);
    const mailbox = process.mailbox();
    const seen = [mailbox.recv().payload];
    while (seen.length < count) {
      const way = seen.length % 3;
      const got =
        way === 0 ? mailbox.tryRecv() : way === 1 ? select([mailbox], { timeout: "10s" })[1] : mailbox.recv("10s");
      seen.push(got.payload);
    }
    return [seen, mailbox.tryRecv() === null];
  },

  "select-timeout": () => {
    const mailbox = process.mailbox();
    const timedOut = select([mailbox], { timeout: "20ms" });
    const timer = time.after("10ms");
    const [source, fired] = select([mailbox, timer]);
    return [timedOut, source === timer, fired];
  },

  monitor: (entryName) => {
    const events = process.events();
    const seen = [];
    for (const args of [["return", { answer: 42 }], ["fail", "on purpose"]]) {
      const child = process.spawnMonitored(entryName, "app:processes", ...args);
      const event = events.recv("10s");
      if (!(event instanceof Exit)) throw new Error(`expected an exit, got ${event}`);
      seen.push([event.from.equals(child), event.reason.kind, event.reason.value,
        event.reason.message, event.reason.toString()]);
    }
    return seen;
  },

  log: () => {
    logger.info("checked", { count: 3, name: "js", items: [1, 2], pid: process.pid() });
    return 0;
  },

  // JavaScript has no sockets here; its network API is `fetch`, which needs an HTTP import a
  // process does not have: the call traps.
  socket: () => {
    try {
      fetch("http://127.0.0.1:9/");
    } catch (err) {
      return `${err.name}: ${err.message}`;
    }
    return "connected";
  },

  ungranted: () => {
    process.send(process.pid(), "note", "before");
    time.sleep("1ms");
    return "slept";
  },

  wait: () => {
    const events = process.events();
    for (;;) {
      const event = events.recv();
      if (event instanceof Cancel) return event.reason;
    }
  },

  // Sends itself `count` numbers and reads one (the library takes the run at once), then
  // hibernates: the unread ones are kept and wake it at once. Reads the rest there and
  // hibernates again, woken by its timer this time; returns what it read, in order.
  hibernate: (count) => {
    const state = process.resumed();
    const mailbox = process.mailbox();
    if (state === null) {
      const me = process.pid();
      for (let i = 0; i < count; i++) process.send(me, "n", i);
      process.hibernate({ step: 1, seen: [mailbox.recv().payload] }, "10s");
    }
    if (state.step === 1) {
      const seen = [...state.seen];
      while (seen.length < count) seen.push(mailbox.recv("10s").payload);
      process.hibernate({ step: 2, seen }, "1ms");
    }
    return [count, state.seen, mailbox.tryRecv() === null];
  },

  // Sends itself a number, waits for the upgrade and hands `answer` over; the new instance
  // returns [answer, the number], which waited in the mailbox meanwhile.
  upgrade: (answer) => {
    const state = process.resumed();
    if (state === null) {
      process.send(process.pid(), "n", 7);
      const event = process.events().recv("10s");
      if (!(event instanceof Upgrade)) throw new Error(`not an upgrade: ${JSON.stringify(event)}`);
      process.handOver(answer);
    }
    return [state, process.mailbox().recv("10s").payload];
  },

  return: (value) => value,

  fail: (message) => {
    throw new Error(message);
  },
};

export const main = entry((mode, arg) => {
  const check = modes[mode];
  if (!check) throw new Error(`unknown mode ${mode}`);
  return check(arg);
});
