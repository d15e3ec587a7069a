// `kiln compile --report`: per function, the kernels it launches, how many ops fusion folded into them, and its
// memory: the peak of the scratch arena (after liveness-based reuse), what it would be without reuse, and the
// params. Symbolic dims take the values given with --dims (1 when not given, which the report says).

import type { Manifest } from "../runtime/manifest.js";
import { evalDimPoly } from "../runtime/manifest.js";
import { planMemory } from "../runtime/wasm/memory-plan.js";
import { matmulScratchBytesAt } from "../runtime/wasm/matmul-scratch.js";
import { dtypeBytes, type DType } from "./ir/types.js";

export interface FunctionReport {
  name: string;
  dims: Record<string, number>;
  kernels: number;
  fusedOps: number;
  peakBytes: number;
  naiveBytes: number;
  paramBytes: number;
}

export function reportManifest(m: Manifest, dims: Record<string, number>): FunctionReport[] {
  const paramBytes = m.params.reduce((a, p) => a + p.shape.reduce((x, y) => x * y, 1) * dtypeBytes(p.dtype as DType), 0);
  return m.functions.map((fn) => {
    const bind: Record<string, number> = {};
    for (const d of fn.dims) bind[d] = dims[d] ?? 1;
    const numel = (shape: readonly (number | string)[]) => shape.reduce<number>((a, d) => a * (typeof d === "number" ? d : evalDimPoly([[1, d]], bind)), 1);
    // A matmul's packing scratch takes what its gemm needs at these dims (as the executor allocates it).
    const bytes = fn.values.map((v) => (v.source.kind === "fused" ? 0 : v.source.kind === "temp" && v.source.matmul ? matmulScratchBytesAt(v.source.matmul, bind) : numel(v.shape) * dtypeBytes(v.dtype as DType)));
    const concrete = (i: number) => fn.values[i]!.shape.every((d) => typeof d === "number");
    const plan = planMemory(fn, bytes, concrete);
    return {
      name: fn.name,
      dims: bind,
      kernels: fn.steps.length,
      fusedOps: fn.steps.reduce((a, s) => a + Math.max(0, s.ops.length - 1), 0),
      peakBytes: plan.peak,
      naiveBytes: plan.naive,
      paramBytes,
    };
  });
}

function kib(n: number): string {
  return n < 1024 ? `${n} B` : n < 1024 * 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / 1024 / 1024).toFixed(2)} MiB`;
}

export function formatReport(rows: FunctionReport[], explicitDims: Record<string, number>): string {
  const lines = ["function                      kernels  fused ops  peak scratch  without reuse  params      dims"];
  for (const r of rows) {
    const dims = Object.entries(r.dims).map(([k, v]) => `${k}=${v}${k in explicitDims ? "" : " (default)"}`).join(", ") || "-";
    lines.push(
      `${r.name.padEnd(29)} ${String(r.kernels).padStart(7)}  ${String(r.fusedOps).padStart(9)}  ${kib(r.peakBytes).padStart(12)}  ${kib(r.naiveBytes).padStart(13)}  ${kib(r.paramBytes).padEnd(10)}  ${dims}`,
    );
  }
  return lines.join("\n");
}
