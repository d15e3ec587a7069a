// The text form of a quantization report: one line per quantized op with its weight and output errors, then
// the weight sizes (f32 against int8 + scales) and the sample's output error; and the report's types.

export interface ErrorStats {
  maxAbs: number;
  /** ||quantized - f32|| / ||f32|| (2-norms). */
  relative: number;
}

export interface QuantizedOp {
  fn: string;
  /** Float plan steps the int8 call replaced. */
  steps: number[];
  ops: string[];
  weight: string;
  K: number;
  N: number;
  kernel: string;
  input: "dynamic" | "static" | "q8";
  output: "f32" | "q8";
  /** The weight's dequantization error. */
  weightError: ErrorStats;
  /** The layer's output on the sample, int8 against f32. */
  outputError?: ErrorStats;
}

export interface QuantizeReport {
  mode: "dynamic" | "static";
  /** Where the int8 kernels run; on WebGPU, whether they use dot4I8Packed or its emulation. */
  backend: "wasm" | "webgpu";
  wgslDot?: "dot4I8Packed" | "emulated";
  ops: QuantizedOp[];
  /** Bytes of the quantized weights in f32 and as int8 plus scales. */
  weightBytes: { f32: number; int8: number };
  /** The sample's outputs, int8 against f32. */
  sampleError?: ErrorStats;
  /** A readable table of the above. */
  text: string;
}

const e = (x: number) => (x === 0 ? "0" : x.toExponential(2));
const kb = (b: number) => `${(b / 1024).toFixed(1)} KiB`;

export function formatQuantizeReport(r: Omit<QuantizeReport, "text">): string {
  const where = r.backend === "webgpu" ? ` on WebGPU (${r.wgslDot === "dot4I8Packed" ? "dot4I8Packed" : "emulated dot4I8Packed"})` : "";
  const lines = [`${r.mode} int8 quantization of ${r.ops.length} op(s)${where}:`];
  for (const o of r.ops) {
    const fused = o.ops.length > 1 ? ` (+ ${o.ops.slice(1).join(", ")} fused)` : "";
    const out = o.outputError ? `; layer output max abs ${e(o.outputError.maxAbs)}, rel ${e(o.outputError.relative)}` : "";
    lines.push(`  ${o.fn} steps ${o.steps.join("+")}: ${o.weight} [K=${o.K}, N=${o.N}]${fused} -> ${o.kernel} (${o.input} in, ${o.output} out); weight max abs ${e(o.weightError.maxAbs)}, rel ${e(o.weightError.relative)}${out}`);
  }
  const ratio = r.weightBytes.int8 > 0 ? (r.weightBytes.f32 / r.weightBytes.int8).toFixed(2) : "-";
  lines.push(`  quantized weights: ${kb(r.weightBytes.f32)} f32 -> ${kb(r.weightBytes.int8)} int8 + scales (${ratio}x smaller)`);
  if (r.sampleError) lines.push(`  sample outputs: max abs error ${e(r.sampleError.maxAbs)}, relative ${e(r.sampleError.relative)}`);
  return lines.join("\n");
}
