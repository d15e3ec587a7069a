// Data-parallel replicas in headless Chromium: a cross-origin-isolated page trains 2 replicas in module Web
// Workers (transport.ts's browser half) and matches its own 1-replica run; a page without isolation has no
// SharedArrayBuffer, says so, and trains on one replica. Skips, saying why, without Chromium.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { existsSync, readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { join, resolve } from "node:path";
import type { Browser } from "playwright-core";
import { ensureRuntimeBuilt } from "../helpers/dist.js";
import { build, mlp } from "./helpers.js";

const CHROMIUM = process.env.KILN_CHROMIUM ?? "/usr/bin/chromium";
const FLAGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"];
const skip = existsSync(CHROMIUM) ? undefined : `${CHROMIUM} is not installed (apt-get install chromium, or set KILN_CHROMIUM)`;
if (skip) console.warn(`[data-parallel] SKIPPING the browser test: ${skip}`);

// Runs in the page: 10 steps on 1 replica and on 2; the largest relative difference and whether replica 1 agrees.
const PAGE = `<!doctype html><script type="module">
import { DataParallelTrainer } from "/rt/parallel/trainer.js";
import { Tensor } from "/rt/tensor.js";
try {
  const manifest = await (await fetch("/m.json")).json();
  const wasm = new Uint8Array(await (await fetch("/m.wasm")).arrayBuffer());
  let s = 7;
  const next = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
  const data = Array.from({ length: 10 }, () => ({
    x: new Tensor("f32", [8, 12], Float32Array.from({ length: 96 }, () => next() * 2 - 1)),
    y: new Tensor("i32", [8], Int32Array.from({ length: 8 }, () => Math.floor(next() * 5))),
  }));
  const run = async (replicas) => {
    const t = await DataParallelTrainer.create(manifest, wasm, { replicas, seed: 3 });
    for (const d of data) await t.step(d);
    const w = Array.from(t.module.getParam("M.w1").data);
    const agree = t.replicas < 2 || Array.from((await t.replicaParams(1))["M.w1"].data).every((v, i) => Object.is(v, w[i]));
    const out = { w, replicas: t.replicas, fallback: t.fallback ?? null, agree };
    t.dispose();
    return out;
  };
  const one = await run(1), two = await run(2);
  const diff = Math.max(...one.w.map((v, i) => Math.abs(v - two.w[i]) / (1e-5 + Math.abs(v))));
  document.body.dataset.kiln = JSON.stringify({ isolated: crossOriginIsolated, replicas: two.replicas, fallback: two.fallback, agree: two.agree, diff });
} catch (e) {
  document.body.dataset.kiln = JSON.stringify({ error: String(e && e.stack || e) });
}
</script>`;

interface PageResult { isolated: boolean; replicas: number; fallback: string | null; agree: boolean; diff: number; error?: string }

describe.skipIf(skip !== undefined)("data-parallel replicas in headless Chromium", () => {
  let server: Server | undefined;
  let url = "";
  let browser: Browser | undefined;

  beforeAll(async () => {
    ensureRuntimeBuilt();
    const b = await build(mlp("sgd(lr: 0.05, momentum: 0.9)"));
    const files: Record<string, [Uint8Array | string, string]> = {
      "/index.html": [PAGE, "text/html"],
      "/m.json": [JSON.stringify(b.manifest), "application/json"],
      "/m.wasm": [b.wasm, "application/wasm"],
    };
    const rt = resolve("dist/runtime");
    server = createServer((req, res) => {
      const path = new URL(req.url ?? "/", "http://x").pathname;
      const isolate = !new URL(req.url ?? "/", "http://x").searchParams.has("plain") && req.headers.referer?.includes("plain") !== true;
      const headers: Record<string, string> = isolate ? { "Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Embedder-Policy": "require-corp" } : {};
      const file = files[path] ?? (path.startsWith("/rt/") && existsSync(join(rt, path.slice(4))) ? [readFileSync(join(rt, path.slice(4))), "text/javascript"] as const : undefined);
      if (!file) return void res.writeHead(404).end();
      res.writeHead(200, { "Content-Type": file[1], ...headers }).end(file[0]);
    });
    await new Promise<void>((r) => server!.listen(0, "127.0.0.1", r));
    url = `http://127.0.0.1:${(server.address() as { port: number }).port}/index.html`;
    const { chromium } = await import("playwright-core");
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: FLAGS });
  }, 300_000);

  afterAll(async () => {
    await browser?.close();
    await new Promise((r) => (server ? server.close(r) : r(undefined)));
  });

  async function runPage(query: string): Promise<PageResult> {
    const page = await browser!.newPage();
    const logs: string[] = [];
    page.on("console", (m) => logs.push(m.text()));
    page.on("pageerror", (e) => logs.push(String(e)));
    try {
      await page.goto(url + query);
      await page.waitForFunction(() => document.body?.dataset.kiln !== undefined, undefined, { timeout: 90_000 });
      const r = JSON.parse((await page.evaluate(() => document.body.dataset.kiln))!) as PageResult;
      if (r.error) throw new Error(r.error);
      return r;
    } catch (e) {
      throw new Error(`${(e as Error).message}\npage console:\n${logs.join("\n")}`);
    } finally {
      await page.close();
    }
  }

  it("a cross-origin-isolated page trains 2 replicas in Web Workers like one replica", async () => {
    const r = await runPage("");
    expect(r.isolated).toBe(true);
    expect(r.replicas).toBe(2);
    expect(r.fallback).toBeNull();
    expect(r.agree).toBe(true);
    expect(r.diff).toBeLessThan(1e-4);
  }, 120_000);

  it("without cross-origin isolation, says so and trains on one replica", async () => {
    const r = await runPage("?plain");
    expect(r.isolated).toBe(false);
    expect(r.replicas).toBe(1);
    expect(r.fallback).toMatch(/need shared memory .*cross-origin-isolated page/);
  }, 120_000);
});
