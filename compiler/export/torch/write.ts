// Torch export, the function writer: one IR graph (or the part of one that computes some values) -> the body of
// a Python function over torch tensors. Raised chains become torch's own layers (F.conv2d, F.max_pool2d,
// torch.softmax, F.layer_norm); every other op comes from the op table. Kiln-only features are errors here.

import { useCounts, type Graph, type Node } from "../../ir/graph.js";
import { KilnError } from "../../../runtime/errors.js";
import { raisePatterns, type RaisedOp } from "../patterns.js";
import { DimUnreadable, foldDim } from "../dim-expr.js";
import { TORCH_OPS, TorchUnmappable, pyNum, type PyScope } from "./ops.js";

const PY_KEYWORDS = new Set("False None True and as assert async await break class continue def del elif else except finally for from global if import in is lambda nonlocal not or pass raise return try while with yield dev self torch F math".split(" "));

export function pyName(s: string): string {
  const base = s.replace(/[^A-Za-z0-9_]/g, "_");
  return PY_KEYWORDS.has(base) ? `${base}_` : base;
}

function torchError(g: Graph, n: Node | undefined, what: string, hint: string): KilnError {
  const at = n?.span ? `${n.span.file}:${n.span.line}:${n.span.col}: ` : "";
  return new KilnError(`${at}cannot export ${g.name} to PyTorch: ${what}\nhint: ${hint}`);
}

function raisedExpr(op: RaisedOp, ins: string[]): string {
  const pair = (a: readonly number[]) => `(${a.join(", ")})`;
  switch (op.kind) {
    case "conv": {
      const [t, l, b, r] = op.pads;
      const x = t === b && l === r ? ins[0] : `F.pad(${ins[0]}, (${l}, ${r}, ${t}, ${b}))`;
      const pad = t === b && l === r ? pair([t, l]) : "(0, 0)";
      return `F.conv2d(${x}, ${ins[1]}, ${op.bias ? ins[2] : "None"}, stride=${pair(op.stride)}, padding=${pad}, dilation=${pair(op.dilation)})`;
    }
    case "max_pool":
    case "avg_pool": {
      const [t, l, b, r] = op.pads;
      // torch pools pad symmetrically and at most half a window; other padding is written out (-inf for max).
      const inline = t === b && l === r && 2 * t <= op.kernel[0] && 2 * l <= op.kernel[1];
      const x = inline ? ins[0] : `F.pad(${ins[0]}, (${l}, ${r}, ${t}, ${b}), value=${op.kind === "max_pool" ? "-math.inf" : "0.0"})`;
      const pad = inline ? pair([t, l]) : "(0, 0)";
      return op.kind === "max_pool"
        ? `F.max_pool2d(${x}, kernel_size=${pair(op.kernel)}, stride=${pair(op.stride)}, padding=${pad})`
        : `F.avg_pool2d(${x}, kernel_size=${pair(op.kernel)}, stride=${pair(op.stride)}, padding=${pad}, count_include_pad=True)`;
    }
    case "softmax":
      return `torch.softmax(${ins[0]}, dim=${op.axis})`;
    case "log_softmax":
      return `torch.log_softmax(${ins[0]}, dim=${op.axis})`;
    case "layer_norm":
      return `F.layer_norm(${ins[0]}, (${op.size},), ${op.gamma ? ins[1] : "None"}, ${op.beta ? ins[ins.length - 1] : "None"}, eps=${op.eps})`;
  }
}

export interface PyFunctionSpec {
  /** Python def name. */
  name: string;
  /** A method of the model class (params read as self.NAME). */
  method: boolean;
  /** Python expression for param `qualified` (e.g. "self.w1"). */
  param: (qualified: string) => string;
  /** The values to return (default: the graph's outputs). */
  results?: number[];
  /** Values computed besides the results (for the epilogue: running-statistics updates). */
  extra?: number[];
  /** Statements after the values are computed, given their Python names. */
  epilogue?: (name: (id: number) => string) => string[];
  doc?: string;
}

/** The ids `roots` depend on, in graph order. */
export function closure(g: Graph, roots: readonly number[]): Set<number> {
  const seen = new Set<number>();
  const stack = [...roots];
  while (stack.length) {
    const id = stack.pop()!;
    if (seen.has(id)) continue;
    seen.add(id);
    stack.push(...g.nodes[id].inputs);
  }
  return seen;
}

export function writePyFunction(g: Graph, spec: PyFunctionSpec): string {
  const results = spec.results ?? g.outputs.map((o) => o.node);
  const live = closure(g, [...results, ...(spec.extra ?? [])]);
  for (const id of live) {
    const n = g.nodes[id];
    if (n.guard?.length) throw torchError(g, n, "it branches or loops on a run-time value (an `if` or loop whose condition is computed), which this writer does not turn into Python control flow", "export a function without data-dependent control flow");
  }
  const uses = useCounts(g);
  const raised = raisePatterns(g, uses);
  const covered = new Set([...raised.values()].flatMap((r) => r.covered));
  const names = new Map<number, string>();
  const dimSrc = new Map<string, string>();
  const args = g.inputs.map((io) => pyName(io.name));
  g.inputs.forEach((io, k) => g.nodes[io.node].type.shape.forEach((d, axis) => {
    if (typeof d === "string" && !dimSrc.has(d)) dimSrc.set(d, `${args[k]}.shape[${axis}]`);
  }));
  // A derived dim ("3*B", "(T-1)*B", "(H+1)/2") is Python int arithmetic over the inputs' sizes ("/" floors).
  const scope: PyScope = {
    dim: (d) => foldDim<string>(d, {
      readable: (name) => dimSrc.has(name),
      read: (name) => dimSrc.get(name)!,
      num: String,
      op: (op, a, b) => `(${a} ${op === "/" ? "//" : op} ${b})`,
    }),
    num: pyNum,
  };
  const body: string[] = [];
  const firstParam = g.nodes.find((n) => n.op === "param" && live.has(n.id));
  body.push(spec.method && firstParam ? `dev = ${spec.param((firstParam.attrs as { name: string }).name)}.device` : args.length ? `dev = ${args[0]}.device` : `dev = torch.device("cpu")`);
  for (const n of g.nodes) {
    if (!live.has(n.id)) continue;
    if (n.op === "input") {
      names.set(n.id, args[(n.attrs as { index: number }).index]);
      continue;
    }
    if (n.op === "param") {
      names.set(n.id, spec.param((n.attrs as { name: string }).name));
      continue;
    }
    if (covered.has(n.id) && !raised.has(n.id)) continue;
    const r = raised.get(n.id);
    let expr: string;
    try {
      expr = r ? raisedExpr(r.op, r.inputs.map((i) => names.get(i)!)) : (TORCH_OPS[n.op] as (n: Node, ins: string[], s: PyScope) => string)(n, n.inputs.map((i) => names.get(i)!), scope);
    } catch (e) {
      if (e instanceof TorchUnmappable || e instanceof DimUnreadable) throw torchError(g, n, `${n.op}: ${e.message}`, e.hint);
      throw e;
    }
    const v = `t${n.id}`;
    body.push(`${v} = ${expr}`);
    names.set(n.id, v);
  }
  const name = (id: number) => names.get(id)!;
  if (spec.epilogue) body.push(...spec.epilogue(name));
  body.push(`return ${results.length === 1 ? name(results[0]) : `(${results.map(name).join(", ")})`}`);
  const params = [...(spec.method ? ["self"] : []), ...args];
  const doc = spec.doc ? [`    """${spec.doc}"""`] : [];
  return [`def ${spec.name}(${params.join(", ")}):`, ...doc, ...body.map((l) => `    ${l}`)].join("\n");
}
