// The tutorial's app (dsl-examples/tutorial-app, docs/tutorial.md) end to end: kiln train on its CSV, kiln compile
// --target all into src/model, vite build, then headless Chromium opens dist/ and must name the species of a
// typed-in flower with the trained weights, on WebGPU (SwiftShader). Writes build/screenshots/tutorial-app.png.
// Skips, saying why, when Chromium is not installed.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { execFileSync, spawnSync } from "node:child_process";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import type { Browser } from "playwright-core";
import { main } from "../../compiler/cli/main.js";
import { ensureRuntimeBuilt } from "./helpers.js";

const CHROMIUM = process.env.KILN_CHROMIUM ?? "/usr/bin/chromium";
const FLAGS = ["--no-sandbox", "--enable-unsafe-webgpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"];
const skip = existsSync(CHROMIUM) ? undefined : `${CHROMIUM} is not installed (apt-get install chromium, or set KILN_CHROMIUM)`;
if (skip) console.warn(`[webgpu] SKIPPING the tutorial app test: ${skip}`);

const APP = "dsl-examples/tutorial-app";

describe.skipIf(skip !== undefined)("the tutorial's Vite app in headless Chromium", () => {
  let dir = "";
  let server: { url: string; close(): Promise<void> } | undefined;
  let browser: Browser | undefined;

  beforeAll(async () => {
    ensureRuntimeBuilt();
    dir = mkdtempSync(join(tmpdir(), "kiln-tutorial-"));
    // The app as a reader gets it: its tracked files only (no model or weights from an earlier run).
    for (const f of execFileSync("git", ["ls-files", "--cached", "--others", "--exclude-standard", APP], { encoding: "utf8" }).split("\n").filter(Boolean)) {
      mkdirSync(dirname(join(dir, f)), { recursive: true });
      cpSync(f, join(dir, f));
    }
    const app = join(dir, APP);
    const quiet = () => {};
    const tty = { write: () => true, isTTY: false } as unknown as NodeJS.WriteStream;
    const err: string[] = [];
    expect(await main(["train", join(app, "flowers.kiln"), "--data", join(app, "flowers.csv"), "--label-column", "species", "--epochs", "30", "--batch", "16", "--save", join(app, "public/flowers.safetensors")], quiet, (s) => err.push(s), tty), err.join("\n")).toBe(0);
    expect(await main(["compile", join(app, "flowers.kiln"), "--target", "all", "--standalone", "--out", join(app, "src/model")], quiet, (s) => err.push(s), tty), err.join("\n")).toBe(0);
    const vite = spawnSync(process.execPath, [resolve("node_modules/vite/bin/vite.js"), "build"], { cwd: app, encoding: "utf8", timeout: 120_000 });
    expect(vite.status, `${vite.stdout}\n${vite.stderr}`).toBe(0);
    const { serve } = (await import(resolve("dsl-examples/browser/serve.mjs"))) as { serve(o: object): Promise<{ url: string; close(): Promise<void> }> };
    server = await serve({ root: join(app, "dist") });
    const { chromium } = await import("playwright-core");
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: FLAGS });
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("names the species of typed-in flowers with the trained weights, on WebGPU", async () => {
    const page = await browser!.newPage({ viewport: { width: 640, height: 520 } });
    const logs: string[] = [];
    page.on("console", (m) => logs.push(m.text()));
    page.on("pageerror", (e) => logs.push(String(e)));
    try {
      await page.goto(server!.url);
      await page.waitForFunction(() => document.body.dataset.flowers !== undefined, undefined, { timeout: 60_000 });
      const state = () => page.evaluate(() => JSON.parse(document.body.dataset.flowers!)) as Promise<{ backend?: string; error?: string; species?: number; x?: number[] }>;
      const first = await state();
      expect(first.error, logs.join("\n")).toBeUndefined();
      expect(first.backend).toMatch(/^WebGPU \(/);
      // The middle species' means (make-flowers.mjs), then the first's: the answer follows the form.
      expect(first.species).toBe(1);
      for (const [name, v] of [["sepal_length", "5.0"], ["sepal_width", "3.4"], ["petal_length", "1.5"], ["petal_width", "0.2"]] as const) await page.fill(`input[name=${name}]`, v);
      await page.waitForFunction(() => JSON.parse(document.body.dataset.flowers!).x[3] === 0.2);
      expect((await state()).species).toBe(0);
      mkdirSync("build/screenshots", { recursive: true });
      await page.screenshot({ path: "build/screenshots/tutorial-app.png" });
      console.log(`[webgpu] tutorial app screenshot: ${resolve("build/screenshots/tutorial-app.png")}`);
    } finally {
      await page.close();
    }
  }, 120_000);
});
