// Load-time choices for the wasm kernels: the relaxed-SIMD build when the engine validates it, and a thread pool
// on a shared memory when `threads` > 1 and the engine can share memory (otherwise one thread, cleanly).

import { KilnError } from "../errors.js";
import { instantiateKernels, relaxedSimdSupported, toBytes, type KernelFn, type WasmKernels } from "./backend.js";
import { prepackedBytes } from "./prepack.js";
import { ALL_COLUMNS, COL_RANGE_GLOBALS, readParallelInfo, SHARED_B_GLOBAL, type RowSplit } from "./threads-meta.js";
import { bigEnough, packChunks, splitCall } from "./threads-split.js";
import { MICRO } from "./matmul-scratch.js";
import { sharedMemorySupported, ThreadPool, toSharedBinary } from "./threads.js";

export type WasmSource = BufferSource | WebAssembly.Module;

export interface KernelLoadOptions {
  /** Threads running the kernels (default 1): matmuls and large elementwise kernels are split across them. */
  threads?: number;
  /** The relaxed-SIMD build of the same kernels (or a function fetching it), used when the engine supports it. */
  relaxedWasm?: WasmSource | (() => Promise<WasmSource>);
}

export interface LoadedKernels extends WasmKernels {
  /** Which build runs. */
  simd: "plain" | "relaxed";
  /** Threads actually in use (1 when the engine cannot share memory). */
  threads: number;
  pool: ThreadPool | null;
  /**
   * With a pool: the kernels unwrapped (each runs whole on the calling thread), for calls the pool keeps on one
   * thread from their start (ExecutorContext.soloKernels).
   */
  soloKernels?: Map<string, KernelFn>;
  /** Why fewer threads run than were asked (absent when all run). */
  fewerThreads?: string;
}

const MAX_THREADS = 64;

/** An environment variable where there is one (Node); undefined in browsers. */
const env = (name: string): string | undefined => (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env?.[name];
/**
 * A/B switch (read at load): KILN_THREADS_FASTPATH=0 builds the chunk lists of every kernel call again before
 * asking the pool whether to split (as before bigEnough), and runs calls the pool keeps on one thread through
 * the splitting wrappers (as before soloKernels).
 */
const SOLO_FAST = env("KILN_THREADS_FASTPATH") !== "0";
/**
 * A/B switch (read at load): KILN_THREADS_PACKSPLIT=0 packs a shared B on the calling thread alone, as before
 * packChunks (B of at least MIN_PACK_SPLIT elements is otherwise packed in column chunks on all threads).
 */
const PACK_SPLIT = env("KILN_THREADS_PACKSPLIT") !== "0";
/** Width of the packed panels, the same in both builds (prepack.ts). */
const PACK_ALIGN = MICRO.plain.nr;

export async function loadKernels(plain: WasmSource, opts: KernelLoadOptions): Promise<LoadedKernels> {
  const threads = opts.threads ?? 1;
  if (!Number.isInteger(threads) || threads < 1 || threads > MAX_THREADS) {
    throw new KilnError(`load: threads must be an integer from 1 to ${MAX_THREADS}, got ${String(threads)}`, { code: "bad_option" });
  }
  let wasm = plain;
  let simd: LoadedKernels["simd"] = "plain";
  if (opts.relaxedWasm !== undefined && relaxedSimdSupported()) {
    wasm = typeof opts.relaxedWasm === "function" ? await opts.relaxedWasm() : opts.relaxedWasm;
    simd = "relaxed";
  }
  // A precompiled Module cannot be re-declared with a shared memory, so it runs on one thread.
  const shared = threads > 1 && !(wasm instanceof WebAssembly.Module) && sharedMemorySupported() ? toSharedBinary(toBytes(wasm)) : null;
  if (!shared) {
    const why = threads === 1 ? undefined
      : wasm instanceof WebAssembly.Module ? "a precompiled WebAssembly.Module cannot be given a shared memory"
      : "this engine cannot share WebAssembly memory here (a browser page must be cross-origin isolated)";
    return { ...(await instantiateKernels(wasm)), simd, threads: 1, pool: null, ...(why ? { fewerThreads: why } : {}) };
  }

  const k = await instantiateKernels(shared);
  const info = readParallelInfo(k.module);
  const names = Object.keys(info.kernels).filter((n) => k.kernels.has(n));
  // Packers of shared B matrices that honour column ranges run on the workers too (packChunks).
  const packers = [...new Set(names.flatMap((n) => {
    const s = info.kernels[n]!;
    return s.kind === "rows" && s.sharedB?.cols && k.kernels.has(s.sharedB.packer) ? [s.sharedB.packer] : [];
  }))];
  if (names.length === 0) return { ...k, simd, threads: 1, pool: null, fewerThreads: "no kernel of this module splits across threads" };
  // Each worker packs matmul panels in its own scratch, reserved once for the module's life.
  const scratchBytes = Math.max(0, ...names.map((n) => info.kernels[n]!).filter((s): s is RowSplit => s.kind === "rows").map((s) => s.scratchBytes));
  const scratch = Array.from({ length: threads - 1 }, (_, w) => (scratchBytes > 0 ? k.memory.allocPersistent(scratchBytes, `matmul scratch of thread ${w + 1}`) : 0));
  const pool = await ThreadPool.start(k.module, k.memory.memory, threads, [...names, ...packers], scratch);

  const kernels = new Map(k.kernels);
  const global = k.instance.exports[SHARED_B_GLOBAL];
  const sharedGlobal = global instanceof WebAssembly.Global ? global : null;
  const [n0g, n1g] = COL_RANGE_GLOBALS.map((g) => k.instance.exports[g]);
  const colGlobals = n0g instanceof WebAssembly.Global && n1g instanceof WebAssembly.Global ? [n0g, n1g] as const : null;
  // Column chunks (each the arguments, then n0 and n1 from argument `argc`): every thread sets its column globals.
  const runCols = (name: string, fn: KernelFn, chunks: number[][], scratchArg: number, work: number, argc: number, pack = false): void => {
    const [g0, g1] = colGlobals!;
    const byCols = (...a: number[]) => {
      g0.value = a[argc]!;
      g1.value = a[argc + 1]!;
      return fn(...a);
    };
    try {
      pool.run(name, byCols, chunks, scratchArg, 0, work, argc, pack);
    } finally {
      g0.value = 0;
      g1.value = ALL_COLUMNS;
    }
  };
  for (const name of names) {
    const fn = k.kernels.get(name)!;
    const split = info.kernels[name]!;
    const shared = split.kind === "rows" ? split.sharedB : undefined;
    const packer = shared && sharedGlobal ? k.kernels.get(shared.packer) : undefined;
    // Column chunks need the module's column globals and room for n0, n1 after the arguments.
    const colSplit = split.kind === "rows" && split.cols !== undefined && colGlobals !== null;
    const wrapped: KernelFn = (...args: number[]) => {
      // Small calls, and large ones while the pool keeps this call on one thread, build no chunks (bigEnough).
      if (SOLO_FAST && (args.length > ThreadPool.maxArgs || !bigEnough(split, args))) return fn(...args);
      if (pool.solo && SOLO_FAST) {
        pool.soloNow();
        return fn(...args);
      }
      const c = splitCall(split, args, threads, ThreadPool.maxChunks, packer !== undefined, colSplit && args.length + 2 <= ThreadPool.maxArgs);
      if (!c || pool.soloNow()) return fn(...args);
      if (c.cols) {
        runCols(name, fn, c.chunks, c.scratchArg, c.work, args.length);
        return undefined;
      }
      if (!c.sharedB || !shared || !packer) {
        pool.run(name, fn, c.chunks, c.scratchArg, 0, c.work);
        return undefined;
      }
      // B packed once, here, into call scratch; every chunk's gemm reads it (SHARED_B_GLOBAL) instead of packing.
      const [K, N] = [args[shared.K]!, args[shared.N]!];
      const bytes = prepackedBytes(K, N);
      const ptr = k.memory.allocScratch(bytes, `B of ${name} packed for ${threads} threads`);
      try {
        // Large enough, B is packed in column chunks on all threads first (the packer honours the column globals).
        const packCuts = PACK_SPLIT && shared.cols && colGlobals ? packChunks(K, N, threads, ThreadPool.maxChunks, PACK_ALIGN) : null;
        if (packCuts) runCols(shared.packer, packer, packCuts.map(([n0, n1]) => [args[shared.b]!, ptr, K, N, n0, n1]), -1, K * N, 4, true);
        else packer(args[shared.b]!, ptr, K, N);
        sharedGlobal!.value = ptr;
        // A starved packing dispatch leaves the rest of the call, this gemm included, to the calling thread.
        if (packCuts && pool.soloNow()) fn(...args);
        else pool.run(name, fn, c.chunks, c.scratchArg, ptr, c.work);
      } finally {
        sharedGlobal!.value = 0;
        k.memory.releaseScratch(ptr, bytes);
      }
      return undefined;
    };
    // The executor checks each step's argument count against the kernel's arity.
    Object.defineProperty(wrapped, "length", { value: fn.length });
    kernels.set(name, wrapped);
  }
  return { ...k, kernels, simd, threads, pool, ...(SOLO_FAST ? { soloKernels: k.kernels } : {}) };
}
