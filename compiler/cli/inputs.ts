// CLI helper: parses `--input name=SPEC` values for `kiln run` (random:[4,784], zeros:[3], ones:[2,2],
// a number, or a JSON array such as [[1,2],[3,4]]) into flat data + shape, seeded for reproducibility.

import { Rng } from "../../runtime/rng.js";

export interface ParsedInput {
  readonly data: number[];
  readonly shape: number[];
}

export class InputSpecError extends Error {}

function parseShape(s: string, name: string): number[] {
  let v: unknown;
  try {
    v = JSON.parse(s);
  } catch {
    v = undefined;
  }
  if (!Array.isArray(v) || !v.every((d) => Number.isInteger(d) && d >= 1)) {
    throw new InputSpecError(`--input ${name}: '${s}' is not a shape; write e.g. random:[4,784]`);
  }
  return v as number[];
}

function flatten(v: unknown, name: string): ParsedInput {
  if (typeof v === "number" || typeof v === "boolean") return { data: [Number(v)], shape: [] };
  if (!Array.isArray(v) || v.length === 0) throw new InputSpecError(`--input ${name}: expected a number or a non-empty array`);
  const parts = v.map((x) => flatten(x, name));
  const inner = JSON.stringify(parts[0].shape);
  if (parts.some((p) => JSON.stringify(p.shape) !== inner)) throw new InputSpecError(`--input ${name}: ragged array (rows of different lengths)`);
  return { data: parts.flatMap((p) => p.data), shape: [v.length, ...parts[0].shape] };
}

/** `integer`: draw integers in [0, 10) for random inputs of integer dtype. */
export function parseInputSpec(name: string, spec: string, rng: Rng, integer: boolean): ParsedInput {
  const m = /^(random|zeros|ones):(.*)$/.exec(spec);
  if (m) {
    const shape = parseShape(m[2], name);
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Array<number>(n);
    for (let i = 0; i < n; i++) {
      data[i] = m[1] === "zeros" ? 0 : m[1] === "ones" ? 1 : integer ? Math.floor(rng.uniform(0, 10)) : rng.normal(0, 1);
    }
    return { data, shape };
  }
  let v: unknown;
  try {
    v = JSON.parse(spec);
  } catch {
    throw new InputSpecError(`--input ${name}: cannot parse '${spec}'; use random:[dims], zeros:[dims], ones:[dims], a number, or a JSON array`);
  }
  return flatten(v, name);
}
