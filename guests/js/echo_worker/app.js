// The echo worker (worker.lua) in JavaScript: spawned once per message, answers the sender
// directly with the data upper-cased and its own pid.

import { entry, Pid, process, time } from "wasmhost";

export const main = entry((sender, data) => {
  time.sleep("100ms");
  process.send(Pid.parse(sender), "echo_response", {
    data: data.toUpperCase(),
    worker: process.pid(),
  });
  return 0;
});
