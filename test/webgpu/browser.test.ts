// End to end in headless Chromium: the demo page dsl-examples/browser/ loads the MLP compiled with --target all
// and the weights shipped beside it (trained by kiln train), a digit is drawn on it with the mouse, and the page
// must recognise it on WebGPU (SwiftShader) and on wasm (?backend=wasm, which the page must say), matching the wasm
// backend in Node on the page's own input; without a compiled model it must say how to compile one. It writes a
// screenshot to build/screenshots/browser-demo.png (and -missing.png). Skips, saying why, when Chromium is not installed (CI
// installs Debian's).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Browser, Page } from "playwright-core";
import { main } from "../../compiler/cli/main.js";
import { irOf, wasmModule } from "../helpers/backend.js";
import type { Tensor } from "../../runtime/tensor.js";
import { loadWeights } from "../../runtime/quantize/io.js";
import { ensureRuntimeBuilt } from "./helpers.js";

const CHROMIUM = process.env.KILN_CHROMIUM ?? "/usr/bin/chromium";
const FLAGS = ["--no-sandbox", "--enable-unsafe-webgpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"];
const skip = existsSync(CHROMIUM) ? undefined : `${CHROMIUM} is not installed (apt-get install chromium, or set KILN_CHROMIUM)`;
if (skip && process.env.KILN_REQUIRE_WEBGPU === "1") throw new Error(`KILN_REQUIRE_WEBGPU=1 but ${skip}`);
if (skip) console.warn(`[webgpu] SKIPPING the browser end-to-end test: ${skip}`);

interface PageResult { backend?: string; fallback?: string; digit?: number; probs?: number[]; input?: number[]; error?: string }
type Server = { url: string; close(): Promise<void> };

describe.skipIf(skip !== undefined)("the digits demo in headless Chromium", () => {
  let dir = "";
  let server: Server | undefined;
  let bare: Server | undefined;
  let browser: Browser | undefined;

  beforeAll(async () => {
    ensureRuntimeBuilt();
    dir = mkdtempSync(join(tmpdir(), "kiln-browser-"));
    const quiet = () => {};
    expect(await main(["compile", "dsl-examples/mlp.kiln", "--target", "all", "--standalone", "--out", join(dir, "mlp")], quiet, quiet)).toBe(0);
    mkdirSync(join(dir, "empty"));
    const { serve } = (await import(resolve("dsl-examples/browser/serve.mjs"))) as { serve(o: object): Promise<Server> };
    server = await serve({ root: resolve("."), mounts: { "/build/mlp/": join(dir, "mlp") } });
    bare = await serve({ root: resolve("."), mounts: { "/build/mlp/": join(dir, "empty") } });
    const { chromium } = await import("playwright-core");
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: FLAGS });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await bare?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function open(url: string, logs: string[]): Promise<Page> {
    const page = await browser!.newPage({ viewport: { width: 760, height: 640 } });
    page.on("console", (m) => logs.push(m.text()));
    page.on("pageerror", (e) => logs.push(String(e)));
    await page.goto(url);
    return page;
  }

  /** Draws a polyline (in the pad's 280x280 pixels) with the mouse and waits for the prediction it triggers. */
  async function draw(page: Page, stroke: Array<[number, number]>): Promise<PageResult> {
    const before = JSON.parse((await page.evaluate(() => document.body.dataset.kiln)) ?? "{}").n ?? 0;
    const box = (await page.locator("#pad").boundingBox())!;
    const at = ([x, y]: [number, number]) => [box.x + (x * box.width) / 280, box.y + (y * box.height) / 280] as const;
    await page.mouse.move(...at(stroke[0]!));
    await page.mouse.down();
    for (const p of stroke.slice(1)) await page.mouse.move(...at(p), { steps: 8 });
    await page.mouse.up();
    await page.waitForFunction((n) => JSON.parse(document.body.dataset.kiln ?? "{}").n > n, before, { timeout: 30_000 });
    return JSON.parse((await page.evaluate(() => document.body.dataset.kiln))!) as PageResult;
  }

  async function drawOne(query: string, screenshot?: string, withoutWebGPU = false): Promise<PageResult> {
    const logs: string[] = [];
    const page = await browser!.newPage({ viewport: { width: 760, height: 640 } });
    // A browser without WebGPU: navigator.gpu is absent, as in Firefox or an older Safari.
    if (withoutWebGPU) await page.addInitScript(() => Object.defineProperty(Navigator.prototype, "gpu", { get: () => undefined }));
    page.on("console", (m) => logs.push(m.text()));
    page.on("pageerror", (e) => logs.push(String(e)));
    await page.goto(`${server!.url}dsl-examples/browser/${query}`);
    try {
      await page.waitForFunction(() => document.body.dataset.ready !== undefined || document.body.dataset.kiln !== undefined, undefined, { timeout: 60_000 });
      const one = await draw(page, [[140, 40], [146, 240]]);
      if (screenshot) {
        await page.click("#clear");
        const seven = await draw(page, [[70, 60], [210, 60], [120, 240]]);
        expect(seven.digit, "a drawn 7").toBe(7);
        mkdirSync("build/screenshots", { recursive: true });
        await page.screenshot({ path: screenshot, fullPage: true });
        console.log(`[webgpu] browser demo screenshot: ${resolve(screenshot)}`);
      }
      const shown = await page.locator("#backend").textContent();
      return { ...one, backendLine: shown } as PageResult & { backendLine: string };
    } catch (e) {
      throw new Error(`${(e as Error).message}\npage console:\n${logs.join("\n")}`);
    } finally {
      await page.close();
    }
  }

  /** MLP.predict in Node (wasm) with the shipped weights, on the input the page built from its drawing. */
  async function nodePredict(input: number[]): Promise<number[]> {
    const m = await wasmModule(irOf(readFileSync("dsl-examples/mlp.kiln", "utf8")), 1);
    await loadWeights(m, new Uint8Array(readFileSync("dsl-examples/browser/mlp.safetensors")));
    return Array.from((m.call("MLP.predict", { x: Float32Array.from(input) }, { batch: 1 }) as Tensor).data as Float32Array);
  }

  it("recognises a drawn 1 (and 7) on WebGPU and on wasm, matching Node, and says where it runs", async () => {
    const gpu = (await drawOne("", "build/screenshots/browser-demo.png")) as PageResult & { backendLine: string };
    expect(gpu.error).toBeUndefined();
    console.log(`[webgpu] browser page: ${gpu.backend}`);
    expect(gpu.backend).toMatch(/^WebGPU \(/);
    expect(gpu.backendLine).toBe(`Running on ${gpu.backend}`);
    expect(gpu.digit).toBe(1);
    const wasm = (await drawOne("?backend=wasm")) as PageResult & { backendLine: string };
    expect(wasm.backend).toBe("WebAssembly");
    expect(wasm.backendLine).toBe("Running on WebAssembly; WebGPU is not used: ?backend=wasm asked for it");
    expect(wasm.digit).toBe(1);
    const none = (await drawOne("", undefined, true)) as PageResult & { backendLine: string };
    expect(none.backend).toBe("WebAssembly");
    expect(none.fallback).toMatch(/WebGPU|navigator\.gpu/);
    expect(none.backendLine).toBe(`Running on WebAssembly; WebGPU is not used: ${none.fallback}`);
    expect(none.digit).toBe(1);
    for (const r of [gpu, wasm]) {
      const want = await nodePredict(r.input!);
      r.probs!.forEach((p, k) => expect(Math.abs(p - want[k]!), `${r.backend} class ${k}`).toBeLessThan(1e-4));
    }
  }, 180_000);

  it("without a compiled model: a clear error saying how to compile it", async () => {
    const logs: string[] = [];
    const page = await open(`${bare!.url}dsl-examples/browser/`, logs);
    try {
      await page.waitForFunction(() => document.body.dataset.kiln !== undefined, undefined, { timeout: 30_000 });
      const r = JSON.parse((await page.evaluate(() => document.body.dataset.kiln))!) as PageResult;
      expect(r.error).toMatch(/The compiled model is missing/);
      expect(await page.locator("#error").isVisible()).toBe(true);
      expect(await page.locator("#error").textContent()).toContain("npx kiln compile dsl-examples/mlp.kiln --target all --out build/mlp");
      expect(await page.locator("#pad").isVisible()).toBe(false);
      mkdirSync("build/screenshots", { recursive: true });
      await page.screenshot({ path: "build/screenshots/browser-demo-missing.png" });
    } finally {
      await page.close();
    }
  }, 60_000);
});
