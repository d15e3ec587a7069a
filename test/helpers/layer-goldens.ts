// Test helper: the PyTorch goldens of the issue-16 layers (test/ops/torch-layer-goldens.json, written by
// scripts/torch-layer-goldens.py) and the Kiln programs that compute each case's outputs, loss and gradients.
import { readFileSync } from "node:fs";

export interface LayerGolden {
  name: string;
  group: string;
  expr: string;
  inputs: Record<string, { shape: number[]; data: number[] }>;
  outs: { shape: number[]; y: number[]; r: number[] }[];
  wrt: string[];
  grads: Record<string, number[]>;
}

/** The cases of a golden file in test/ops/ (`name`: its file name). */
export function goldenCases(name: string): LayerGolden[] {
  return (JSON.parse(readFileSync(new URL(`../ops/${name}`, import.meta.url), "utf8")) as { cases: LayerGolden[] }).cases;
}

export const LAYER_GOLDENS = goldenCases("torch-layer-goldens.json");

const ty = (dt: string, s: number[]): string => (s.length ? `${dt}[${s.join(", ")}]` : dt);

/**
 * fwd(inputs) = expr; loss(inputs, r0, r1...) = sum over outputs of sum(out_k * r_k); grads(...) = the loss's
 * gradient with respect to `wrt`, in order. `dt` is the float type the program declares (f32 or f64).
 */
export function layerProgram(c: LayerGolden, dt = "f32"): string {
  const names = Object.keys(c.inputs);
  const sig = names.map((k) => `${k}: ${ty(dt, c.inputs[k].shape)}`).join(", ");
  const rs = c.outs.map((o, k) => `r${k}: ${ty(dt, o.shape)}`).join(", ");
  const outT = c.outs.length === 1 ? ty(dt, c.outs[0].shape) : `(${c.outs.map((o) => ty(dt, o.shape)).join(", ")})`;
  const os = c.outs.map((_, k) => `o${k}`);
  const call = `fwd(${names.join(", ")})`;
  const bind = c.outs.length === 1 ? `let o0 = ${call}` : `let ${os.join(", ")} = ${call}`;
  const gradT = c.wrt.map((k) => ty(dt, c.inputs[k].shape));
  const all = [...names, ...c.outs.map((_, k) => `r${k}`)].join(", ");
  return [
    `fn fwd(${sig}) -> ${outT} {\n  return ${c.expr}\n}`,
    `fn loss(${sig}, ${rs}) -> ${dt} {\n  ${bind}\n  return ${os.map((o, k) => `sum(${o} * r${k})`).join(" + ")}\n}`,
    `fn grads(${sig}, ${rs}) -> ${gradT.length === 1 ? gradT[0] : `(${gradT.join(", ")})`} {\n  return grad(loss, wrt: [${c.wrt.join(", ")}])(${all})\n}`,
  ].join("\n");
}

/** The case's inputs, and with the loss weights r0, r1... for `loss` and `grads`. */
export function layerInputs(c: LayerGolden, dtype: "f32" | "f64" = "f32", withR = false) {
  const out: Record<string, { dtype: "f32" | "f64"; shape: number[]; data: number[] }> = {};
  for (const [k, v] of Object.entries(c.inputs)) out[k] = { dtype, shape: v.shape, data: [...v.data] };
  if (withR) c.outs.forEach((o, k) => (out[`r${k}`] = { dtype, shape: o.shape, data: [...o.r] }));
  return out;
}
