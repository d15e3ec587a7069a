// Thread pool for the wasm kernels: `threads - 1` workers (worker_threads in Node, Web Workers in browsers)
// instantiate the same module on a shared WebAssembly.Memory. A dispatch puts a kernel call's chunks in a
// SharedArrayBuffer control block; every thread, the caller included, claims chunks; kernel calls stay synchronous.

import { KilnError } from "../errors.js";
import { isNode } from "../io.js";
import { claimChunk, CLAIM, CTL, WORKER_SOURCE } from "./worker.js";

/** Pages of the shared memory's declared maximum (shared memories need one): 2 GiB. */
export const SHARED_MAX_PAGES = 32768;

/** Main-thread polls of the done count before it sleeps (Node) or between checks (browsers cannot sleep). */
const JOIN_SPIN = 2000;

/**
 * A dispatch is starved when the caller, done with every chunk it could claim, still waits for a worker longer
 * than this fraction of its own busy time plus STARVE_MIN_MS: the worker claimed a chunk and then did not run
 * (the OS gave the process less than a core per thread). With chunks of a tenth of the work a running worker
 * keeps the caller waiting at most about one chunk. The time the caller took to wake the workers counts as
 * waiting too: with no core free, the woken worker takes the caller's (waking it took 0.29 ms on average, up to
 * 9.6 ms, in the MLP training step with the other core busy, against a few us with one free).
 */
const STARVE_FRACTION = 0.5;
const STARVE_MIN_MS = 0.2;
/**
 * After n starved calls in a row, the next 2^min(n, MAX_BACKOFF) - 1 calls run on one thread without probing,
 * and so does every call for BACKOFF_MS * 2^(n - 1) ms (at most MAX_BACKOFF_MS): a probe that starves costs
 * about one scheduler time slice, so under steady load probes stay a small part of the time whatever a call takes.
 * (A call shown to have had two cores clears the strikes: VERIFY. Taking one off instead kept the MLP step with the other core busy
 * on one thread more (39 of ~1800 matmuls split, 838 before) but measured no better there, 0.95-0.97x against
 * 0.95-0.96x at load 4-5, and looked slower to find a free core again in short runs: not kept.)
 */
const MAX_BACKOFF = 5;
/**
 * A/B switch (read at load): KILN_THREADS_VERIFY=0 clears the strikes after any call that did not starve, as
 * before. Otherwise (where the CPU check runs) only a call in which a CPU-check window closed without a shortfall
 * clears them: a probe of small kernels (the MLP step's 0.3 ms matmuls) closes no window, and with the other core
 * busy it used to clear the strikes all the same, so the back-off never grew past one strike and about one call
 * in six probed again. A call that did not starve also clears them once VERIFY_AFTER_MS have passed since the
 * last starved call: calls spaced more than 4 windows apart, or whose dispatches are short, may never close a
 * window, and one spurious starve must not keep them on one thread for good.
 */
const VERIFY_AFTER_MS = 1000;
const VERIFY = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env?.KILN_THREADS_VERIFY !== "0";
const BACKOFF_MS = 4;
const MAX_BACKOFF_MS = 500;

/** What the pool did (tests and benches read it; it never changes a result). */
export interface PoolStats {
  /** Kernel calls split across the threads, and chunks the workers ran in them. */
  dispatches: number;
  workerChunks: number;
  /** Dispatches whose chunks shared one packed B. */
  sharedB: number;
  /** Matmul dispatches cut by columns of C (few rows). */
  cols: number;
  /** Dispatches packing a shared B in column chunks on all threads (threads-split.ts packChunks). */
  packs: number;
  /** Dispatches in which the caller waited on a late worker (each sends the rest of its call to one thread). */
  starved: number;
  /**
   * Kernel calls that would have been split but ran on the calling thread alone (fallback or back-off), in calls
   * that began on two threads or whose executor has no unwrapped kernels (ExecutorContext.soloKernels).
   */
  solo: number;
  /** Function calls kept on one thread from their start (back-off after starved calls). */
  soloCalls: number;
}

const now = (): number => performance.now();

/**
 * CPU check (Node only): from a large dispatch (>= CPU_CHECK_WORK multiply-adds or elements) or a call's second
 * one, a window runs until CPU_CHECK_MS of wall time have passed at the end of a dispatch (across calls made
 * back to back; a call starting more than 4 windows' time after it opened discards it, as the caller may have
 * been idle). The process's CPU time beyond one core over the window must then be at least EXTRA_MIN of what
 * the workers could have added in its dispatches, less WAKE_MS per worker for waking from sleep. Otherwise the
 * dispatches were starved: two threads time-sliced on one core never make the caller wait long, yet are no
 * faster than one (and a worker spinning between kernels takes the caller's time). Reading the CPU time costs
 * a few us, hence windows rather than every dispatch.
 */
const CPU_CHECK_MS = 2;
const CPU_CHECK_WORK = 1 << 22;
const EXTRA_MIN = 0.4;
const WAKE_MS = 0.1;
const cpuUsage = (globalThis as { process?: { cpuUsage?: () => { user: number; system: number } } }).process?.cpuUsage;
/** CPU time of the whole process (all its threads) in ms, where the engine tells it. */
const cpuMs: (() => number) | null = isNode() && typeof cpuUsage === "function"
  ? () => {
    const u = cpuUsage();
    return (u.user + u.system) / 1000;
  }
  : null;

/** Whether this engine can share a wasm memory between threads (Node, or a cross-origin-isolated page). */
export function sharedMemorySupported(): boolean {
  if (typeof SharedArrayBuffer === "undefined" || typeof Atomics === "undefined") return false;
  if (!isNode() && (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated !== true) return false;
  if (!isNode() && typeof Worker === "undefined") return false;
  try {
    return new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true } as WebAssembly.MemoryDescriptor).buffer instanceof SharedArrayBuffer;
  } catch {
    return false;
  }
}

interface NodeWorker {
  postMessage(m: unknown): void;
  once(ev: "message" | "error" | "exit", f: (x: unknown) => void): void;
  unref(): void;
  terminate(): Promise<number>;
}
interface WebWorker {
  postMessage(m: unknown): void;
  onmessage: ((e: { data: unknown }) => void) | null;
  onerror: ((e: unknown) => void) | null;
  terminate(): void;
}

// Hidden from bundlers, which would otherwise try to resolve the Node builtin for a browser build.
const nodeImport = (spec: string): Promise<unknown> => import(/* @vite-ignore */ /* webpackIgnore: true */ spec);

/** Starts one worker and resolves once it has instantiated the module. */
async function spawn(init: Record<string, unknown>): Promise<{ terminate(): void }> {
  if (isNode()) {
    const wt = (await nodeImport("node:worker_threads")) as { Worker: new (src: string, o: { eval: boolean }) => NodeWorker };
    const w = new wt.Worker(WORKER_SOURCE, { eval: true });
    // Workers never keep the process alive: an idle pool (or one never disposed) lets Node exit.
    w.unref();
    await new Promise<void>((resolve, reject) => {
      w.once("message", () => resolve());
      w.once("error", (e) => reject(e as Error));
      w.once("exit", () => reject(new Error("the worker exited during start-up")));
      w.postMessage(init);
    });
    return { terminate: () => void w.terminate() };
  }
  const url = URL.createObjectURL(new Blob([WORKER_SOURCE], { type: "text/javascript" }));
  try {
    const w = new (globalThis as unknown as { Worker: new (u: string) => WebWorker }).Worker(url);
    await new Promise<void>((resolve, reject) => {
      w.onmessage = () => resolve();
      w.onerror = (e) => reject(new Error(`the worker failed to start: ${String((e as { message?: string }).message ?? e)}`));
      w.postMessage(init);
    });
    w.onmessage = w.onerror = null;
    return { terminate: () => w.terminate() };
  } finally {
    URL.revokeObjectURL(url);
  }
}

export class ThreadPool {
  readonly threads: number;
  readonly #ctl: Int32Array;
  readonly #workers: { terminate(): void }[];
  readonly #index: Map<string, number>;
  readonly #canWait: boolean;
  #closed = false;
  /** The rest of the current call runs on one thread (a starved dispatch, or a back-off call). */
  #solo = false;
  #callStarved = false;
  /** A CPU-check window closed without a shortfall during this call (two cores shown to be there). */
  #callVerified = false;
  #lastStarved = -Infinity;
  #strikes = 0;
  #skip = 0;
  #probeAt = 0;
  /** The CPU check's window (winT0 < 0: none open), and whether this call has dispatched yet. */
  #winT0 = -1;
  #winCpu0 = 0;
  #winDispatch = 0;
  #callDispatched = false;
  /** Wall time of a CPU-check window (tests set Infinity: no window closes, so no call is verified). */
  cpuCheckMs = CPU_CHECK_MS;
  /** Scales the timed back-off (tests set 0 to count calls only). */
  backoffScale = 1;
  /** Whether starved dispatches send calls to one thread (benches and tests turn it off to see 2 threads always). */
  fallback = true;
  readonly stats: PoolStats = { dispatches: 0, workerChunks: 0, sharedB: 0, cols: 0, starved: 0, solo: 0, soloCalls: 0, packs: 0 };

  private constructor(threads: number, ctl: Int32Array, workers: { terminate(): void }[], names: readonly string[]) {
    this.threads = threads;
    this.#ctl = ctl;
    this.#workers = workers;
    this.#index = new Map(names.map((n, i) => [n, i]));
    // Only Node lets the main thread block in Atomics.wait; a page's main thread polls.
    this.#canWait = isNode();
  }

  /**
   * Starts `threads - 1` workers on `memory` (shared) with the exported kernels `names` of `module`; worker w
   * substitutes `scratch[w - 1]` for a dispatch's scratch argument.
   */
  static async start(module: WebAssembly.Module, memory: WebAssembly.Memory, threads: number, names: readonly string[], scratch: readonly number[]): Promise<ThreadPool> {
    if (threads - 1 > CTL.table - CTL.scratch - 1) throw new KilnError(`at most ${CTL.table - CTL.scratch} threads`, { code: "bad_option" });
    const control = new SharedArrayBuffer(4 * (CTL.table + CTL.maxChunks * CTL.maxArgs));
    const ctl = new Int32Array(control);
    scratch.forEach((p, w) => (ctl[CTL.scratch + w + 1] = p));
    const workers: { terminate(): void }[] = [];
    try {
      for (let index = 1; index < threads; index++) workers.push(await spawn({ module, memory, control, names: [...names], index }));
    } catch (e) {
      for (const w of workers) w.terminate();
      throw new KilnError(`could not start ${threads - 1} worker thread(s): ${(e as Error).message}`, { code: "load_failed", cause: e });
    }
    return new ThreadPool(threads, ctl, workers, names);
  }

  /** Most chunks one dispatch can hold, and most arguments per kernel call. */
  static readonly maxChunks = CTL.maxChunks;
  static readonly maxArgs = CTL.maxArgs;

  /**
   * Marks the start of a function call: a call after a starved one runs on one thread, backing off
   * exponentially while calls keep starving, then probes two threads again (the load may have gone). Returns
   * whether this call runs on one thread from its start.
   */
  beginCall(): boolean {
    const t = now();
    if (this.#callStarved) {
      this.#lastStarved = t;
      this.#strikes++;
      this.#skip = 2 ** Math.min(this.#strikes, MAX_BACKOFF) - 1;
      this.#probeAt = t + this.backoffScale * Math.min(MAX_BACKOFF_MS, BACKOFF_MS * 2 ** (this.#strikes - 1));
    } else if (!this.#solo && (this.#callVerified || !VERIFY || !cpuMs || t - this.#lastStarved >= VERIFY_AFTER_MS)) this.#strikes = 0;
    this.#callStarved = this.#callDispatched = this.#callVerified = false;
    if (t - this.#winT0 > 4 * this.cpuCheckMs) this.#winT0 = -1;
    this.#solo = this.#skip > 0 || t < this.#probeAt;
    if (this.#skip > 0) this.#skip--;
    if (this.#solo) this.stats.soloCalls++;
    return this.#solo;
  }

  /** Forgets past starvation: the next call probes two threads at once. */
  resetBackoff(): void {
    this.#solo = this.#callStarved = this.#callVerified = false;
    this.#strikes = this.#skip = this.#probeAt = 0;
    this.#lastStarved = -Infinity;
    this.#winT0 = -1;
  }

  /** Whether kernels run on the calling thread alone for the rest of this call (not counted: soloNow counts). */
  get solo(): boolean {
    return this.#solo;
  }

  /** Whether kernels should run on the calling thread alone for the rest of this call (counted in stats.solo). */
  soloNow(): boolean {
    if (this.#solo) this.stats.solo++;
    return this.#solo;
  }

  /**
   * Tests only: a worker claims the first chunk of every dispatch and sleeps `ms` before running it, as one the
   * OS descheduled would (0: off).
   */
  set testWorkerDelay(ms: number) {
    Atomics.store(this.#ctl, CTL.delay, Math.max(0, Math.round(ms)));
  }

  /**
   * Tests only: workers sleep `ms` after waking for a dispatch, before claiming any chunk, as workers the OS
   * wakes late would (0: off, and wakes the sleepers); `testLateWakes` counts the sleeps that have ended.
   */
  set testWorkerWakeDelay(ms: number) {
    Atomics.store(this.#ctl, CTL.wakeDelay, Math.max(0, Math.round(ms)));
    Atomics.notify(this.#ctl, CTL.wakeDelay);
  }
  get testLateWakes(): number {
    return Atomics.load(this.#ctl, CTL.lateWakes);
  }

  /**
   * Runs kernel `name` once per chunk (each an argument list), every thread claiming chunks until none is left,
   * so a worker the OS has not scheduled yet leaves its share to the others. `fn` is the calling thread's
   * instance of the kernel; workers put their own scratch at `scratchArg` (-1: none) and set their
   * SHARED_B_GLOBAL to `sharedB` (a B the caller packed, 0: none). Returns when all are done; throws if any call
   * threw (after all have finished, so no worker still writes memory). A starved dispatch (the caller waited on
   * a late worker, or the process got too little CPU: CPU_CHECK_MS) sends the rest of the call to one thread.
   * `work`: the call's multiply-adds or elements. `colArg`: column chunks (threads-split.ts Chunks.cols), whose
   * n0, n1 start at that argument; workers set their COL_RANGE_GLOBALS from them (`fn` must do so itself).
   * `pack`: the dispatch packs a shared B (counted in stats.packs, not stats.cols).
   */
  run(name: string, fn: (...args: number[]) => unknown, chunks: readonly (readonly number[])[], scratchArg: number, sharedB = 0, work = 0, colArg = -1, pack = false): void {
    if (this.#closed) throw new Error("the thread pool has been closed");
    const ctl = this.#ctl;
    const k = this.#index.get(name);
    if (k === undefined) throw new Error(`kernel ${name} is not known to the thread pool`);
    const argc = chunks[0]?.length ?? 0;
    if (chunks.length > CTL.maxChunks || argc > CTL.maxArgs) throw new Error(`kernel ${name}: ${chunks.length} chunks of ${argc} arguments do not fit the control block`);
    chunks.forEach((args, c) => ctl.set(args, CTL.table + c * CTL.maxArgs));
    ctl[CTL.kernel] = k;
    ctl[CTL.argc] = argc;
    ctl[CTL.scratchArg] = scratchArg;
    ctl[CTL.chunks] = chunks.length;
    ctl[CTL.sharedB] = sharedB;
    ctl[CTL.colArg] = colArg;
    const tWake = now();
    const workerChunks = Atomics.load(ctl, CTL.workerChunks);
    const gen = (Atomics.load(ctl, CTL.generation) + 1) | 0;
    const word0 = ((gen & CLAIM.tagMask) << CLAIM.tagShift) | (chunks.length << CLAIM.countShift);
    Atomics.store(ctl, CTL.done, 0);
    Atomics.store(ctl, CTL.failed, 0);
    Atomics.store(ctl, CTL.next, word0);
    Atomics.store(ctl, CTL.generation, gen);
    Atomics.notify(ctl, CTL.generation);
    // Tests only (testWorkerDelay): the caller lets a worker claim the first chunk, which it then runs late.
    if (ctl[CTL.delay]! > 0) while (Atomics.load(ctl, CTL.next) === word0) if (this.#canWait) Atomics.wait(ctl, CTL.next, word0, 5);
    let error: unknown;
    const t0 = now();
    if (cpuMs && this.#winT0 < 0 && (work >= CPU_CHECK_WORK || this.#callDispatched)) {
      this.#winCpu0 = cpuMs();
      this.#winT0 = now();
      this.#winDispatch = 0;
    }
    this.#callDispatched = true;
    try {
      for (let c = claimChunk(ctl, gen); c >= 0; c = claimChunk(ctl, gen)) {
        try {
          fn(...chunks[c]!);
        } finally {
          Atomics.add(ctl, CTL.done, 1);
        }
      }
    } catch (e) {
      error = e;
    }
    // Stop handing out chunks (all are claimed, or one threw); the chunks claimed so far must all finish, and a
    // worker that has claimed none is not waited for.
    const claimed = Atomics.exchange(ctl, CTL.next, word0 | CLAIM.indexMask) & CLAIM.indexMask;
    const t1 = now();
    this.#join(Math.min(claimed, chunks.length));
    const t2 = now();
    // Waking the workers (tWake to t0) is time the caller lost too (STARVE_FRACTION).
    const wait = t2 - t1 + (t0 - tWake);
    let cpuShort = false;
    if (cpuMs && this.#winT0 >= 0) {
      this.#winDispatch += t2 - Math.max(t0, this.#winT0);
      if (t2 - this.#winT0 >= this.cpuCheckMs) {
        const extra = cpuMs() - this.#winCpu0 - (t2 - this.#winT0);
        cpuShort = extra < (this.threads - 1) * (EXTRA_MIN * this.#winDispatch - WAKE_MS);
        if (!cpuShort) this.#callVerified = true;
        this.#winT0 = -1;
      }
    }
    this.stats.dispatches++;
    if (sharedB) this.stats.sharedB++;
    if (pack) this.stats.packs++;
    else if (colArg >= 0) this.stats.cols++;
    this.stats.workerChunks += Atomics.load(ctl, CTL.workerChunks) - workerChunks;
    if (wait > STARVE_FRACTION * (t1 - t0) + STARVE_MIN_MS || cpuShort) {
      this.stats.starved++;
      if (this.fallback) this.#callStarved = this.#solo = true;
    }
    if (error !== undefined) throw error;
    if (Atomics.load(ctl, CTL.failed)) throw new Error(`kernel ${name} failed on a worker thread`);
  }

  /** Waits until `chunks` chunks of the dispatch are done. */
  #join(chunks: number): void {
    const ctl = this.#ctl;
    for (;;) {
      let d = Atomics.load(ctl, CTL.done);
      for (let s = 0; d < chunks && s < JOIN_SPIN; s++) d = Atomics.load(ctl, CTL.done);
      if (d >= chunks) return;
      if (this.#canWait) Atomics.wait(ctl, CTL.done, d, 50);
    }
  }

  /** Stops and terminates the workers; later runs throw. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    Atomics.store(this.#ctl, CTL.stop, 1);
    Atomics.add(this.#ctl, CTL.generation, 1);
    Atomics.notify(this.#ctl, CTL.generation);
    for (const w of this.#workers) w.terminate();
  }
}

/**
 * The same wasm binary with its memory import declared shared (maximum SHARED_MAX_PAGES), which is all a
 * threaded build needs: the kernels never use atomics (threads only share the data, the pool synchronises).
 * Returns null when the binary has no memory import it can rewrite.
 */
export function toSharedBinary(bytes: Uint8Array): Uint8Array | null {
  let p = 8;
  const u32 = (): number => {
    let r = 0;
    for (let shift = 0; ; shift += 7) {
      const b = bytes[p++];
      if (b === undefined) throw new Error("truncated");
      r += (b & 0x7f) * 2 ** shift;
      if (!(b & 0x80)) return r;
    }
  };
  const leb = (n: number): number[] => {
    const out: number[] = [];
    do {
      const b = n % 128;
      n = Math.floor(n / 128);
      out.push(n > 0 ? b | 0x80 : b);
    } while (n > 0);
    return out;
  };
  try {
    while (p < bytes.length) {
      const secStart = p;
      const id = bytes[p++]!;
      const size = u32();
      const body = p;
      if (id !== 2) {
        p = body + size;
        continue;
      }
      const count = u32();
      for (let i = 0; i < count; i++) {
        for (let name = 0; name < 2; name++) { // module and field names (read the length before moving p)
          const len = u32();
          p += len;
        }
        const kind = bytes[p++]!;
        if (kind === 0) u32();
        else if (kind === 1) {
          p++; // element type
          const hasMax = bytes[p++]! & 1;
          u32();
          if (hasMax) u32();
        }
        else if (kind === 3) p += 2;
        else if (kind === 4) { p++; u32(); }
        else if (kind === 2) {
          const limStart = p;
          const flags = bytes[p++]!;
          if (flags & ~3) return null; // memory64 or unknown flags
          const min = u32();
          if (flags & 1) u32();
          if (min > SHARED_MAX_PAGES) return null;
          const limits = [0x03, ...leb(min), ...leb(SHARED_MAX_PAGES)];
          const newBody = [...bytes.subarray(body, limStart), ...limits, ...bytes.subarray(p, body + size)];
          const out = [...bytes.subarray(0, secStart), 2, ...leb(newBody.length), ...newBody];
          const result = new Uint8Array(out.length + bytes.length - (body + size));
          result.set(out, 0);
          result.set(bytes.subarray(body + size), out.length);
          return result;
        } else return null;
      }
      return null;
    }
  } catch {
    return null;
  }
  return null;
}
