// Codegen stage, planner: the gradient buckets of a data-parallel grad function (compiler/lower/train-parallel.ts)
// announced as soon as they are final, so replicas all-reduce them while the rest of backward runs (DDP's overlap).
// grad's flat vector is one concat, planned as one copy step per gradient; each copy moves to right after the last
// step that writes its gradient, and a `@bucket` host step (runtime/manifest.ts) follows the last copy of each
// bucket. Only the order of steps changes (every step still runs after what it reads is written, and the memory plan
// is computed from the new order), so the values, and the vector's bits, are the same.

import { HOST_BUCKET, type FunctionManifest, type StepManifest } from "../../runtime/manifest.js";

function rootOf(fn: FunctionManifest, v: number): number {
  for (let s = fn.values[v]!.source; s.kind === "alias"; s = fn.values[v]!.source) v = s.of;
  return v;
}

export function scheduleBuckets(fn: FunctionManifest): FunctionManifest {
  const layout = fn.parallel;
  const grads = fn.outputs.findIndex((o) => o.name === "grads");
  if (layout?.role !== "grad" || grads < 0) return fn;
  const vec = rootOf(fn, fn.outputValues[grads]!);
  const writes = (st: StepManifest) => st.buffers.slice(st.buffers.length - (st.outputs ?? 1)).map((b) => rootOf(fn, b));
  // The concat's copies, one per gradient in vector order (several params), or none (grads is one gradient's view).
  const copies = fn.steps.flatMap((st, i) => (st.ops.includes("concat") && writes(st).includes(vec) ? [i] : []));
  if (copies.length && copies.length !== layout.gradients.length) return fn;
  const rest = fn.steps.filter((_, i) => !copies.includes(i));
  // Where each gradient is final: after the last step writing what its copy reads (or, without copies, the vector).
  const readyAfter = (values: number[]): number => {
    let at = -1;
    rest.forEach((st, i) => {
      if (writes(st).some((w) => values.includes(w))) at = i;
    });
    return at;
  };
  const after = new Map<number, StepManifest[]>();
  const put = (at: number, st: StepManifest) => after.set(at, [...(after.get(at) ?? []), st]);
  const lastOf = new Array<number>(layout.buckets.length).fill(-1);
  layout.gradients.forEach((gr, k) => {
    const b = layout.buckets.findIndex((bk) => gr.offset >= bk.offset && gr.offset < bk.offset + bk.numel);
    const at = copies.length ? readyAfter([rootOf(fn, fn.steps[copies[k]!]!.buffers[0]!)]) : readyAfter([vec]);
    if (copies.length) put(at, fn.steps[copies[k]!]!);
    lastOf[b] = Math.max(lastOf[b]!, at);
  });
  // A bucket is announced after its last copy; buckets final at the same step keep vector order.
  layout.buckets.forEach((_, b) => put(lastOf[b]!, { kernel: HOST_BUCKET, buffers: [vec], outputs: 0, ints: [[[b]]], ops: ["all_reduce"] }));
  const steps: StepManifest[] = [...(after.get(-1) ?? [])];
  rest.forEach((st, i) => steps.push(st, ...(after.get(i) ?? [])));
  return { ...fn, steps };
}
