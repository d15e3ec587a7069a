#!/usr/bin/env node
// Entry point of the `kiln` command: runs the compiled CLI from dist/ (built by `npm install` / `npm run build`).
import { existsSync } from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";
import { dirname, join } from "node:path";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const cli = join(root, "dist", "compiler", "cli", "main.js");
if (!existsSync(cli)) {
  console.error("kiln: the compiler is not built (dist/compiler/cli/main.js is missing). Run `npm install` or `npm run build` in " + root);
  process.exit(2);
}
const { main } = await import(pathToFileURL(cli).href);
process.exitCode = await main(process.argv.slice(2));
