// Param initialisation: fills a param from its manifest InitSpec (zeros, ones, constant, normal, uniform, he,
// xavier) using the module's seeded Rng. The seeding order is documented on initParams below.

import type { InitSpec } from "./manifest.js";
import { KilnError } from "./errors.js";
import { Rng } from "./rng.js";

/**
 * Seeding (as done by loadKilnModule): ONE Rng seeded by `options.seed` (default 0); params are initialised in
 * manifest order, each drawing its elements in row-major order from that single stream (normal/he use Box–Muller
 * pairs, uniform/xavier one draw per element); zeros/ones/constant draw nothing. Params given in `options.params`
 * still draw (then are overwritten), so the other params never depend on which ones were overridden.
 */
export function initParams(
  params: readonly { name: string; init: InitSpec; numel: number }[],
  seed: number,
  use: (index: number, values: Float64Array) => void,
): void {
  const rng = new Rng(seed);
  // Masters' values by name, for the mixed-precision copies that follow them (which draw nothing).
  const masters = new Map<string, Float64Array>();
  const copied = new Set(params.flatMap((p) => (p.init.kind === "copy" ? [p.init.of] : [])));
  params.forEach((p, i) => {
    const values = new Float64Array(p.numel);
    if (p.init.kind === "copy") {
      const m = masters.get(p.init.of);
      if (!m || m.length !== p.numel) throw new KilnError(`param "${p.name}": copy of "${p.init.of}", which is not an earlier param of ${p.numel} elements`, { code: "bad_manifest", tensor: p.name });
      values.set(m);
    } else fillInit(p.init, values, rng, p.name);
    // Through f32 first: the copy is what the f32 master holds, rounded to 16 bits.
    if (copied.has(p.name)) masters.set(p.name, Float64Array.from(values, Math.fround));
    use(i, values);
  });
}

/** Fills `out` (as numbers, before any dtype conversion) according to `init`. */
export function fillInit(init: InitSpec, out: Float64Array, rng: Rng, paramName: string): void {
  const n = out.length;
  switch (init.kind) {
    case "zeros":
      out.fill(0);
      return;
    case "ones":
      out.fill(1);
      return;
    case "constant":
      out.fill(init.value);
      return;
    case "normal":
      for (let i = 0; i < n; i++) out[i] = rng.normal(init.mean, init.std);
      return;
    case "uniform":
      for (let i = 0; i < n; i++) out[i] = rng.uniform(init.low, init.high);
      return;
    case "he": {
      checkFan(init.fanIn, "fanIn", paramName);
      const std = Math.sqrt(2 / init.fanIn);
      for (let i = 0; i < n; i++) out[i] = rng.normal(0, std);
      return;
    }
    case "xavier": {
      checkFan(init.fanIn, "fanIn", paramName);
      checkFan(init.fanOut, "fanOut", paramName);
      const limit = Math.sqrt(6 / (init.fanIn + init.fanOut));
      for (let i = 0; i < n; i++) out[i] = rng.uniform(-limit, limit);
      return;
    }
    case "copy":
      throw new KilnError(`param "${paramName}": a mixed-precision copy of "${init.of}" is derived by initParams, not drawn`, { code: "bad_manifest", tensor: paramName });
    default:
      throw new KilnError(`param "${paramName}": unknown init kind ${JSON.stringify((init as { kind: unknown }).kind)}`, { code: "bad_manifest", tensor: paramName });
  }
}

function checkFan(v: number, what: string, paramName: string): void {
  if (!(Number.isFinite(v) && v > 0)) {
    throw new KilnError(`param "${paramName}": init ${what} must be a positive number, got ${v}`, { code: "bad_manifest", tensor: paramName });
  }
}
