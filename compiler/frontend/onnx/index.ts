// ONNX import (`kiln import`): an ONNX model to a readable .kiln program (one model whose params are the
// initializers a run-time op reads, one `forward`) and its weights. Checks every op first, so an unsupported model
// fails with the full list before any work; shape arithmetic is folded while walking the graph in order.

import type { OnnxNs } from "../../export/onnx/proto.js";
import { decodeModel, onnx } from "../../export/onnx/proto.js";
import { Tensor } from "../../../runtime/tensor.js";
import { OPS, type OpCtx } from "./ops.js";
import { fuse } from "./fuse.js";
import { ImportError, literal, Names, readTensor, varHint, type ConstVal, type Dim, type TensorVal, type Val } from "./values.js";

export { ImportError } from "./values.js";

export interface ImportResult {
  /** The model's name in the program (from the file name). */
  model: string;
  source: string;
  /** Weights by param name (`Model.param`), for `--weights` / load(). */
  weights: Record<string, Tensor>;
  /** ONNX initializer name -> Kiln param name (without the model prefix). */
  params: Record<string, string>;
}

const AT = onnx.AttributeProto.AttributeType;

// A variable named like a builtin would read as a call at a glance ("let relu = relu(x)").
const BUILTINS = new Set(["relu", "sigmoid", "tanh", "exp", "log", "sqrt", "abs", "reshape", "flatten", "transpose", "permute", "softmax", "log_softmax",
  "linear", "conv2d", "max_pool2d", "avg_pool2d", "batch_norm", "dropout", "matmul", "sum", "mean", "max", "min", "concat", "slice", "cast", "where",
  "erf", "sin", "cos", "floor", "ceil", "round", "sign", "softplus", "maximum", "minimum", "clamp", "take", "embedding", "layer_norm", "tril", "ones", "zeros", "full",
  "broadcast_to", "arange", "gelu"]);

function attrValue(a: OnnxNs.IAttributeProto): unknown {
  switch (a.type) {
    case AT.INT: return Number(a.i);
    case AT.FLOAT: return a.f;
    case AT.INTS: return (a.ints ?? []).map(Number);
    case AT.FLOATS: return [...(a.floats ?? [])];
    case AT.STRING: return new TextDecoder().decode(a.s ?? new Uint8Array());
    case AT.TENSOR: return a.t;
    default: return undefined;
  }
}

/** Every node whose op has no rule, grouped: "Erf x2 (/Erf, /Erf_1)". */
function unsupported(nodes: OnnxNs.INodeProto[], file: string): void {
  const bad = new Map<string, string[]>();
  for (const [k, n] of nodes.entries()) {
    const op = n.domain && n.domain !== "ai.onnx" ? `${n.domain}.${n.opType}` : n.opType ?? "?";
    if (!(n.domain && n.domain !== "ai.onnx") && OPS[op]) continue;
    bad.set(op, [...(bad.get(op) ?? []), n.name || `#${k}`]);
  }
  if (!bad.size) return;
  const total = [...bad.values()].reduce((a, b) => a + b.length, 0);
  const lines = [...bad].map(([op, names]) => `  ${op} x${names.length}: ${names.join(", ")}`);
  throw new ImportError(`${file}: ${total} node${total > 1 ? "s use" : " uses"} ops kiln import does not support yet:\n${lines.join("\n")}\nnothing was written; the supported ops are ${Object.keys(OPS).sort().join(", ")}`);
}

function modelName(file: string): string {
  const base = (file.split(/[\\/]/).pop() ?? "model").replace(/\.onnx$/i, "");
  const words = base.split(/[^A-Za-z0-9]+/).filter(Boolean);
  const n = words.map((w) => w[0]!.toUpperCase() + w.slice(1)).join("");
  return /^[A-Za-z]/.test(n) ? n : `M${n}`;
}

/**
 * A constant Kiln can write as code instead of a param: a causal mask, constant on and below the diagonal of its
 * last two axes and constant above it. GPT-2's 0/1 `bias` buffer is `tril(ones(...))`, a bool one a comparison
 * of that, and nn.Transformer's additive mask (0 below, -inf above) `where(tril(ones(...)) != 0, 0.0, -inf)`.
 */
function constPattern(v: ConstVal): string | undefined {
  const d = v.dims;
  if (d.length < 2 || d[d.length - 1] !== d[d.length - 2] || (!v.bool && !v.float)) return undefined;
  const n = d[d.length - 1]!;
  if (n < 2) return undefined;
  const xs = Array.from(v.data as ArrayLike<number>, Number);
  const low = xs[n]!, high = xs[1]!; // [1, 0] is below the diagonal, [0, 1] above it
  if (low === high || !xs.every((x, k) => Object.is(x, k % n <= Math.floor(k / n) % n ? low : high))) return undefined;
  const tril = `tril(ones([${d.join(", ")}]))`;
  if (v.bool) return low ? `(${tril} != 0)` : `(${tril} == 0)`;
  if (low === 1 && high === 0) return tril;
  const [a, b] = [literal(low, v), literal(high, v)];
  return a && b ? `where(${tril} != 0, ${a}, ${b})` : undefined;
}

/** `weightsFile` is named in the program's header comment. */
export function importOnnx(bytes: Uint8Array, file: string, weightsFile = "weights.safetensors"): ImportResult {
  try {
    return importModel(bytes, file, weightsFile);
  } catch (e) {
    if (e instanceof ImportError) throw e;
    // A malformed model can break assumptions anywhere (a dim list of the wrong length, a missing field).
    throw new ImportError(`${file}: cannot import this model (${(e as Error).message}); check it with onnx.checker.check_model`);
  }
}

function importModel(bytes: Uint8Array, file: string, weightsFile: string): ImportResult {
  let m: OnnxNs.ModelProto;
  try {
    m = decodeModel(bytes);
  } catch (e) {
    throw new ImportError(`${file}: not an ONNX model (${(e as Error).message}); pass a .onnx file written by torch.onnx.export or another exporter`);
  }
  const g = m.graph;
  if (!g || !(g.node ?? []).length) throw new ImportError(`${file}: the ONNX model has no graph nodes`);
  const opset = (m.opsetImport ?? []).find((o) => !o.domain || o.domain === "ai.onnx");
  const version = opset ? Number(opset.version) : 0;
  if (version < 13 || version > 17) throw new ImportError(`${file}: opset ${version || "(none)"}; kiln import reads opsets 13 to 17 (re-export with opset_version=17)`);
  const nodes = fuse(g);
  unsupported(nodes, file);

  const model = modelName(file);
  const vals = new Map<string, Val>();
  const inits = new Map<string, OnnxNs.ITensorProto>();
  for (const t of g.initializer ?? []) {
    inits.set(t.name!, t);
    vals.set(t.name!, { ...readTensor(t, file), init: t.name! });
  }
  const names = new Names(["forward", "loss", model, ...BUILTINS]);
  const paramNames = new Map<string, string>();
  const paramDecls: string[] = [];
  const weights: Record<string, Tensor> = {};

  // Graph inputs (those not also initializers, as older exporters list both).
  const sig: string[] = [];
  const dimNames = new Names();
  // One dim_param names one symbolic dim across every input (a batch shared by x and ids).
  const dimOf = new Map<string, string>();
  const namedDim = (p: string) => {
    if (!dimOf.has(p)) {
      const d = dimNames.take(p, "D");
      dimOf.set(p, d);
      names.reserve(d);
    }
    return dimOf.get(p)!;
  };
  for (const [k, vi] of (g.input ?? []).entries()) {
    if (inits.has(vi.name!)) continue;
    const tt = vi.type?.tensorType;
    const DT = onnx.TensorProto.DataType;
    // Integer inputs (token ids) are i32 in Kiln: callers pass Int32Array where onnxruntime takes int64.
    const dtype = tt?.elemType === DT.FLOAT ? "f32" : tt?.elemType === DT.INT64 || tt?.elemType === DT.INT32 ? "i32" : undefined;
    if (!tt || !dtype) throw new ImportError(`${file}: input '${vi.name}' is not a float32 or integer tensor; kiln import reads f32 and int64/int32 inputs only`);
    const shape: Dim[] = (tt.shape?.dim ?? []).map((d, j) => (d.dimParam ? namedDim(d.dimParam) : d.dimValue != null && Number(d.dimValue) > 0 ? Number(d.dimValue) : namedDim(`D${k}_${j}`)));
    const v = names.take(vi.name!.toLowerCase(), "x");
    vals.set(vi.name!, { kind: "tensor", expr: v, shape, dtype });
    sig.push(`${v}: ${dtype}${shape.length ? `[${shape.join(", ")}]` : ""}`);
  }

  const body: string[] = [];
  for (const [k, n] of nodes.entries()) {
    const where = `${file}: node '${n.name || `#${k}`}' (${n.opType})`;
    const attrs = new Map((n.attribute ?? []).map((a) => [a.name!, attrValue(a)]));
    const fail = (msg: string): never => {
      throw new ImportError(`${where}: ${msg}`);
    };
    const ctx: OpCtx = {
      node: n,
      input(i) {
        const name = n.input?.[i];
        if (!name) return undefined;
        return vals.get(name) ?? fail(`input '${name}' is not produced by any earlier node`);
      },
      attr: <T,>(name: string, dflt: T) => (attrs.has(name) ? (attrs.get(name) as T) : dflt),
      expr(v, initRule) {
        if (v.kind === "tensor") return v.expr;
        const pattern = constPattern(v);
        if (pattern) return pattern;
        const data = v.data as Float32Array;
        // A rank-0 initializer is a constant of the computation (a normalising mean, an epsilon), not a weight.
        if (data.length === 1 && (!v.init || v.dims.length === 0)) return literal(Number(v.data[0]), v) ?? fail(`the constant ${v.data[0]} has no Kiln literal`);
        if (!v.float) fail(`an integer constant of shape [${v.dims.join(", ")}] is used as a tensor; kiln import handles integer tensors only as indices and shapes`);
        const key = v.init ?? `${n.output?.[0] ?? n.name}_const`;
        let p = paramNames.get(key);
        if (!p) {
          // torch names the transposed weight of a Linear it exports as MatMul "onnx::MatMul_329": the node says more.
          p = names.take(key.startsWith("onnx::") ? `${varHint(n.output?.[0] || key)}_w` : key.toLowerCase(), "w");
          paramNames.set(key, p);
          // The weights file holds the values; the initialiser is for training from scratch: a constant's own value
          // (a LayerNorm's ones), else the consumer's hint, else He for matrices and zeros for vectors.
          const same = data.every((x) => x === data[0]);
          const init = same && (data[0] === 0 || data[0] === 1) ? (data[0] ? "ones()" : "zeros()") : initRule ?? (v.dims.length >= 2 ? "he()" : "zeros()");
          paramDecls.push(`  param ${p}: f32${v.dims.length ? `[${v.dims.join(", ")}]` : ""} = ${init}${p !== key ? `  // onnx: ${key}` : ""}`);
          weights[`${model}.${p}`] = new Tensor("f32", [...v.dims], Float32Array.from(data));
        }
        return p;
      },
      emit(expr, shape, dtype): TensorVal {
        const hint = varHint(n.output?.[0] || n.opType || "t");
        const v = names.take(BUILTINS.has(hint) ? `${hint}_out` : hint, "t");
        body.push(`    let ${v} = ${expr}`);
        return { kind: "tensor", expr: v, shape, ...(dtype && dtype !== "f32" ? { dtype } : {}) };
      },
      fail,
    };
    let outs: Val[];
    try {
      outs = OPS[n.opType!]!(ctx);
    } catch (e) {
      if (e instanceof ImportError) throw e;
      throw new ImportError(`${where}: cannot import this node (${(e as Error).message})`);
    }
    outs.forEach((v, i) => n.output?.[i] && vals.set(n.output[i]!, v));
  }

  const results: TensorVal[] = (g.output ?? []).map((o) => {
    const v = vals.get(o.name!);
    if (!v) throw new ImportError(`${file}: output '${o.name}' is not produced by any node`);
    if (v.kind === "const") throw new ImportError(`${file}: output '${o.name}' is a constant; kiln import needs outputs computed from the inputs`);
    return v;
  });
  const ty = (r: TensorVal) => `${r.dtype ?? "f32"}${r.shape.length ? `[${r.shape.join(", ")}]` : ""}`;
  const ret = results.length === 1 ? ty(results[0]!) : `(${results.map(ty).join(", ")})`;
  // The last let is returned directly when it is the only output, so the program ends like a hand-written one.
  const last = body[body.length - 1];
  if (results.length === 1 && last?.startsWith(`    let ${results[0]!.expr} = `)) body[body.length - 1] = `    return ${last.slice(`    let ${results[0]!.expr} = `.length)}`;
  else body.push(`    return ${results.map((r) => r.expr).join(", ")}`);

  const mapping = [...paramNames].map(([o, p]) => `${o} -> ${p}`);
  const source = [
    `// Imported by kiln import from ${file.split(/[\\/]/).pop()} (${[m.producerName || "unknown producer", m.producerVersion].filter(Boolean).join(" ")}, opset ${version}).`,
    `// Weights: ${weightsFile} (kiln run --weights, load()). Params from ONNX initializers: ${mapping.length ? mapping.join(", ") : "none"}.`,
    "",
    `model ${model} {`,
    ...paramDecls,
    "",
    `  fn forward(${sig.join(", ")}) -> ${ret} {`,
    ...body,
    "  }",
    "}",
    "",
  ].join("\n");
  return { model, source, weights, params: Object.fromEntries(paramNames) };
}
