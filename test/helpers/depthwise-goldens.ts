// Test helper: the PyTorch goldens of depthwise conv2d (test/ops/torch-depthwise-goldens.json, written by
// scripts/torch-depthwise-goldens.py) and the Kiln program computing each case's output and gradients.
import { readFileSync } from "node:fs";
import type { Input } from "./backend.js";

export interface DepthwiseGolden {
  name: string;
  shapes: Record<string, number[]>;
  options: string;
  inputs: Record<string, number[]>;
  r: number[];
  outShape: number[];
  y: number[];
  grads: Record<string, number[]>;
}

export const DEPTHWISE_GOLDENS = (JSON.parse(readFileSync(new URL("../ops/torch-depthwise-goldens.json", import.meta.url), "utf8")) as { cases: DepthwiseGolden[] }).cases;

const ty = (s: number[]) => `f32[${s.join(", ")}]`;

/** `fwd` (the conv) and `grads` (d sum(conv * r) / d each input), in f32. */
export function depthwiseProgram(c: DepthwiseGolden): string {
  const names = Object.keys(c.shapes);
  const sig = names.map((n) => `${n}: ${ty(c.shapes[n]!)}`).join(", ");
  const conv = `conv2d(${names.join(", ")}, ${c.options})`;
  return `
fn fwd(${sig}) -> ${ty(c.outShape)} { return ${conv} }
fn loss(${sig}, r: ${ty(c.outShape)}) -> f32 { return sum(${conv} * r) }
fn grads(${sig}, r: ${ty(c.outShape)}) -> (${names.map((n) => ty(c.shapes[n]!)).join(", ")}) { return grad(loss, wrt: [${names.join(", ")}])(${names.join(", ")}, r) }`;
}

export function depthwiseInputs(c: DepthwiseGolden, withR: boolean): Record<string, Input> {
  const out: Record<string, Input> = {};
  for (const [n, s] of Object.entries(c.shapes)) out[n] = { dtype: "f32", shape: s, data: c.inputs[n]! };
  if (withR) out.r = { dtype: "f32", shape: c.outShape, data: c.r };
  return out;
}
