// The per-step profile shared by bench/profile-*.js: runs one compiled function `calls` times through its wasm
// executor with the step observer, which timestamps every step; returns each step's times (ms) and each call's.
import { WASM_STATE } from "../dist/runtime/wasm/module.js";

/**
 * `onCall(i)` runs before call i (e.g. to restart a CPU clock once warm-up calls are done); `state`: the WASM_STATE
 * symbol of the build `m` came from (another tree's dist/).
 */
export function stepTimes(m, fn, inputs, calls, onCall = () => {}, state = WASM_STATE) {
  const exec = m[state]("profile").executors.get(fn.name);
  const steps = fn.steps.map(() => []);
  const totals = [];
  let t0 = 0;
  const observe = (si) => {
    const t = performance.now();
    steps[si].push(t - t0);
    t0 = t;
  };
  for (let i = 0; i < calls; i++) {
    onCall(i);
    t0 = performance.now();
    const start = t0;
    exec.run(inputs, undefined, observe);
    totals.push(performance.now() - start);
  }
  return { steps, totals };
}
