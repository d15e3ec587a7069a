// Runtime side of dynamic loss scaling: after each training step, notices a scale stuck at its floor by
// persistent overflow, and turns it into an error naming the step and the first tensor that overflowed (found
// by re-running the step with NaN/Inf checking; a skipped step changes nothing but the scaler state).

import { KilnError } from "../errors.js";
import type { KilnModule } from "../wasm/module.js";
import type { CallInputs } from "../bind.js";
import { checkpointParams } from "./checkpoint.js";

export interface ScalerState {
  scale: number;
  goodSteps: number;
  min: number;
  /** A static scale (`loss_scale: 1024`): the overflowing steps in a row. */
  skipped?: number;
}

/** The scaler state of train block `train`, or undefined when it has no loss scaling. */
export function readScaler(mod: KilnModule, train: string): ScalerState | undefined {
  const has = mod.manifest.params.some((p) => p.name === `${train}.scaler.scale`);
  if (!has) return undefined;
  const get = (n: string) => Number(mod.getParam(`${train}.scaler.${n}`).data[0]);
  const fixed = mod.manifest.params.some((p) => p.name === `${train}.scaler.skipped`);
  return { scale: get("scale"), goodSteps: get("good_steps"), min: get("min"), ...(fixed ? { skipped: get("skipped") } : {}) };
}

/**
 * Whether the scaler gave up: a dynamic scale overflowing at its minimum (after a step that started there), or a
 * static scale overflowing twice in a row (one overflow is skipped, as a spike; every step overflowing is not).
 */
export function scaleCollapsed(before: ScalerState, after: ScalerState): boolean {
  if (after.skipped !== undefined) return after.skipped >= 2;
  return after.goodSteps === 0 && before.scale <= after.min && after.scale <= after.min;
}

/**
 * Runs one step of `train` and checks its scaler: two overflowing steps in a row at the minimum scale are a
 * KilnError (code "loss_scale_collapsed") naming the step number and the first non-finite tensor. With
 * `checkNumerics` and loss scaling, an overflow is not an error by itself (the scaler skips that step; the
 * collapse above catches one that never goes away): the checked call stops at the first Inf/NaN, so the params
 * are restored from before it and the step runs again unchecked.
 */
export function trainStepWithScaler(mod: KilnModule, train: string, inputs: CallInputs, step: number, checkNumerics = false): number {
  const before = readScaler(mod, train);
  const r = before && checkNumerics ? checkedScaledStep(mod, train, inputs) : mod.call(`${train}.step`, inputs, { checkNumerics });
  const loss = Number((Array.isArray(r) ? r[0] : r).data[0]);
  const after = readScaler(mod, train);
  if (before && after && scaleCollapsed(before, after)) {
    let where = "the loss itself is not finite";
    try {
      mod.call(`${train}.step`, inputs, { checkNumerics: true });
    } catch (e) {
      if (e instanceof KilnError && e.code === "non_finite") where = `the first tensor that overflowed: ${e.message}`;
      else throw e;
    }
    const what = after.skipped !== undefined ? `the static loss scale ${after.scale} overflowed ${after.skipped} steps in a row` : `the loss scale collapsed to its minimum ${after.min} (every step overflows)`;
    throw new KilnError(`training step ${step}: ${what}; ${where}`, { code: "loss_scale_collapsed", fn: `${train}.step` });
  }
  return loss;
}

function checkedScaledStep(mod: KilnModule, train: string, inputs: CallInputs): ReturnType<KilnModule["call"]> {
  // Updates may already be written into their params when a later kernel's output is found non-finite.
  const saved = checkpointParams(mod).map((name) => [name, mod.getParam(name)] as const);
  try {
    return mod.call(`${train}.step`, inputs, { checkNumerics: true });
  } catch (e) {
    if (!(e instanceof KilnError && e.code === "non_finite")) throw e;
    for (const [name, t] of saved) mod.setParam(name, t);
    return mod.call(`${train}.step`, inputs);
  }
}
