// The echo worker without its 100 ms sleep, for benchmarks: answers the sender at once.

import { entry, Pid, process } from "wasmhost";

export const main = entry((sender, data) => {
  process.send(Pid.parse(sender), "echo_response", {
    data: data.toUpperCase(),
    worker: process.pid(),
  });
  return 0;
});
