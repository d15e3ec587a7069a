// End to end in headless Chromium: the demo page dsl-examples/browser/ loads the MLP compiled with --target all
// from a local server, runs MLP.predict on WebGPU (SwiftShader) and, with ?backend=wasm, on wasm; both must match
// the wasm backend in Node. Skips, saying why, when Chromium is not installed (CI installs Debian's).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Browser } from "playwright-core";
import { main } from "../../compiler/cli/main.js";
import { irOf, wasmModule } from "../helpers/backend.js";
import type { Tensor } from "../../runtime/tensor.js";
import { ensureRuntimeBuilt } from "./helpers.js";

const CHROMIUM = process.env.KILN_CHROMIUM ?? "/usr/bin/chromium";
const FLAGS = ["--no-sandbox", "--enable-unsafe-webgpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"];
const skip = existsSync(CHROMIUM) ? undefined : `${CHROMIUM} is not installed (apt-get install chromium, or set KILN_CHROMIUM)`;
if (skip && process.env.KILN_REQUIRE_WEBGPU === "1") throw new Error(`KILN_REQUIRE_WEBGPU=1 but ${skip}`);
if (skip) console.warn(`[webgpu] SKIPPING the browser end-to-end test: ${skip}`);

interface PageResult { backend?: string; probs?: number[]; error?: string }

describe.skipIf(skip !== undefined)("the MLP in headless Chromium", () => {
  let dir = "";
  let server: { url: string; close(): Promise<void> } | undefined;
  let browser: Browser | undefined;

  beforeAll(async () => {
    ensureRuntimeBuilt();
    dir = mkdtempSync(join(tmpdir(), "kiln-browser-"));
    const quiet = () => {};
    expect(await main(["compile", "dsl-examples/mlp.kiln", "--target", "all", "--standalone", "--out", join(dir, "mlp")], quiet, quiet)).toBe(0);
    const { serve } = (await import(resolve("dsl-examples/browser/serve.mjs"))) as { serve(o: object): Promise<{ url: string; close(): Promise<void> }> };
    server = await serve({ root: resolve("."), mounts: { "/build/mlp/": join(dir, "mlp") } });
    const { chromium } = await import("playwright-core");
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: FLAGS });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function runPage(query: string): Promise<PageResult> {
    const page = await browser!.newPage();
    const logs: string[] = [];
    page.on("console", (m) => logs.push(m.text()));
    page.on("pageerror", (e) => logs.push(String(e)));
    try {
      await page.goto(`${server!.url}dsl-examples/browser/${query}`);
      await page.waitForFunction(() => document.body.dataset.kiln !== undefined, undefined, { timeout: 60_000 });
      return JSON.parse((await page.evaluate(() => document.body.dataset.kiln))!) as PageResult;
    } catch (e) {
      throw new Error(`${(e as Error).message}\npage console:\n${logs.join("\n")}`);
    } finally {
      await page.close();
    }
  }

  /** The page's first input (a diagonal stroke of 2x2 squares) through MLP.predict on wasm in Node. */
  async function expected(): Promise<number[]> {
    const x = new Float32Array(784);
    for (let i = 4; i < 24; i++) for (const [r, c] of [[i, i], [i, i + 1], [i + 1, i], [i + 1, i + 1]]) x[r! * 28 + c!] = 1;
    const m = await wasmModule(irOf(readFileSync("dsl-examples/mlp.kiln", "utf8")), 1);
    return Array.from((m.call("MLP.predict", { x }, { batch: 1 }) as Tensor).data as Float32Array);
  }

  it("runs on WebGPU (SwiftShader) and on wasm, both matching Node", async () => {
    const want = await expected();
    const gpu = await runPage("");
    expect(gpu.error).toBeUndefined();
    console.log(`[webgpu] browser page: ${gpu.backend}`);
    expect(gpu.backend).toMatch(/^WebGPU on /);
    const wasm = await runPage("?backend=wasm");
    expect(wasm.backend).toBe("wasm");
    for (const r of [gpu, wasm]) r.probs!.forEach((p, k) => expect(Math.abs(p - want[k]!), `${r.backend} class ${k}`).toBeLessThan(1e-5));
  }, 120_000);
});
