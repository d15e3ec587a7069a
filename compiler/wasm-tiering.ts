// Binaryen is a large wasm module: while it builds and optimises kernels, V8 tiers its hot functions up with
// TurboFan in the background, which costs more CPU than the build itself (mlp.kiln: ~3.2 s of CPU with tier-up,
// ~1.6 s without). While a build runs only the baseline compiler (Liftoff) compiles wasm; V8's default tiering
// is restored when the last build ends, so the kernels the runtime compiles afterwards get TurboFan as always.

import v8 from "node:v8";

const WASM_TIERING_FLAGS = /--(no-)?(liftoff|liftoff-only|wasm-tier-up|wasm-dynamic-tiering)\b/;
let active = 0;

/** Off when the process was started with its own wasm tiering flags (they stay as given) or KILN_BINARYEN_TIERUP=1. */
function enabled(): boolean {
  if (process.env.KILN_BINARYEN_TIERUP === "1") return false;
  return ![...process.execArgv, process.env.NODE_OPTIONS ?? ""].some((a) => WASM_TIERING_FLAGS.test(a));
}

/** Runs `build` (which uses Binaryen) with wasm compiled by Liftoff only. */
export async function withBaselineWasm<T>(build: () => Promise<T>): Promise<T> {
  if (!enabled()) return build();
  if (active++ === 0) v8.setFlagsFromString("--liftoff-only");
  try {
    return await build();
  } finally {
    // Every flag --liftoff-only implies off is set back to V8's default (a wasm module compiled meanwhile, e.g.
    // by a concurrent load, runs correctly, only on baseline code).
    if (--active === 0) for (const f of ["--no-liftoff-only", "--liftoff", "--wasm-tier-up", "--wasm-dynamic-tiering"]) v8.setFlagsFromString(f);
  }
}
