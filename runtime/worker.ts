// Thread pool worker: the source each worker runs (a string, so it loads the same way from dist/, a generated
// module's kiln-runtime/, vitest's TS sources or a browser Blob URL). It instantiates the kernels on the shared
// memory, then loops: wait for a new generation on the control block, run its slot's kernel call, count down.

/** Control block layout (Int32Array over a SharedArrayBuffer), shared with threads.ts. */
export const CTL = {
  /** Incremented by the main thread for every dispatch; workers wait on it. */
  generation: 0,
  /** Workers still running the current dispatch; the main thread waits for 0. */
  pending: 1,
  /** Set to 1 when any worker's kernel threw. */
  failed: 2,
  /** Set to 1 to make the workers return. */
  stop: 3,
  /** First slot; slot w-1 belongs to worker w: [kernel index or -1, argc, args...]. */
  slots: 8,
  slotSize: 64,
} as const;

/** Atomics.load polls before a worker sleeps: consecutive kernels of one call then start without a wake-up. */
export const WORKER_SPIN = 20000;

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
    var ctl = new Int32Array(init.control);
    var base = CTL.slots + (init.index - 1) * CTL.slotSize;
    var seen = Atomics.load(ctl, CTL.generation);
    post({ ready: true });
    for (;;) {
      var g = Atomics.load(ctl, CTL.generation);
      for (var s = 0; g === seen && s < SPIN; s++) g = Atomics.load(ctl, CTL.generation);
      if (g === seen) { Atomics.wait(ctl, CTL.generation, seen); continue; }
      seen = g;
      if (Atomics.load(ctl, CTL.stop)) return;
      var k = ctl[base];
      if (k >= 0) {
        var args = [];
        for (var i = 0; i < ctl[base + 1]; i++) args.push(ctl[base + 2 + i]);
        try { fns[k].apply(null, args); } catch (e) { Atomics.store(ctl, CTL.failed, 1); }
      }
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
