// Fuzz suite, the bounded run inside `npm test`: fixed seeds and small budgets (about a minute on 2 cores).
// `npm run fuzz` runs the same properties longer with fresh seeds (test/fuzz/long.fuzz.ts); cases it finds
// are kept in test/fuzz/regressions/ and replayed here.
import fc from "fast-check";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, it } from "vitest";
import { buildWasm, compileToIR } from "../../compiler/compile.js";
import { loadKilnModule, type KilnModule } from "../../runtime/wasm/module.js";
import { badLossCall, hostileSource, SEED_PROGRAMS, validProgram } from "./arbitraries.js";
import { checkAgreement, checkCompilerTotal, checkRejected, runnableVariants } from "./properties.js";

const SEED = 15;
const regressions = fileURLToPath(new URL("./regressions/", import.meta.url));

describe("fuzz (bounded, seed 15)", () => {
  it("the compiler answers every hostile source with diagnostics", async () => {
    await fc.assert(fc.asyncProperty(hostileSource, async (src) => void (await checkCompilerTotal(src))), { seed: SEED, numRuns: 150 });
  }, 300_000);

  it("the seed programs compile and build", async () => {
    for (const src of SEED_PROGRAMS) await checkCompilerTotal(src, true);
  });

  for (const v of runnableVariants()) {
    it(`valid programs agree with the float64 reference: ${v.name}`, async () => {
      await fc.assert(fc.asyncProperty(validProgram, (c) => checkAgreement(c, v)), { seed: SEED, numRuns: 6 });
    }, 300_000);
  }

  describe("bad calls are KilnErrors", () => {
    let mod: KilnModule;
    beforeAll(async () => {
      const ir = compileToIR(SEED_PROGRAMS[1]!, "fuzz.kiln").ir!;
      const b = await buildWasm(ir, "fuzz");
      mod = await loadKilnModule(b.manifest, b.wasm);
    });
    it("M.loss and T.step", async () => {
      fc.assert(fc.property(badLossCall, (c) => {
        checkRejected(mod, "M.loss", c.what, c.inputs, "opts" in c ? c.opts : undefined);
        checkRejected(mod, "T.step", c.what, c.inputs, "opts" in c ? c.opts : undefined);
      }), { seed: SEED, numRuns: 60 });
    });
  });

  it("regression cases found by fuzzing", async () => {
    for (const f of readdirSync(regressions).filter((n) => n.endsWith(".kiln"))) {
      await checkCompilerTotal(readFileSync(join(regressions, f), "utf8"), true);
    }
  }, 300_000);
});
