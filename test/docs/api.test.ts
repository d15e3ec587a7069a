// The runtime API reference: `npm run docs` (typedoc + typedoc-plugin-markdown over runtime/index.ts, typedoc.json)
// must build without warnings, with a page for each main entry point a user of a compiled module meets.
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

describe("npm run docs", () => {
  it("writes the runtime API reference as markdown, warning-free", () => {
    const out = mkdtempSync(join(tmpdir(), "kiln-api-"));
    const r = spawnSync(process.execPath, [resolve("node_modules/typedoc/bin/typedoc"), "--out", out], { encoding: "utf8", timeout: 300_000 });
    const log = `${r.stdout}\n${r.stderr}`;
    expect(r.status, log).toBe(0);
    expect(log).not.toMatch(/\[warning\]|\[error\]/);
    for (const page of ["classes/Tensor.md", "classes/KilnModule.md", "classes/KilnGpuModule.md", "classes/DataLoader.md", "classes/KilnError.md",
      "classes/ProgressBar.md", "functions/loadWeights.md", "functions/readCsv.md", "functions/trainingPlotSvg.md", "interfaces/LoadOptions.md"]) {
      expect(existsSync(join(out, page)), page).toBe(true);
    }
    // Doc comments come through: a reader's option, the index page.
    expect(readFileSync(join(out, "interfaces/CsvOptions.md"), "utf8")).toContain("labelColumn");
    expect(readFileSync(join(out, "README.md"), "utf8")).toContain("# Kiln runtime API");
  }, 300_000);
});
