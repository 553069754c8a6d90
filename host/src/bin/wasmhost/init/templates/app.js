// A wasmhost process: prints a greeting with its pid on the terminal, and ends.

import { entry, io, process } from "wasmhost";

export const main = entry(() => {
  io.print(`Hello from JavaScript! I am ${process.pid()}.`);
  return 0;
});
