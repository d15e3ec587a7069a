// kiln export --format bundle in headless Chromium: a page served next to nothing but the bundle imports it and
// runs MLP.predict on wasm and (where the browser offers an adapter: SwiftShader) on WebGPU; both must match the
// compiled module in Node. Skips, saying why, when Chromium is not installed (CI installs Debian's).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { existsSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Browser } from "playwright-core";
import { closeness, kiln, lcg, moduleWithWeights, tmp } from "./helpers.js";
import type { KilnModule } from "../../runtime/wasm/module.js";

const CHROMIUM = process.env.KILN_CHROMIUM ?? "/usr/bin/chromium";
const FLAGS = ["--no-sandbox", "--enable-unsafe-webgpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"];
const skip = existsSync(CHROMIUM) ? undefined : `${CHROMIUM} is not installed (apt-get install chromium, or set KILN_CHROMIUM)`;
if (skip && process.env.KILN_REQUIRE_WEBGPU === "1") throw new Error(`KILN_REQUIRE_WEBGPU=1 but ${skip}`);
if (skip) console.warn(`[export] SKIPPING the bundle browser test: ${skip}`);

const X = lcg(2 * 784, 21);

// The page: imports the bundle by URL, runs on wasm, then on WebGPU when navigator.gpu gives an adapter.
const PAGE = `<!doctype html><meta charset="utf-8"><title>kiln bundle</title><script type="module">
const out = {};
try {
  const b = await import("./mlp.bundle.js");
  const x = Float32Array.from(${JSON.stringify(Array.from(X))});
  const m = await b.load();
  out.wasm = Array.from(m.call("MLP.predict", { x }, { batch: 2 }).data);
  if (navigator.gpu && (await navigator.gpu.requestAdapter())) {
    const g = await b.load({ backend: "webgpu" });
    out.webgpu = Array.from((await g.call("MLP.predict", { x }, { batch: 2 }).read()).data);
  }
} catch (e) { out.error = String(e && e.stack || e); }
document.body.dataset.kiln = JSON.stringify(out);
</script>`;

describe.skipIf(skip !== undefined)("a bundle loaded by a web page", () => {
  let dir = "";
  let mod: KilnModule;
  let server: { url: string; close(): Promise<void> } | undefined;
  let browser: Browser | undefined;

  beforeAll(async () => {
    dir = tmp();
    const made = await moduleWithWeights("dsl-examples/mlp.kiln", 9, dir);
    mod = made.mod;
    const site = join(dir, "site");
    const r = await kiln("export", "dsl-examples/mlp.kiln", "--format", "bundle", "--weights", made.weights, "--out", join(site, "mlp.bundle.js"));
    if (r.code !== 0) throw new Error(r.err);
    writeFileSync(join(site, "index.html"), PAGE);
    const { serve } = (await import(resolve("dsl-examples/browser/serve.mjs"))) as { serve(o: object): Promise<{ url: string; close(): Promise<void> }> };
    server = await serve({ root: site });
    const { chromium } = await import("playwright-core");
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: FLAGS });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("runs MLP.predict from the one file on wasm (and WebGPU where offered), matching Node", async () => {
    const page = await browser!.newPage();
    const logs: string[] = [];
    page.on("console", (m) => logs.push(m.text()));
    page.on("pageerror", (e) => logs.push(String(e)));
    let res: { wasm?: number[]; webgpu?: number[]; error?: string };
    try {
      await page.goto(server!.url);
      await page.waitForFunction(() => document.body?.dataset.kiln !== undefined, undefined, { timeout: 60_000 });
      res = JSON.parse((await page.evaluate(() => document.body.dataset.kiln))!);
    } catch (e) {
      throw new Error(`${(e as Error).message}\npage console:\n${logs.join("\n")}`);
    } finally {
      await page.close();
    }
    expect(res.error).toBeUndefined();
    const want = (mod.call("MLP.predict", { x: X }, { batch: 2 }) as { data: Float32Array }).data;
    expect(closeness(res.wasm!, want, 1e-6, 1e-7)).toBeLessThanOrEqual(1);
    console.log(`[export] bundle in Chromium: wasm${res.webgpu ? " and WebGPU" : " (no WebGPU adapter in this browser)"}`);
    if (res.webgpu) expect(closeness(res.webgpu, want, 1e-4, 1e-6)).toBeLessThanOrEqual(1);
    if (process.env.KILN_REQUIRE_WEBGPU === "1") expect(res.webgpu, "KILN_REQUIRE_WEBGPU=1: the page found no WebGPU adapter").toBeDefined();
  }, 120_000);
});
