// Threads and relaxed SIMD in headless Chromium: a cross-origin-isolated page (COOP/COEP headers) loads a module
// with { threads: 2 } (Web Workers on a shared memory) and with the relaxed build; a page without isolation must
// fall back to one thread. Results equal the page's own 1-thread run, a matmul of 8 rows cut by columns too, and
// one whose shared B (512 x 300) is packed in column chunks on both threads.
// Skips, saying why, without Chromium.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { existsSync, readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { join, resolve } from "node:path";
import type { Browser } from "playwright-core";
import { buildWasm, type WasmBuild } from "../../compiler/compile.js";
import { irOf } from "../helpers/backend.js";
import { ensureRuntimeBuilt } from "./child.js";

const CHROMIUM = process.env.KILN_CHROMIUM ?? "/usr/bin/chromium";
const FLAGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"];
const skip = existsSync(CHROMIUM) ? undefined : `${CHROMIUM} is not installed (apt-get install chromium, or set KILN_CHROMIUM)`;
if (skip) console.warn(`[threads] SKIPPING the browser threads test: ${skip}`);

const SRC = `
fn mm(a: f32[M, K], b: f32[K, N]) -> f32[M, N] { return a @ transpose(transpose(b)) }
fn ew(x: f32[R, C], m: f32[R, 1]) -> f32[R, C] { return exp(x * 0.1) * m }
`;

// Runs in the page: 1 thread, 2 threads, 2 threads + relaxed; reports sums and whether results are identical.
const PAGE = `<!doctype html><script type="module">
import { loadKilnModule, WASM_STATE } from "/rt/wasm/module.js";
import { relaxedSimdSupported } from "/rt/wasm/backend.js";
const get = async (u) => new Uint8Array(await (await fetch(u)).arrayBuffer());
try {
  const manifest = await (await fetch("/m.json")).json();
  const [wasm, relaxedWasm] = [await get("/m.wasm"), await get("/m.relaxed.wasm")];
  const a = Float32Array.from({ length: 300 * 257 }, (_, i) => Math.sin(i));
  const x = Float32Array.from({ length: 700 * 301 }, (_, i) => Math.cos(i));
  const m = Float32Array.from({ length: 700 }, (_, i) => i / 700);
  const a8 = Float32Array.from({ length: 8 * 1024 }, (_, i) => Math.sin(0.3 * i));
  const b8 = Float32Array.from({ length: 1024 * 600 }, (_, i) => Math.cos(0.7 * i));
  const a5 = Float32Array.from({ length: 130 * 512 }, (_, i) => Math.sin(0.1 * i));
  const b5 = Float32Array.from({ length: 512 * 300 }, (_, i) => Math.cos(0.2 * i));
  const run = async (opts) => {
    const k = await loadKilnModule(manifest, wasm, opts);
    // Every split runs on 2 threads (no fallback to one on a loaded machine), so the column split is seen.
    const pool = k[WASM_STATE]("page").pool;
    if (pool) pool.fallback = false;
    const y = [...k.mm({ a, b: a }, { dims: { M: 300, K: 257, N: 300 } }).data, ...k.mm({ a: a8, b: b8 }, { dims: { M: 8, K: 1024, N: 600 } }).data,
      ...k.mm({ a: a5, b: b5 }, { dims: { M: 130, K: 512, N: 300 } }).data];
    const z = k.ew({ x, m }, { dims: { R: 700, C: 301 } }).data;
    const extra = k.memoryStats().persistentBytes;
    k.dispose();
    return { y: Array.from(y), z: Array.from(z), extra, cols: pool ? pool.stats.cols : 0, packs: pool ? pool.stats.packs : 0 };
  };
  const one = await run({});
  const two = await run({ threads: 2 });
  const r1 = await run({ relaxedWasm });
  const r2 = await run({ threads: 2, relaxedWasm });
  const same = (p, q) => p.y.every((v, i) => Object.is(v, q.y[i])) && p.z.every((v, i) => Object.is(v, q.z[i]));
  document.body.dataset.kiln = JSON.stringify({
    isolated: crossOriginIsolated, relaxed: relaxedSimdSupported(), same2: same(one, two), sameRelaxed2: same(r1, r2),
    poolBytes: two.extra - one.extra, cols2: two.cols, colsRelaxed2: r2.cols, packs2: two.packs, packsRelaxed2: r2.packs, sum: one.y.reduce((s, v) => s + v, 0), sumRelaxed: r1.y.reduce((s, v) => s + v, 0),
  });
} catch (e) {
  document.body.dataset.kiln = JSON.stringify({ error: String(e && e.stack || e) });
}
</script>`;

interface PageResult { isolated: boolean; relaxed: boolean; same2: boolean; sameRelaxed2: boolean; poolBytes: number; cols2: number; colsRelaxed2: number; packs2: number; packsRelaxed2: number; sum: number; sumRelaxed: number; error?: string }

describe.skipIf(skip !== undefined)("threads in headless Chromium", () => {
  let server: Server | undefined;
  let url = "";
  let browser: Browser | undefined;
  let build: WasmBuild;

  beforeAll(async () => {
    ensureRuntimeBuilt();
    build = await buildWasm(irOf(SRC), "m");
    const files: Record<string, [Uint8Array | string, string]> = {
      "/index.html": [PAGE, "text/html"],
      "/m.json": [JSON.stringify(build.manifest), "application/json"],
      "/m.wasm": [build.wasm, "application/wasm"],
      "/m.relaxed.wasm": [build.wasmRelaxed, "application/wasm"],
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
  }, 120_000);

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
      await page.waitForFunction(() => document.body?.dataset.kiln !== undefined, undefined, { timeout: 60_000 });
      const r = JSON.parse((await page.evaluate(() => document.body.dataset.kiln))!) as PageResult;
      if (r.error) throw new Error(r.error);
      return r;
    } catch (e) {
      throw new Error(`${(e as Error).message}\npage console:\n${logs.join("\n")}`);
    } finally {
      await page.close();
    }
  }

  it("a cross-origin-isolated page runs 2 Web Worker threads with identical results, plain and relaxed", async () => {
    const r = await runPage("");
    expect(r.isolated).toBe(true);
    expect(r.poolBytes).toBeGreaterThan(0);
    expect(r.same2).toBe(true);
    expect(r.sameRelaxed2).toBe(true);
    expect(r.relaxed).toBe(true);
    // The [8,1024]x[1024,600] call was cut by columns, in both builds.
    expect(r.cols2).toBe(1);
    expect(r.colsRelaxed2).toBe(1);
    // The [130,512]x[512,300] call packed its shared B on both threads (threads-split.ts packChunks).
    expect(r.packs2).toBe(1);
    expect(r.packsRelaxed2).toBe(1);
    expect(Math.abs(r.sumRelaxed - r.sum)).toBeLessThan(1e-2 * Math.abs(r.sum) + 1);
  }, 120_000);

  it("without cross-origin isolation, threads: 2 falls back to one thread", async () => {
    const r = await runPage("?plain");
    expect(r.isolated).toBe(false);
    expect(r.poolBytes).toBe(0);
    expect(r.same2).toBe(true);
    expect(r.cols2).toBe(0);
    expect(r.packs2).toBe(0);
  }, 120_000);
});
