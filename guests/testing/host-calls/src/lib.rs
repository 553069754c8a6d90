//! The host-call fuzzer's process (`fuzz/host_calls.rs` drives it). Its first argument is a
//! script: bytes read as a sequence of host calls, each an opcode and the choices its
//! arguments take — sizes at and past every limit, made-up, foreign and oversized pids,
//! long and reserved names, extreme durations, poll lists of repeated pollables, argument
//! lists that alias one buffer. It makes every call through the raw bindings, times each,
//! and returns how many it made and the slowest of those that do not wait (nanoseconds and
//! opcode), as three CBOR unsigned integers in an array. Children it spawns run a mode given
//! as their argument.

use std::time::Instant;

wit_bindgen::generate!({
    path: "../../../wit",
    world: "wasmhost:abi/guest",
    generate_all,
});

use wasi::io::poll::{Pollable, poll};
use wasmhost::abi::logger::{self, Level};
use wasmhost::abi::process::{self as abi, Destination};
use wasmhost::abi::time;
use wasmhost::abi::types::{NodeId, Pid};

/// Sizes a script can ask for: around the fuzzer node's limits (64 KiB messages, 255-byte
/// names and topics, 511-byte pid hosts, 1 MiB of copy slack) and a few beyond.
const SIZES: [usize; 16] = [
    0,
    1,
    7,
    255,
    256,
    511,
    512,
    4096,
    65_535,
    65_536,
    65_537,
    1 << 20,
    3,
    16,
    100,
    2 << 20,
];
const COUNTS: [usize; 10] = [0, 1, 2, 31, 32, 33, 255, 256, 1024, 20_000];
const DURATIONS: [u64; 6] = [0, 1, 1_000_000, 50_000_000, u64::MAX / 2, u64::MAX];
/// The opcodes of calls that may wait: `receive-many`, `poll`, `sleep`.
const WAITS: [u8; 3] = [2, 17, 20];
/// Children run here; the script itself runs on a host of its own (`fuzz:script`), so
/// that its calls are not timed with others' turns.
const HOST: &str = "fuzz:procs";
const SELF: &str = "fuzz:host-calls";

struct Script<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Script<'_> {
    fn byte(&mut self) -> u8 {
        let b = self.bytes.get(self.at).copied().unwrap_or(0);
        self.at += 1;
        b
    }
    fn done(&self) -> bool {
        self.at >= self.bytes.len()
    }
    fn pick<T: Copy>(&mut self, from: &[T]) -> T {
        from[self.byte() as usize % from.len()]
    }
    fn size(&mut self) -> usize {
        self.pick(&SIZES)
    }
    fn count(&mut self) -> usize {
        self.pick(&COUNTS)
    }
    /// The next `n` bytes as a script of their own (for a child).
    fn take(&mut self, n: usize) -> Vec<u8> {
        let end = (self.at + n).min(self.bytes.len());
        let part = self.bytes.get(self.at..end).unwrap_or_default().to_vec();
        self.at = end;
        part
    }
}

fn text(len: usize, fill: char) -> String {
    std::iter::repeat_n(fill, len).collect()
}

/// A CBOR text string payload of `len` bytes.
fn payload(len: usize) -> Vec<u8> {
    let mut bytes = vec![0x7a];
    bytes.extend_from_slice(&(len as u32).to_be_bytes());
    bytes.resize(bytes.len() + len, b'p');
    bytes
}

struct Fuzz {
    me: Pid,
    children: Vec<Pid>,
    timers: Vec<time::Timer>,
    tickers: Vec<time::Ticker>,
    handles: Vec<abi::Mailbox>,
}

impl Fuzz {
    fn pid(&mut self, s: &mut Script) -> Pid {
        let id = u64::from(s.byte());
        // Mostly pids that may name a process; a longer host than any (which traps) rarely.
        match s.byte() % 17 {
            0..=2 => self.me.clone(),
            3..=8 => self
                .children
                .get(id as usize % self.children.len().max(1))
                .cloned()
                .unwrap_or_else(|| self.me.clone()),
            9 | 10 => Pid {
                node: None,
                host: HOST.into(),
                id,
            },
            11 => Pid {
                node: None,
                host: HOST.into(),
                id: u64::MAX - id,
            },
            12 => Pid {
                node: None,
                host: "no:such-host".into(),
                id,
            },
            13 => Pid {
                node: None,
                host: text(511, 'h'),
                id,
            },
            14 => Pid {
                node: None,
                host: String::new(),
                id,
            },
            // A pid of a node of a cluster (this node is in none), and one whose node's
            // name is longer than any (which traps).
            15 if id % 2 == 0 => Pid {
                node: Some(NodeId {
                    name: "b".into(),
                    incarnation: id,
                }),
                host: HOST.into(),
                id,
            },
            15 => Pid {
                node: Some(NodeId {
                    name: text(64, 'n'),
                    incarnation: id,
                }),
                host: HOST.into(),
                id,
            },
            _ => Pid {
                node: None,
                host: text(s.pick(&[512, 4096]), 'h'),
                id,
            },
        }
    }

    fn name(s: &mut Script) -> String {
        match s.byte() % 7 {
            0 => "a".into(),
            1 => "b".into(),
            2 => "reserved".into(),
            3 => String::new(),
            4 => text(255, 'n'),
            5 => text(256, 'n'),
            _ => text(s.size(), 'n'),
        }
    }

    /// Makes the call `op` asks for.
    fn call(&mut self, op: u8, s: &mut Script) {
        match op {
            0 => {
                let to = if s.byte().is_multiple_of(2) {
                    Destination::Pid(self.pid(s))
                } else {
                    Destination::Name(Self::name(s))
                };
                let topic = text(s.size(), 't');
                let _ = abi::send(&to, &topic, &payload(s.size()));
            }
            1 => {
                let _ = abi::Mailbox::new().try_receive_many(s.pick(&[0, 1, 32, 1024, u32::MAX]));
            }
            2 => {
                // Something to wait for first, so the wait ends.
                let me = Destination::Pid(self.me.clone());
                if abi::send(&me, "self", &payload(s.size())).is_ok() {
                    let _ = abi::Mailbox::new().receive_many(s.pick(&[1, 32, u32::MAX]));
                }
            }
            3 => self.spawn(s),
            4 => abi::monitor(&self.pid(s)),
            5 => abi::unmonitor(&self.pid(s)),
            6 => drop(abi::link(&self.pid(s))),
            7 => drop(abi::unlink(&self.pid(s))),
            8 => drop(abi::terminate(&self.pid(s))),
            9 => {
                let target = self.pid(s);
                let reason = text(s.size(), 'r');
                let _ = abi::cancel(&target, &reason, s.pick(&DURATIONS));
            }
            10 => drop(abi::register(&Self::name(s))),
            11 => drop(abi::lookup(&Self::name(s))),
            12 => drop(abi::unregister(&Self::name(s))),
            13 => self.log(s),
            14 => {
                let timer = time::Timer::new(s.pick(&DURATIONS));
                let _ = timer.fired();
                self.timers.push(timer);
            }
            15 => {
                let ticker = time::Ticker::new(s.pick(&DURATIONS));
                let _ = ticker.tick();
                self.tickers.push(ticker);
            }
            16 => {
                self.timers.pop();
                self.tickers.pop();
                self.handles.pop();
            }
            17 => self.poll(s),
            18 => abi::trap_links(s.byte().is_multiple_of(2)),
            19 => drop(abi::Events::new().try_receive()),
            20 => time::sleep(s.pick(&[0, 1, 1_000_000])),
            21 => self.aliased_spawn(s),
            22 => {
                for _ in 0..s.pick(&[1, 100, 300]) {
                    self.handles.push(abi::Mailbox::new());
                }
            }
            _ => drop(abi::self_pid()),
        }
    }

    fn spawn(&mut self, s: &mut Script) {
        let entry = match s.byte() % 4 {
            0 | 1 => SELF.to_string(),
            2 => "fuzz:nope".into(),
            _ => text(s.size(), 'e'),
        };
        let host = match s.byte() % 4 {
            0 | 1 => HOST.to_string(),
            2 => "fuzz:other".into(),
            _ => text(s.size(), 'o'),
        };
        let mut args = match s.byte() % 6 {
            0 => vec![b"exit".to_vec()],
            1 => vec![b"wait".to_vec()],
            2 => vec![b"trap".to_vec()],
            3 => vec![b"big-exit".to_vec()],
            4 => {
                let len = usize::from(s.byte());
                vec![b"script".to_vec(), s.take(len)]
            }
            _ => Vec::new(),
        };
        let (more, size) = (s.count(), s.size());
        args.extend(std::iter::repeat_n(
            vec![0u8; size.min(1 << 16)],
            more.min(1024),
        ));
        let spawned = match s.byte() % 3 {
            0 => abi::spawn(&entry, &host, &args),
            1 => abi::spawn_monitored(&entry, &host, &args),
            _ => abi::spawn_linked(&entry, &host, &args),
        };
        if let Ok(pid) = spawned {
            self.children.push(pid);
        }
    }

    /// Arguments that all point at one buffer: the host copies each.
    fn aliased_spawn(&mut self, s: &mut Script) {
        let (n, size) = (s.count(), s.size());
        let mut buffer = std::mem::ManuallyDrop::new(vec![1u8; size]);
        let (ptr, len) = (buffer.as_mut_ptr(), buffer.len());
        // SAFETY (for the fuzzer's purpose): the aliases are never dropped or written.
        let aliases: Vec<std::mem::ManuallyDrop<Vec<u8>>> = (0..n)
            .map(|_| std::mem::ManuallyDrop::new(unsafe { Vec::from_raw_parts(ptr, len, len) }))
            .collect();
        let args: &[Vec<u8>] = unsafe {
            std::slice::from_raw_parts(aliases.as_ptr().cast::<Vec<u8>>(), aliases.len())
        };
        if let Ok(pid) = abi::spawn(SELF, HOST, args) {
            self.children.push(pid);
        }
    }

    fn log(&mut self, s: &mut Script) {
        let level = s.pick(&[
            Level::Trace,
            Level::Debug,
            Level::Info,
            Level::Warn,
            Level::Error,
        ]);
        let message = text(s.size(), 'm');
        let (n, size) = (s.count(), s.size());
        let value = match s.byte() % 3 {
            0 => payload(size),
            // Nested `size` deep, with nothing inside.
            1 => {
                let mut deep = vec![0x81; size.min(1 << 16)];
                deep.push(0);
                deep
            }
            // Not CBOR.
            _ => vec![0xff; size],
        };
        let fields: Vec<(String, Vec<u8>)> = (0..n.min(2048))
            .map(|i| (format!("k{i}"), value.clone()))
            .collect();
        logger::log(level, &message, &fields);
    }

    fn poll(&mut self, s: &mut Script) {
        // A timer due at once is in every list, so the poll ends.
        let due = time::Timer::new(0);
        let ready: Pollable = due.subscribe();
        let mailbox = abi::Mailbox::new();
        let mailbox = mailbox.subscribe();
        let n = s.count().max(1);
        let mut list: Vec<&Pollable> = vec![&ready; n];
        if s.byte().is_multiple_of(2) {
            list.push(&mailbox);
        }
        let _ = poll(&list);
    }
}

struct Process;

impl Guest for Process {
    fn main(args: Vec<Vec<u8>>) -> Result<Vec<u8>, String> {
        let mode = args.first().map(Vec::as_slice).unwrap_or_default();
        match mode {
            b"exit" => return Ok(vec![0]),
            b"wait" => {
                // Until a message, an event (a cancel) or a minute.
                let mailbox = abi::Mailbox::new();
                let events = abi::Events::new();
                let timer = time::Timer::new(60_000_000_000);
                let _ = poll(&[
                    &mailbox.subscribe(),
                    &events.subscribe(),
                    &timer.subscribe(),
                ]);
                return Ok(vec![0]);
            }
            b"trap" => unreachable!("a child that traps"),
            b"big-exit" => return Ok(payload(60_000)),
            _ => {}
        }
        let script = match mode {
            b"script" => args.get(1).cloned().unwrap_or_default(),
            _ => args.concat(),
        };
        let mut s = Script {
            bytes: &script,
            at: 0,
        };
        let mut fuzz = Fuzz {
            me: abi::self_pid(),
            children: Vec::new(),
            timers: Vec::new(),
            tickers: Vec::new(),
            handles: Vec::new(),
        };
        let (mut calls, mut slowest, mut slowest_op) = (0u64, 0u64, 0u8);
        while !s.done() {
            let op = s.byte() % 24;
            let start = Instant::now();
            fuzz.call(op, &mut s);
            let took = start.elapsed().as_nanos() as u64;
            calls += 1;
            // A call that may wait (a sleep, a poll, a receive) takes its wait and its turn
            // after it; the others do only work, and only they are timed.
            if !WAITS.contains(&op) && took > slowest {
                (slowest, slowest_op) = (took, op);
            }
        }
        // [calls, slowest, op]: an array of three unsigned integers.
        let mut out = vec![0x83];
        for n in [calls, slowest, u64::from(slowest_op)] {
            out.push(0x1b);
            out.extend_from_slice(&n.to_be_bytes());
        }
        Ok(out)
    }
}

export!(Process);
