// Bundles one guest (its app.js, the wasmhost library and cbor-x) into one ES module for
// componentize-js; the WIT imports stay imports. scripts/build-js-guests.sh sets GUEST.
import { fileURLToPath } from "node:url";

const here = (path) => fileURLToPath(new URL(path, import.meta.url));

export default {
  input: here(`./${process.env.GUEST}/app.js`),
  external: [/^wasmhost:/, /^wasi:/],
  resolve: { alias: { wasmhost: here("./wasmhost/index.js") } },
  platform: "neutral",
  output: { file: process.env.BUNDLE, format: "esm" },
};
