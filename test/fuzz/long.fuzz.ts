// Fuzz suite, the long opt-in run: `npm run fuzz` (KILN_FUZZ_MINUTES, default 10; KILN_FUZZ_SEED to replay).
// Same properties as fuzz.test.ts with fresh seeds and time budgets; not matched by `npm test` (vitest.config.ts
// takes *.test.ts only). A failure prints its seed and counterexample: keep it in test/fuzz/regressions/.
import fc from "fast-check";
import { afterAll, beforeAll, describe, it } from "vitest";
import { buildWasm, compileToIR } from "../../compiler/compile.js";
import { loadKilnModule, type KilnModule } from "../../runtime/wasm/module.js";
import { badLossCall, hostileSource, SEED_PROGRAMS, validProgram } from "./arbitraries.js";
import { checkAgreement, checkCompilerTotal, checkRejected, runnableVariants } from "./properties.js";

const minutes = Number(process.env.KILN_FUZZ_MINUTES ?? 10);
const seed = Number(process.env.KILN_FUZZ_SEED ?? Date.now() % 2 ** 31);
const variants = runnableVariants();
// Half the time for the compiler, half for the builds (split between variants), a sliver for calls.
const budget = (share: number) => Math.max(5_000, Math.floor(minutes * 60_000 * share));
const slow: { ms: number; src: string }[] = [];
const runs: Record<string, number> = {};
const count = (what: string) => void (runs[what] = (runs[what] ?? 0) + 1);
afterAll(() => console.log(`long fuzz, seed ${seed}: cases run per property ${JSON.stringify(runs)}`));

describe(`long fuzz (seed ${seed}, ${minutes} min)`, () => {
  it("hostile sources", async () => {
    await fc.assert(
      fc.asyncProperty(hostileSource, async (src) => {
        count("hostile");
        const t0 = performance.now();
        await checkCompilerTotal(src, src.length < 4000);
        const ms = performance.now() - t0;
        if (ms > 5_000) slow.push({ ms, src: src.slice(0, 300) });
      }),
      { seed, numRuns: Number.MAX_SAFE_INTEGER, interruptAfterTimeLimit: budget(0.45) },
    );
    // Slow is not wrong, but it is what the next limit would be about: report it.
    for (const s of slow) console.log(`slow case (${Math.round(s.ms)} ms): ${JSON.stringify(s.src)}`);
  }, budget(0.45) + 600_000);

  for (const v of variants) {
    it(`wasm agrees with the reference: ${v.name}`, async () => {
      await fc.assert(fc.asyncProperty(validProgram, (c) => (count(v.name), checkAgreement(c, v))), {
        seed, numRuns: Number.MAX_SAFE_INTEGER, interruptAfterTimeLimit: budget(0.5 / variants.length),
      });
    }, budget(0.5 / variants.length) + 600_000);
  }

  describe("bad calls", () => {
    let mod: KilnModule;
    beforeAll(async () => {
      const b = await buildWasm(compileToIR(SEED_PROGRAMS[1]!, "fuzz.kiln").ir!, "fuzz");
      mod = await loadKilnModule(b.manifest, b.wasm);
    }, 120_000);
    it("are KilnErrors", () => {
      fc.assert(fc.property(badLossCall, (c) => {
        count("bad calls");
        checkRejected(mod, "M.loss", c.what, c.inputs, "opts" in c ? c.opts : undefined);
        checkRejected(mod, "T.step", c.what, c.inputs, "opts" in c ? c.opts : undefined);
      }), { seed, numRuns: 5_000 });
    }, 600_000);
  });
});
