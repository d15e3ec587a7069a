// A compiled example imported from a temporary directory by a separate Node process: the generated module runs
// with only its own folder (module + kiln-runtime/), and no file there imports the compiler or anything outside.
import { describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { main } from "../../compiler/cli/main.js";

function jsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? jsFiles(p) : p.endsWith(".js") ? [p] : [];
  });
}

describe("generated module without the compiler (--standalone)", () => {
  it("mlp.js runs from a temp dir in a child process and matches the in-process run", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kiln-gen-"));
    const quiet = () => {};
    expect(await main(["compile", "dsl-examples/mlp.kiln", "--standalone", "--out", join(dir, "mlp")], quiet, quiet)).toBe(0);
    for (const f of jsFiles(dir)) {
      const src = readFileSync(f, "utf8");
      const specs = [...src.matchAll(/(?:import|export)[^"']*?from\s*["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)/g)].map((m) => m[1] ?? m[2]);
      for (const s of specs) {
        if (s.startsWith("node:")) continue;
        expect(s.startsWith("./") || s.startsWith("../"), `${f} imports ${s}`).toBe(true);
        expect(resolve(join(f, ".."), s).startsWith(dir), `${f} imports ${s} outside the module folder`).toBe(true);
        expect(s).not.toMatch(/compiler/);
      }
    }
    writeFileSync(
      join(dir, "use.mjs"),
      `import { load } from "./mlp/mlp.js";
       const mlp = await load({ seed: 2 });
       const x = new Float32Array(3 * 784).map((_, i) => Math.sin(i));
       const y = mlp.forward({ x }, { batch: 3 });
       console.log(JSON.stringify({ shape: y.shape, data: Array.from(y.data) }));`,
    );
    const out = JSON.parse(execFileSync(process.execPath, ["use.mjs"], { cwd: dir, encoding: "utf8" }));
    expect(out.shape).toEqual([3, 10]);
    const { irOf, runBoth } = await import("../helpers/backend.js");
    const ir = irOf(readFileSync("dsl-examples/mlp.kiln", "utf8"));
    const x = Array.from({ length: 3 * 784 }, (_, i) => Math.fround(Math.sin(i)));
    const { ref } = await runBoth(ir, "MLP.forward", { x: { dtype: "f32", shape: [3, 784], data: x } }, { seed: 2 });
    out.data.forEach((v: number, i: number) => expect(Math.abs(v - ref[0].data[i])).toBeLessThan(1e-4));
  });
});
