// The oracle: a float64 interpreter of any IR graph, using each op's reference evaluator from the registry.
// Tests compare every backend with it. It is slow on purpose (plain loops, no tricks) and is not shipped with
// generated modules (it imports the compiler's op registry).

import type { Graph } from "../ir/graph.js";
import type { Shape } from "../ir/types.js";
import { OPS } from "../ops/registry.js";
import type { RefTensor } from "../ops/types.js";
import { roundRefToStorage } from "../ops/shape-utils.js";
import { KilnError, loopBoundError } from "../../runtime/errors.js";
import { RandomStreams } from "../../runtime/random.js";
import { bindDerivedDims, checkDimLimits, dimsProduct } from "../../runtime/dim-expr.js";
import { dimLimits } from "../ir/dim-limits.js";
import { checkIndices } from "../../runtime/bind.js";

export interface RefInput {
  readonly data: ArrayLike<number>;
  readonly shape?: readonly number[];
}

function bindDims(g: Graph, inputs: Record<string, RefInput>, dims: Record<string, number>): Record<string, number> {
  const bind = { ...dims };
  for (const io of g.inputs) {
    const t = g.nodes[io.node].type;
    const given = inputs[io.name];
    if (!given) throw new KilnError(`${g.name}: missing input "${io.name}"`, { fn: g.name, tensor: io.name });
    const shape = given.shape;
    if (shape) {
      if (shape.length !== t.shape.length) throw new KilnError(`${g.name}: input "${io.name}" has rank ${shape.length}, expected ${t.shape.length}`, { fn: g.name, tensor: io.name });
      t.shape.forEach((d, k) => {
        if (typeof d === "number") {
          if (d !== shape[k]) throw new KilnError(`${g.name}: input "${io.name}" dimension ${k} is ${shape[k]}, expected ${d}`, { fn: g.name, tensor: io.name });
        } else if (bind[d] === undefined) bind[d] = shape[k];
        else if (bind[d] !== shape[k]) throw new KilnError(`${g.name}: dimension ${d} is ${bind[d]} but input "${io.name}" has ${shape[k]}`, { fn: g.name, tensor: io.name });
      });
    }
  }
  for (const io of g.inputs) {
    const t = g.nodes[io.node].type;
    const unbound = t.shape.filter((d): d is string => typeof d === "string" && bind[d] === undefined);
    if (unbound.length === 1) {
      const known = t.shape.reduce<number>((p, d) => p * (typeof d === "number" ? d : (bind[d] ?? 1)), 1);
      bind[unbound[0]] = inputs[io.name].data.length / known;
    }
  }
  bindDerivedDims(bind, g.nodes.map((n) => n.type.shape), g.name);
  checkDimLimits(bind, dimLimits(g), g.name);
  return bind;
}

function concrete(shape: Shape, bind: Record<string, number>, fn: string): number[] {
  return shape.map((d) => {
    if (typeof d === "number") return d;
    const v = bind[d];
    if (v === undefined || !Number.isInteger(v) || v < 1) throw new KilnError(`${fn}: cannot determine dimension ${d}; pass it in dims`, { fn });
    return v;
  });
}

export interface EvaluateOptions {
  /**
   * Where random_uniform values come from (default: fresh streams of seed 0). A `RandomStreams` of the wasm
   * module's load seed gives the values that module's first call draws; reuse it across calls to follow later ones.
   */
  readonly random?: RandomStreams;
}

/**
 * Evaluates `g` in float64. Inputs are flat arrays (with an optional shape); params by qualified name.
 * Returns every output.
 */
export function evaluateGraph(
  g: Graph,
  inputs: Record<string, RefInput>,
  params: Record<string, ArrayLike<number>> = {},
  dims: Record<string, number> = {},
  options: EvaluateOptions = {},
): RefTensor[] {
  const bind = bindDims(g, inputs, dims);
  for (const io of g.inputs) if (io.bound !== undefined) checkIndices(g.name, { name: io.name, dtype: "i32", shape: [...g.nodes[io.node].type.shape], bound: io.bound }, inputs[io.name]!.data, bind);
  const random = options.random ?? new RandomStreams(0);
  const vals: RefTensor[] = [];
  for (const n of g.nodes) {
    const shape = concrete(n.type.shape, bind, g.name);
    const size = shape.reduce((a, b) => a * b, 1);
    const leaf = (src: ArrayLike<number> | undefined, what: string): RefTensor => {
      if (!src) throw new KilnError(`${g.name}: missing ${what}`, { fn: g.name, tensor: what });
      if (src.length !== size) throw new KilnError(`${g.name}: ${what} has ${src.length} elements, expected ${size} (shape [${shape.join(", ")}])`, { fn: g.name, tensor: what });
      return { dtype: n.type.dtype, shape, data: Float64Array.from(src) };
    };
    const a = n.attrs as { name?: string; stream?: number };
    // Drawn before the guard check, in node order: the wasm executor draws every random value before the steps.
    const drawn = n.op === "random_uniform" ? Float64Array.from(random.next(g.name, a.stream!, size)) : undefined;
    // A node under a failed guard (a branch not taken, a loop iteration not run) is skipped and reads as zeros.
    if (n.guard?.some((g) => (vals[g.cond].data[0] !== 0) !== g.when)) {
      vals.push({ dtype: n.type.dtype, shape, data: new Float64Array(size) });
      continue;
    }
    // Every f16/bf16 value is rounded to its format (inputs and params too), so the oracle sees what a backend
    // storing 16 bits sees; f32 values stay float64.
    let v: RefTensor;
    if (n.op === "input") v = leaf(inputs[a.name!]?.data, `input "${a.name}"`);
    else if (n.op === "param") v = leaf(params[a.name!], `param "${a.name}"`);
    else if (drawn) v = { dtype: n.type.dtype, shape, data: drawn };
    else if (n.op === "dim_size") v = { dtype: n.type.dtype, shape, data: Float64Array.of(dimsProduct((n.attrs as { dims: Shape }).dims, bind, g.name)) };
    else v = OPS[n.op].evaluate(n.inputs.map((i) => vals[i]), n.attrs as never, { dtype: n.type.dtype, shape });
    vals.push(roundRefToStorage(v));
  }
  for (const o of g.outputs) {
    const err = o.check && loopBoundError(g.name, o.check, vals[o.node].data[0]!);
    if (err) throw err;
  }
  return g.outputs.filter((o) => !o.check).map((o) => vals[o.node]);
}
