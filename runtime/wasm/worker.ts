// Thread pool worker: the source each worker runs (a string, so it loads the same way from dist/, a generated
// module's kiln-runtime/, vitest's TS sources or a browser Blob URL). It instantiates the kernels on the shared
// memory, then loops: wait for a new generation on the control block, claim chunks of the current kernel call
// until none is left (the main thread claims them too), count down `pending`.

import { ALL_COLUMNS, COL_RANGE_GLOBALS, SHARED_B_GLOBAL } from "./threads-meta.js";

/** Control block layout (Int32Array over a SharedArrayBuffer), shared with threads.ts. */
export const CTL = {
  /** Incremented by the main thread for every dispatch; workers wait on it. */
  generation: 0,
  /** Workers still in the current dispatch; the main thread waits for 0. */
  pending: 1,
  /** Set to 1 when any worker's kernel threw. */
  failed: 2,
  /** Set to 1 to make the workers return. */
  stop: 3,
  /** Next chunk to claim (Atomics.add), and how many chunks the dispatch has. */
  next: 4,
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
  /** Worker w's scratch pointer is at scratch + w. */
  scratch: 16,
  /** Chunk c's arguments start at table + c * maxArgs. */
  table: 96,
  maxArgs: 64,
  maxChunks: 64,
} as const;

/** Atomics.load polls before a worker sleeps: consecutive kernels of one call then start without a wake-up. */
export const WORKER_SPIN = 2000;

// Plain ES2017 with no imports: it runs as a CommonJS eval worker under Node and as a classic Web Worker.
export const WORKER_SOURCE = `"use strict";
(function () {
  var CTL = ${JSON.stringify(CTL)};
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
      var fn = fns[ctl[CTL.kernel]], argc = ctl[CTL.argc], sa = ctl[CTL.scratchArg], n = ctl[CTL.chunks];
      var args = new Array(argc), sb = ctl[CTL.sharedB], delay = ctl[CTL.delay], first = true;
      var ca = n0g && n1g ? ctl[CTL.colArg] : -1;
      try {
        if (sharedB) sharedB.value = sb;
        for (var c = Atomics.add(ctl, CTL.next, 1); c < n; c = Atomics.add(ctl, CTL.next, 1)) {
          if (first && delay > 0) Atomics.wait(ctl, CTL.delay, delay, delay);
          first = false;
          for (var i = 0; i < argc; i++) args[i] = ctl[CTL.table + c * CTL.maxArgs + i];
          if (sa >= 0) args[sa] = ctl[CTL.scratch + init.index];
          if (ca >= 0) { n0g.value = args[ca]; n1g.value = args[ca + 1]; }
          fn.apply(null, args);
          Atomics.add(ctl, CTL.workerChunks, 1);
        }
      } catch (e) { Atomics.store(ctl, CTL.failed, 1); }
      if (sharedB) sharedB.value = 0;
      if (ca >= 0) { n0g.value = 0; n1g.value = ${ALL_COLUMNS}; }
      if (Atomics.sub(ctl, CTL.pending, 1) === 1) Atomics.notify(ctl, CTL.pending);
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
