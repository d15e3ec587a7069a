// Golden fixtures: test/fixtures/NAME.kiln with its expected IR text (NAME.ir) or, for bad programs, its
// expected diagnostics text (NAME.diag). Run with KILN_UPDATE_FIXTURES=1 to regenerate on purpose; otherwise a
// mismatch fails with a line diff. The dsl-examples are golden-tested the same way (expected IR next to them
// in test/fixtures/examples/).
import { describe, expect, it } from "vitest";
import { readdirSync, readFileSync, mkdirSync } from "node:fs";
import { basename, join } from "node:path";
import { compileToIR } from "../compiler/compile.js";
import { formatDiagnostics } from "../compiler/diagnostics.js";
import { printModule } from "../compiler/ir/print.js";
import { golden, UPDATE } from "./helpers/golden.js";


function render(src: string, file: string): { kind: "ir" | "diag"; text: string } {
  const r = compileToIR(src, file, ["lower"]);
  if (r.ir) return { kind: "ir", text: r.dumps[0].text + "\n// after every pass (autodiff, expand, simplify, fusion)\n" + printModule(r.ir) };
  return { kind: "diag", text: formatDiagnostics(r.diagnostics, { [file]: src }) + "\n" };
}

describe("golden fixtures", () => {
  const dir = "test/fixtures";
  for (const f of readdirSync(dir).filter((x) => x.endsWith(".kiln")).sort()) {
    it(f, () => {
      const path = join(dir, f);
      const out = render(readFileSync(path, "utf8"), path);
      const expectBad = f.startsWith("bad-");
      expect(out.kind, `${f}: ${out.text}`).toBe(expectBad ? "diag" : "ir");
      golden(path.replace(/\.kiln$/, "." + out.kind), out.text);
    });
  }
});

describe("dsl-examples compile to the expected IR", () => {
  const outDir = "test/fixtures/examples";
  if (UPDATE) mkdirSync(outDir, { recursive: true });
  for (const f of readdirSync("dsl-examples").filter((x) => x.endsWith(".kiln")).sort()) {
    it(f, () => {
      const path = join("dsl-examples", f);
      const out = render(readFileSync(path, "utf8"), path);
      expect(out.kind, out.text).toBe("ir");
      golden(join(outDir, basename(f, ".kiln") + ".ir"), out.text);
    });
  }
});
