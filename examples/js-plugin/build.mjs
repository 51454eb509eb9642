// Builds store.js into a WebAssembly component with ComponentizeJS, from
// the WIT contract every plugin implements (world backend-core):
//
//   node build.mjs store.js ../../plugin-sdk/wit js_store.wasm
//
// The component needs nothing of WASI but what vsamrd grants every plugin;
// the features a JavaScript engine could import (clocks, randomness, the
// console, HTTP) are left out.
import { componentize } from '@bytecodealliance/componentize-js';
import { writeFile } from 'node:fs/promises';

const [source, wit, out] = process.argv.slice(2);
if (!out) {
  console.error('usage: node build.mjs SOURCE.js WIT-DIRECTORY OUTPUT.wasm');
  process.exit(2);
}
const { component } = await componentize({
  sourcePath: source,
  witPath: wit,
  worldName: 'backend-core',
  disableFeatures: ['random', 'stdio', 'clocks', 'http', 'fetch-event'],
});
await writeFile(out, component);
