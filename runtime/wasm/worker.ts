// Thread pool worker: the source each worker runs (a string, so it loads the same way from dist/, a generated
// module's kiln-runtime/, vitest's TS sources or a browser Blob URL). It instantiates the kernels on the shared
// memory, then loops: wait for a new generation on the control block, claim chunks of the current kernel call
// until none is left (the main thread claims them too), counting each one `done`. A worker that wakes after the
// call's chunks are all claimed finds none to claim and touches nothing, so the caller never waits for it.

import { ALL_COLUMNS, COL_RANGE_GLOBALS, SHARED_B_GLOBAL } from "./threads-meta.js";

/** Control block layout (Int32Array over a SharedArrayBuffer), shared with threads.ts. */
export const CTL = {
  /** Incremented by the main thread for every dispatch; workers wait on it. */
  generation: 0,
  /** Chunks of the current dispatch finished (by any thread); the main thread waits for all it handed out. */
  done: 1,
  /** Set to 1 when any worker's kernel threw. */
  failed: 2,
  /** Set to 1 to make the workers return. */
  stop: 3,
  /** The claim word (CLAIM): the dispatch's tag and chunk count, and the next chunk to claim. */
  next: 4,
  /** How many chunks the dispatch has (also in the claim word; kept for reading it plainly). */
  chunks: 5,
  /** Kernel index, argument count, and which argument is replaced by the thread's own scratch (-1: none). */
  kernel: 6,
  argc: 7,
  scratchArg: 8,
  /** Address of a B packed once for this dispatch (0: none); each thread sets its instance's SHARED_B_GLOBAL. */
  sharedB: 9,
  /** Chunks the workers ran (a statistic the pool reads back; never reset). */
  workerChunks: 10,
  /** Tests only: ms a worker sleeps after claiming its first chunk of a dispatch (a descheduled worker). */
  delay: 11,
  /**
   * Column chunks: the index of n0 in each chunk's arguments (n1 follows), which each thread puts in its
   * instance's COL_RANGE_GLOBALS before the chunk and resets after the dispatch; -1: a row or outer split.
   */
  colArg: 12,
  /**
   * Tests only: ms a worker sleeps after waking for a dispatch and before claiming (one the OS wakes late), and
   * how many such late wakes have ended.
   */
  wakeDelay: 13,
  lateWakes: 14,
  /** Worker w's scratch pointer is at scratch + w. */
  scratch: 16,
  /** Chunk c's arguments start at table + c * maxArgs. */
  table: 96,
  maxArgs: 64,
  maxChunks: 64,
} as const;

/**
 * The claim word at CTL.next: bits 0-6 the next chunk, 7-13 the dispatch's chunk count, 14-30 its tag (the
 * generation's low 17 bits). A thread claims chunk c by compareExchange from c to c + 1 while the tag is that of
 * the generation it woke for and c < count: a late worker's claim on a finished dispatch fails, so it never
 * reads a chunk table the caller has moved on from (a stale claim would need exactly 2^17 dispatches to pass
 * while it is descheduled between two instructions, with the same chunk count and index).
 */
export const CLAIM = { countShift: 7, tagShift: 14, tagMask: 0x1ffff, indexMask: 0x7f } as const;

/** The chunk claimed from the word at ctl[CTL.next] for generation `gen`, or -1 (none left, or another dispatch). */
export function claimChunk(ctl: Int32Array, gen: number): number {
  for (;;) {
    const w = Atomics.load(ctl, CTL.next);
    const c = w & CLAIM.indexMask;
    if (w >>> CLAIM.tagShift !== (gen & CLAIM.tagMask) || c >= ((w >>> CLAIM.countShift) & CLAIM.indexMask)) return -1;
    if (Atomics.compareExchange(ctl, CTL.next, w, w + 1) === w) return c;
  }
}

/** Atomics.load polls before a worker sleeps: consecutive kernels of one call then start without a wake-up. */
export const WORKER_SPIN = 2000;

// Plain ES2017 with no imports: it runs as a CommonJS eval worker under Node and as a classic Web Worker.
export const WORKER_SOURCE = `"use strict";
(function () {
  var CTL = ${JSON.stringify(CTL)};
  var CLAIM = ${JSON.stringify(CLAIM)};
  function claim(ctl, gen) {
    for (;;) {
      var w = Atomics.load(ctl, CTL.next), c = w & CLAIM.indexMask;
      if (w >>> CLAIM.tagShift !== (gen & CLAIM.tagMask) || c >= ((w >>> CLAIM.countShift) & CLAIM.indexMask)) return -1;
      if (Atomics.compareExchange(ctl, CTL.next, w, w + 1) === w) return c;
    }
  }
  var SPIN = ${WORKER_SPIN};
  function start(init, post) {
    var mod = init.module;
    var imports = {};
    WebAssembly.Module.imports(mod).forEach(function (imp) {
      var ns = imports[imp.module] || (imports[imp.module] = {});
      if (imp.kind === "memory") ns[imp.name] = init.memory;
      else if (imp.kind === "function" && imp.module === "Math") ns[imp.name] = Math[imp.name];
    });
    var exports = new WebAssembly.Instance(mod, imports).exports;
    var fns = init.names.map(function (n) { return exports[n]; });
    var sharedB = exports[${JSON.stringify(SHARED_B_GLOBAL)}];
    var n0g = exports[${JSON.stringify(COL_RANGE_GLOBALS[0])}], n1g = exports[${JSON.stringify(COL_RANGE_GLOBALS[1])}];
    var ctl = new Int32Array(init.control);
    var seen = Atomics.load(ctl, CTL.generation);
    post({ ready: true });
    for (;;) {
      var g = Atomics.load(ctl, CTL.generation);
      for (var s = 0; g === seen && s < SPIN; s++) g = Atomics.load(ctl, CTL.generation);
      if (g === seen) { Atomics.wait(ctl, CTL.generation, seen); continue; }
      seen = g;
      if (Atomics.load(ctl, CTL.stop)) return;
      var wd = Atomics.load(ctl, CTL.wakeDelay);
      if (wd > 0) { Atomics.wait(ctl, CTL.wakeDelay, wd, wd); Atomics.add(ctl, CTL.lateWakes, 1); }
      // The dispatch's fields are read once a chunk is claimed: the caller wrote them before publishing the
      // claim word, and cannot start another dispatch while a claimed chunk is unfinished.
      var fn = null, argc = 0, sa = -1, ca = -1, args = null;
      for (var c = claim(ctl, g); c >= 0; c = claim(ctl, g)) {
        if (fn === null) {
          fn = fns[ctl[CTL.kernel]]; argc = ctl[CTL.argc]; sa = ctl[CTL.scratchArg];
          ca = n0g && n1g ? ctl[CTL.colArg] : -1;
          args = new Array(argc);
          if (sharedB) sharedB.value = ctl[CTL.sharedB];
          var delay = ctl[CTL.delay];
          if (delay > 0) Atomics.wait(ctl, CTL.delay, delay, delay);
        }
        try {
          for (var i = 0; i < argc; i++) args[i] = ctl[CTL.table + c * CTL.maxArgs + i];
          if (sa >= 0) args[sa] = ctl[CTL.scratch + init.index];
          if (ca >= 0) { n0g.value = args[ca]; n1g.value = args[ca + 1]; }
          fn.apply(null, args);
          Atomics.add(ctl, CTL.workerChunks, 1);
        } catch (e) { Atomics.store(ctl, CTL.failed, 1); }
        Atomics.add(ctl, CTL.done, 1);
        Atomics.notify(ctl, CTL.done);
      }
      if (fn !== null) {
        if (sharedB) sharedB.value = 0;
        if (ca >= 0) { n0g.value = 0; n1g.value = ${ALL_COLUMNS}; }
      }
    }
  }
  if (typeof self === "undefined" && typeof require === "function") {
    var wt = require("node:worker_threads");
    wt.parentPort.once("message", function (init) { start(init, function (m) { wt.parentPort.postMessage(m); }); });
  } else {
    self.onmessage = function (e) { self.onmessage = null; start(e.data, function (m) { self.postMessage(m); }); };
  }
})();
`;
