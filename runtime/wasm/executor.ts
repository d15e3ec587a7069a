// Runs one function's plan on the wasm backend: checks the plan against the wasm at load; per call binds dims,
// places every value (param/const persistent, alias, input/temp scratch), runs the steps, copies outputs out.

import { evalDimPoly, HOST_ALL_REDUCE, HOST_BUCKET, isHostStep, type FunctionManifest, type ParamManifest, type ValueManifest } from "../manifest.js";
import { KilnError, loopBoundError } from "../errors.js";
import { dimsProduct } from "../dim-expr.js";
import { assertDType, dtypeBytes, encodeNumbersLoose, allocTypedArray, f32ArrayToBf16Bits, f32ArrayToF16Bits, type AnyTypedArray, type DType, decodeElement, isFiniteElement } from "../dtype.js";
import { Tensor } from "../tensor.js";
import type { LinearMemory } from "./memory.js";
import type { KernelFn } from "./backend.js";
import { bindCall, type CallOptions } from "../bind.js";
import { outsOf, planMemory, type MemoryPlan } from "./memory-plan.js";
import { RandomStreams } from "../random.js";
import { matmulScratchBytesAt } from "./matmul-scratch.js";
import { bumpParam, PrepackCache, type Versioned } from "./prepack.js";
import { outTensor, resolveOutBuffers } from "../out-buffers.js";

/** A param's buffer; `version` (prepack.ts) is bumped by every write of it (bumpParam). */
export interface ParamSlot extends Versioned {
  param: ParamManifest;
  ptr: number;
  numel: number;
}

/**
 * How a replica's host steps reach the other data-parallel replicas (runtime/parallel/collective.ts). allReduce
 * replaces `data` by its sum over the replicas, the same bits on every replica, or throws a KilnError (a replica
 * failed); it may block until the others get there.
 */
export interface Collective {
  allReduce(data: Float32Array): void;
  /**
   * Bucket `bucket` of the grad function's gradient vector is final (a `@bucket` host step): `data` is its elements,
   * a view of wasm memory valid during the call only. The replica posts it and reduces what it can, not waiting.
   */
  bucketReady?(bucket: number, data: Float32Array): void;
}

/** A step whose B is read prepacked (StepManifest.prepackB), checked at load. */
interface PrepackStep {
  kernel: string;
  pack: KernelFn;
  param: string;
  slot: ParamSlot;
  K: number;
  N: number;
}

export interface ExecutorContext {
  memory: LinearMemory;
  kernels: Map<string, KernelFn>;
  params: Map<string, ParamSlot>;
  /** The load seed: random_uniform values come from streams seeded by it (default 0). */
  seed?: number;
  /** Where all_reduce host steps sum across replicas; absent: one replica, all_reduce is a copy. */
  collective?: Collective;
  /** The module's packed weights (prepack.ts), shared by its executors; one of its own when absent. */
  prepacked?: PrepackCache;
  /**
   * Called as each function call starts (the thread pool's per-call fallback: ThreadPool.beginCall); true when
   * the whole call runs on one thread, which then calls `soloKernels` (when given) instead of `kernels`.
   */
  beginCall?: () => boolean | void;
  /**
   * The kernels without the thread pool's splitting wrappers (threads-load.ts): a call kept on one thread skips
   * the wrapper on each kernel (2-3% of a 0.7 ms MLP training step on 2 threads; kernels by name as `kernels`).
   */
  soloKernels?: Map<string, KernelFn>;
}

const I32_MIN = -2147483648;
const I32_MAX = 2147483647;

export class FunctionExecutor {
  readonly fn: FunctionManifest;
  readonly #ctx: ExecutorContext;
  /** Persistent address of each const value with a concrete shape. */
  readonly #constPtr = new Map<number, number>();
  /** Per dim binding ("B=64,"): sizes, step integers and memory plan (#shapeFor); a training loop plans once. */
  readonly #shapes = new Map<string, CallShape>();
  /** Encoded element (bit pattern) of each const value. */
  readonly #constBits = new Map<number, number>();
  /** Each step's kernel; undefined for a host step (the executor runs it, #allReduce). */
  readonly #stepFns: (KernelFn | undefined)[];
  /** The same from ExecutorContext.soloKernels (built at the first call kept on one thread). */
  #soloStepFns: (KernelFn | undefined)[] | undefined;
  /** Per input stored in 16 bits: its `convert` kernel (f32 -> f16/bf16 in wasm, several times faster than JS). */
  readonly #convertFns: (KernelFn | undefined)[];
  readonly #random: RandomStreams;
  /** Per step, its prepacked B (undefined: the kernel packs B itself). */
  readonly #prepack: (PrepackStep | undefined)[];
  readonly #packed: PrepackCache;

  constructor(fn: FunctionManifest, ctx: ExecutorContext) {
    this.fn = fn;
    this.#ctx = ctx;
    this.#random = new RandomStreams(ctx.seed ?? 0);
    const where = `function ${fn.name}`;
    const bad = (msg: string): never => {
      throw new KilnError(`invalid module: ${where}: ${msg}`, { code: "bad_manifest", fn: fn.name });
    };
    const nv = fn.values.length;
    for (const sig of [...fn.inputs, ...fn.outputs]) assertDType(sig.dtype, `${where}: tensor "${sig.name}"`);
    fn.values.forEach((v, i) => {
      assertDType(v.dtype, `${where}: value ${i}`);
      for (const d of v.shape) {
        if (typeof d === "number" ? !(Number.isInteger(d) && d >= 0) : typeof d !== "string") bad(`value ${i} has a bad dim ${JSON.stringify(d)}`);
      }
      const s = v.source;
      switch (s.kind) {
        case "input": {
          const sig = fn.inputs[s.index];
          if (!sig) bad(`value ${i} is input ${s.index}, but the function has ${fn.inputs.length} inputs`);
          if (sig!.dtype !== v.dtype && !(sig!.storage === v.dtype && sig!.dtype === "f32")) bad(`value ${i} (input "${sig!.name}") has dtype ${v.dtype}, the input is ${sig!.dtype}`);
          break;
        }
        case "param": {
          const slot = ctx.params.get(s.name);
          if (!slot) bad(`value ${i} refers to unknown param "${s.name}"`);
          if (slot!.param.dtype !== v.dtype) bad(`value ${i} (param "${s.name}") has dtype ${v.dtype}, the param is ${slot!.param.dtype}`);
          if (v.shape.every((d) => typeof d === "number") && numelOf(v.shape, {}) !== slot!.numel) {
            bad(`value ${i} (param "${s.name}") has ${numelOf(v.shape, {})} elements, the param has ${slot!.numel}`);
          }
          break;
        }
        case "const": {
          if (typeof s.value !== "number") bad(`value ${i} is a const without a numeric value`);
          const one = allocTypedArray(v.dtype, 1);
          encodeNumbersLoose(v.dtype, [s.value], one);
          this.#constBits.set(i, one[0]!);
          break;
        }
        case "alias": {
          if (!Number.isInteger(s.of) || s.of < 0 || s.of >= nv || s.of === i) bad(`value ${i} aliases bad value index ${s.of}`);
          const seen = new Set([i]);
          for (let j = s.of; ; ) {
            if (seen.has(j)) bad(`value ${i} is part of an alias cycle`);
            seen.add(j);
            const sj = fn.values[j]!.source;
            if (sj.kind !== "alias") break;
            if (!Number.isInteger(sj.of) || sj.of < 0 || sj.of >= nv) bad(`value ${j} aliases bad value index ${sj.of}`);
            j = sj.of;
          }
          break;
        }
        case "dim":
          if (v.shape.length !== 0 || v.dtype === "bool" || !Array.isArray(s.dims) || !s.dims.every((d) => typeof d === "string" || (Number.isInteger(d) && d >= 0))) bad(`value ${i} is a dim size that is not a numeric scalar over valid dims`);
          break;
        case "random":
          if (v.dtype !== "f32" || !Number.isInteger(s.stream)) bad(`value ${i} is a random value that is not f32 or has a bad stream`);
          break;
        case "temp":
        case "fused":
          break;
        default:
          bad(`value ${i} has unknown source kind ${JSON.stringify((s as { kind: unknown }).kind)}`);
      }
    });
    if (fn.outputValues.length !== fn.outputs.length) bad(`${fn.outputs.length} outputs but ${fn.outputValues.length} output values`);
    fn.outputValues.forEach((vi, k) => {
      const v = fn.values[vi];
      if (!v) bad(`output ${k} refers to bad value index ${vi}`);
      if (v!.dtype !== fn.outputs[k]!.dtype) bad(`output "${fn.outputs[k]!.name}" is ${fn.outputs[k]!.dtype} but value ${vi} is ${v!.dtype}`);
    });
    for (const c of fn.checks ?? []) if (fn.values[c.value]?.dtype !== "i32") bad(`the bound check of ${c.loop} refers to value ${c.value}, not an i32`);
    this.#convertFns = fn.inputs.map((sig) => (sig.storage && sig.convert ? ctx.kernels.get(sig.convert) : undefined));
    this.#stepFns = fn.steps.map((step, si) => {
      const ops = step.ops?.length ? ` (ops: ${step.ops.join(", ")})` : "";
      if (step.kernel === HOST_BUCKET) {
        const b = step.ints.length === 1 && step.ints[0]!.every((t) => t.length === 1) ? evalDimPoly(step.ints[0]!, {}) : -1;
        if (!fn.parallel || step.buffers.length !== 1 || step.outputs !== 0 || step.guard || !fn.parallel.buckets[b]) bad(`step ${si} (${step.kernel}) needs a data-parallel grad, buffers [grads], no outputs and a bucket index`);
        return undefined;
      }
      if (isHostStep(step)) {
        if (step.kernel !== HOST_ALL_REDUCE) bad(`step ${si} is an unknown host step "${step.kernel}"`);
        if (step.buffers.length !== 2 || step.ints.length !== 1 || (step.outputs ?? 1) !== 1 || step.guard) bad(`step ${si} (${step.kernel}) needs buffers [x, out], ints [numel] and no guard`);
        for (const b of step.buffers) if (fn.values[b]?.dtype !== "f32") bad(`step ${si} (${step.kernel}) sums f32 values, value ${b} is not f32`);
        return undefined;
      }
      const k = ctx.kernels.get(step.kernel);
      if (!k) {
        throw new KilnError(`invalid module: ${where}: step ${si} calls kernel "${step.kernel}"${ops}, which the wasm does not export`, { code: "bad_wasm", fn: fn.name });
      }
      for (const b of step.buffers) if (!Number.isInteger(b) || b < 0 || b >= nv) bad(`step ${si} uses bad value index ${b}`);
      if (step.outputs !== undefined && !(Number.isInteger(step.outputs) && step.outputs >= 1 && step.outputs <= step.buffers.length)) bad(`step ${si} has ${step.outputs} outputs of ${step.buffers.length} buffers`);
      for (const b of step.buffers) if (fn.values[b]!.source.kind === "fused") bad(`step ${si} uses value ${b}, which is fused into another kernel and has no buffer`);
      const arity = step.buffers.length + step.ints.length;
      if (k.length !== arity) {
        throw new KilnError(`invalid module: ${where}: step ${si} passes ${arity} arguments to kernel "${step.kernel}"${ops}, which takes ${k.length}`, { code: "bad_wasm", fn: fn.name });
      }
      return k;
    });

    this.#packed = ctx.prepacked ?? new PrepackCache(ctx.memory);
    this.#prepack = fn.steps.map((step, si) => {
      const pb = step.prepackB;
      if (!pb) return undefined;
      // The kernel reads K x roundUp(N, NR) packed floats: the param, the step's K and N and the packer must agree.
      // B may be a reshape of the param (an alias: the same memory, checked free of cycles above).
      let src = fn.values[step.buffers[1] ?? -1]?.source;
      while (src?.kind === "alias") src = fn.values[src.of]?.source;
      if (src?.kind !== "param") return bad(`step ${si} reads a prepacked B that is not a param`);
      const slot = ctx.params.get(src.name)!;
      const pack = ctx.kernels.get(pb.kernel);
      if (!pack || pack.length !== 4) throw new KilnError(`invalid module: ${where}: step ${si} packs B with "${pb.kernel}", which the wasm does not export`, { code: "bad_wasm", fn: fn.name });
      // A matmul's ints are (M, K, N, m0, m1); a Winograd convolution's (images, O, 9 C, pixels, m0, m1).
      const wino = pb.layout === "winograd";
      const dim = (k: number) => (step.ints.length === (wino ? 6 : 5) && step.ints[k]!.every((t) => t.length === 1) ? evalDimPoly(step.ints[k]!, {}) : NaN);
      const [dimK, dimN] = wino ? [dim(2), dim(1)] : [dim(1), dim(2)];
      if (!(Number.isInteger(pb.K) && Number.isInteger(pb.N) && pb.K >= 0 && pb.N >= 0) || pb.K * pb.N !== slot.numel || slot.param.dtype !== "f32" || dimK !== pb.K || dimN !== pb.N
        || (pb.layout !== undefined && (!wino || pb.K % 9 !== 0))) {
        bad(`step ${si} prepacks param "${src.name}" as ${pb.K} x ${pb.N}, which does not match the param or the step`);
      }
      if (fn.updates?.length) bad(`step ${si} prepacks param "${src.name}" in a function that updates params`);
      this.#packed.reserve(pb.kernel, src.name, pb.K, pb.N, pb.layout);
      return { kernel: pb.kernel, pack, param: src.name, slot, K: pb.K, N: pb.N };
    });

    // Consts with concrete shapes live in persistent memory, filled once.
    fn.values.forEach((v, i) => {
      if (v.source.kind !== "const" || !v.shape.every((d) => typeof d === "number")) return;
      const numel = numelOf(v.shape, {});
      const ptr = ctx.memory.allocPersistent(numel * dtypeBytes(v.dtype), `const value ${i} of ${fn.name}`);
      ctx.memory.fill(v.dtype, ptr, numel, this.#constBits.get(i)!);
      this.#constPtr.set(i, ptr);
    });
  }

  /** A `@bucket` host step: gradient bucket `b` of the vector at `vec` is final. */
  #bucket(vec: number, b: number): void {
    const hook = this.#ctx.collective?.bucketReady;
    if (!hook) return;
    const { offset, numel } = this.fn.parallel!.buckets[b]!;
    this.#ctx.collective!.bucketReady!(b, this.#ctx.memory.view("f32", vec + 4 * offset, numel) as Float32Array);
  }

  /** An all_reduce host step: out = x, then summed over the replicas in place (a copy with one replica). */
  #allReduce(x: number, out: number, numel: number): void {
    const { memory, collective } = this.#ctx;
    const dst = memory.view("f32", out, numel) as Float32Array;
    dst.set(memory.view("f32", x, numel) as Float32Array);
    if (!collective || numel === 0) return;
    // A copy outside wasm memory: a collective that waits may run while nothing else touches this memory, but the
    // view must not outlive a memory growth.
    const data = dst.slice();
    collective.allReduce(data);
    (memory.view("f32", out, numel) as Float32Array).set(data);
  }

  /**
   * What a call at these dims needs before it runs (element counts, byte sizes, each step's integer arguments, the
   * memory plan): it depends only on the dims, so it is worked out once per binding and reused — a serving or
   * training loop at one batch size evaluates no dim formula per call. Errors (a bad formula, an integer argument
   * outside 32 bits) are thrown, and nothing cached, on every call that meets them.
   */
  #shapeFor(dims: Record<string, number>): CallShape {
    let key = "";
    for (const k in dims) key += `${k}=${dims[k]},`;
    const hit = this.#shapes.get(key);
    if (hit) return hit;
    const fn = this.fn;
    const dimNote = Object.keys(dims).length ? ` (${Object.entries(dims).map(([k, v]) => `${k}=${v}`).join(", ")})` : "";
    const numels = fn.values.map((v, i) => {
      try {
        return numelOf(v.shape, dims);
      } catch (e) {
        throw new KilnError(`invalid module: function ${fn.name}: value ${i}: ${(e as Error).message}`, { code: "bad_manifest", fn: fn.name, cause: e });
      }
    });
    const ints = fn.steps.map((step, si) =>
      step.ints.map((p) => {
        let x: number;
        try {
          x = evalDimPoly(p, dims);
        } catch (e) {
          throw new KilnError(`invalid module: function ${fn.name}: step ${si} (${step.kernel}): ${(e as Error).message}`, { code: "bad_manifest", fn: fn.name, cause: e });
        }
        if (!Number.isInteger(x) || x < I32_MIN || x > I32_MAX) {
          throw new KilnError(`${fn.name}${dimNote}: step ${si} (${step.kernel}) needs the integer argument ${x}, outside the 32-bit range: the dims are too large`, { code: "out_of_memory", fn: fn.name });
        }
        return x;
      }),
    );
    const bytes = fn.values.map((v, i) => (v.source.kind === "fused" ? 0 : v.source.kind === "temp" && v.source.matmul ? scratchBytes(fn, i, dims) : numels[i]! * dtypeBytes(v.dtype)));
    // One scratch block for the call, shared by values whose lifetimes do not overlap (runtime/wasm/memory-plan.ts).
    const plan = planMemory(fn, bytes, (i) => this.#constPtr.has(i));
    const outShapes = fn.outputs.map((sig, k) => {
      const vi = fn.outputValues[k]!;
      const dimsOf = sig.shape.map((d) => (typeof d === "number" ? d : dims[d]!));
      if (dimsOf.some((d) => d === undefined) || dimsOf.reduce((a, b) => a * b, 1) !== numels[vi]) {
        throw new KilnError(`invalid module: function ${fn.name}: output "${sig.name}" [${sig.shape.join(", ")}] does not match value ${vi} (${numels[vi]} elements)`, { code: "bad_manifest", fn: fn.name });
      }
      return dimsOf;
    });
    const shape = { dimNote, numels, ints, bytes, plan, outShapes };
    if (this.#shapes.size >= 16) this.#shapes.clear();
    this.#shapes.set(key, shape);
    return shape;
  }

  #checkFinite(vi: number, ptrs: readonly number[], numels: readonly number[], where: string): void {
    const v = this.fn.values[vi]!;
    if (!FLOATS.has(v.dtype)) return;
    // f16/bf16 values are read as bit patterns: an f16 gradient that rounded to Inf is what mixed precision overflows.
    const data = this.#ctx.memory.read(v.dtype, ptrs[vi]!, numels[vi]!);
    for (let i = 0; i < data.length; i++) {
      if (!isFiniteElement(v.dtype, data[i]!)) {
        throw new KilnError(`${this.fn.name}: ${decodeElement(v.dtype, data[i]!)} at element ${i} of tensor %${vi} (${v.dtype}[${v.shape.join(", ")}]), produced by ${where}`, {
          code: "non_finite", fn: this.fn.name, tensor: `%${vi}`,
        });
      }
    }
  }

  /**
   * Runs the function; the result has one Tensor per output. `observe` is called after every step (run or
   * skipped) with a reader of the call's values, while they are live (calibration and error reports).
   */
  run(inputs: unknown, options: CallOptions | undefined, observe?: StepObserver): Tensor[] {
    const fn = this.fn;
    const { memory, params } = this.#ctx;
    const { dims, data } = bindCall(fn, inputs, options);
    const { dimNote, numels, ints, bytes, plan, outShapes } = this.#shapeFor(dims);
    // Checked before any kernel runs (and before a param update), so a bad buffer changes nothing.
    const outs = options?.out === undefined ? undefined : resolveOutBuffers(fn, options.out, outShapes);
    const solo = this.#ctx.beginCall?.() === true && this.#ctx.soloKernels !== undefined;
    const stepFns = solo ? (this.#soloStepFns ??= this.#stepFns.map((k, si) => k && (this.#ctx.soloKernels!.get(this.fn.steps[si]!.kernel) ?? k))) : this.#stepFns;

    // A step may write an update straight into its param (memory plan's intoParam), and a call may fail after it:
    // the params it updates count as changed from the start, so no packed copy of their old values is used again.
    for (const u of fn.updates ?? []) {
      const slot = params.get(u.param);
      if (slot) bumpParam(slot);
    }
    try {
      const ptrs = new Array<number>(fn.values.length).fill(-1);
      const what = `${fn.name}${dimNote}`;
      const base = plan.peak > 0 ? memory.allocScratch(plan.peak, what) : 0;
      const place = (i: number): number => {
        if (ptrs[i]! >= 0) return ptrs[i]!;
        const v = fn.values[i]!;
        let ptr = -1;
        switch (v.source.kind) {
          case "param":
            ptr = params.get(v.source.name)!.ptr;
            break;
          case "const":
            ptr = this.#constPtr.get(i) ?? base + plan.offsets[i]!;
            if (!this.#constPtr.has(i)) memory.fill(v.dtype, ptr, numels[i]!, this.#constBits.get(i)!);
            break;
          case "alias": {
            const of = v.source.of;
            ptr = place(of);
            const targetBytes = numels[of]! * dtypeBytes(fn.values[of]!.dtype);
            if (bytes[i]! > targetBytes) {
              throw new KilnError(`invalid module: function ${fn.name}: value ${i} (${bytes[i]} bytes) aliases value ${of} which has only ${targetBytes} bytes`, { code: "bad_manifest", fn: fn.name });
            }
            break;
          }
          case "input": {
            ptr = base + plan.offsets[i]!;
            const src = data[v.source.index]!;
            const low = fn.inputs[v.source.index]!.storage;
            if (src.length !== numels[i] || (!low && src.byteLength !== bytes[i])) {
              throw new KilnError(`invalid module: function ${fn.name}: value ${i} has ${numels[i]} elements but input "${fn.inputs[v.source.index]!.name}" has ${src.length}`, { code: "bad_manifest", fn: fn.name });
            }
            // An f32 input stored in 16 bits (only matmuls read it): rounded while copied in, by the input's
            // convert kernel from a staging copy (a module without one converts in JS, the same rounding).
            const convert = this.#convertFns[v.source.index];
            if (low && convert && numels[i]! > 0) {
              const staged = memory.allocScratch(numels[i]! * 4, what);
              memory.write(staged, src);
              convert(staged, ptr, numels[i]!);
            } else if (low === "f16") f32ArrayToF16Bits(src as Float32Array, memory.view("f16", ptr, numels[i]!));
            else if (low === "bf16") f32ArrayToBf16Bits(src as Float32Array, memory.view("bf16", ptr, numels[i]!));
            else memory.write(ptr, src);
            break;
          }
          case "temp": {
            const into = plan.intoParam.get(i);
            ptr = into !== undefined ? params.get(into)!.ptr : plan.offsets[i]! >= 0 ? base + plan.offsets[i]! : memory.allocScratch(bytes[i]!, what);
            break;
          }
          case "random":
            // Its own block for the whole call (outside the memory plan), drawn for every random value in value
            // order, guarded or not, as the reference interpreter does.
            ptr = memory.allocScratch(bytes[i]!, what);
            memory.write(ptr, this.#random.next(fn.name, v.source.stream, numels[i]!));
            break;
          case "dim": {
            // A scalar of its own (like random values), written every call: the dims differ between calls.
            ptr = memory.allocScratch(bytes[i]!, what);
            const one = allocTypedArray(v.dtype, 1);
            encodeNumbersLoose(v.dtype, [dimsProduct(v.source.dims, dims, fn.name)], one);
            memory.write(ptr, one);
            break;
          }
          case "fused":
            break;
        }
        ptrs[i] = ptr;
        return ptr;
      };
      for (let i = 0; i < fn.values.length; i++) place(i);

      const view = () => new Uint8Array(memory.memory.buffer);
      const readValue = (v: number) => memory.read(fn.values[v]!.dtype, ptrs[v]!, numels[v]!);
      fn.steps.forEach((step, si) => {
        if (step.guard && !step.guard.every((g) => (view()[ptrs[g.value]!] !== 0) === g.when)) {
          for (const out of outsOf(step)) view().fill(0, ptrs[out]!, ptrs[out]! + numels[out]! * dtypeBytes(fn.values[out]!.dtype));
          observe?.(si, readValue);
          return;
        }
        const args = step.buffers.map((b) => ptrs[b]!);
        for (const x of ints[si]!) args.push(x);
        const pp = this.#prepack[si];
        if (pp) args[1] = this.#packed.get(pp.kernel, pp.pack, pp.param, pp.slot, pp.slot.ptr, pp.K, pp.N);
        try {
          const k = stepFns[si];
          if (k) k(...args);
          else if (step.kernel === HOST_BUCKET) this.#bucket(args[0]!, args[1]!);
          else this.#allReduce(args[0]!, args[1]!, args[2]!);
          if (options?.checkNumerics) for (const out of outsOf(step)) this.#checkFinite(out, ptrs, numels, `step ${si + 1} of ${fn.steps.length} (ops: ${step.ops?.join(", ") ?? "?"})`);
        } catch (e) {
          if (e instanceof KilnError) throw e;
          const ops = step.ops?.length ? step.ops.join(", ") : "unknown";
          const why = e instanceof Error ? `${e.constructor.name}: ${e.message}` : String(e);
          throw new KilnError(
            `internal error in ${fn.name}${dimNote}: kernel "${step.kernel}" (step ${si + 1} of ${fn.steps.length}, ops: ${ops}) failed (${why}). ` +
              `This is a bug in Kiln, not in your inputs; please report it with the model source.`,
            { code: "kernel_trap", fn: fn.name, cause: e },
          );
        }
        observe?.(si, readValue);
      });

      for (const c of fn.checks ?? []) {
        const err = loopBoundError(fn.name, c, memory.read("i32", ptrs[c.value]!, 1)[0] as number);
        if (err) throw err;
      }
      const results = fn.outputs.map((_, k) => {
        const vi = fn.outputValues[k]!;
        const v = fn.values[vi]!;
        const target = outs?.[k];
        if (!target) return new Tensor(v.dtype as DType, outShapes[k]!, memory.read(v.dtype, ptrs[vi]!, numels[vi]!));
        target.data.set(memory.view(v.dtype, ptrs[vi]!, numels[vi]!) as never);
        return outTensor(target, v.dtype as DType, outShapes[k]!);
      });
      for (const u of fn.updates ?? []) {
        const slot = params.get(u.param);
        if (!slot) throw new KilnError(`invalid module: function ${fn.name} updates unknown param "${u.param}"`, { code: "bad_manifest", fn: fn.name });
        if (options?.checkNumerics) this.#checkFinite(u.value, ptrs, numels, `the update of param "${u.param}"`);
        const bytes = slot.numel * dtypeBytes(slot.param.dtype);
        if (ptrs[u.value] !== slot.ptr) memory.write(slot.ptr, new Uint8Array(memory.memory.buffer, ptrs[u.value]!, bytes));
      }
      return results;
    } finally {
      memory.resetScratch();
    }
  }
}

/** Everything about a call that follows from its dims alone (FunctionExecutor.#shapeFor). */
interface CallShape {
  /** " (B=64)" for messages. */
  readonly dimNote: string;
  readonly numels: readonly number[];
  readonly ints: readonly (readonly number[])[];
  readonly bytes: readonly number[];
  readonly plan: MemoryPlan;
  /** Each output's concrete shape. */
  readonly outShapes: readonly number[][];
}

/** Sees a call's values after step `step` ran: `read(v)` copies value v. */
export type StepObserver = (step: number, read: (value: number) => AnyTypedArray) => void;

/** NaN/Inf detection for float values (an opt-in pass over the kernel's output). */
const FLOATS = new Set(["f32", "f64", "f16", "bf16"]);

function numelOf(shape: ValueManifest["shape"], dims: Record<string, number>): number {
  let n = 1;
  for (const d of shape) {
    if (typeof d === "number") n *= d;
    else {
      const v = dims[d];
      if (v === undefined) throw new Error(`dimension ${d} is not bound`);
      n *= v;
    }
  }
  return n;
}

/** A matmul step's packing scratch at the call's dims (runtime/wasm/matmul-scratch.ts); a bad formula is a bad manifest. */
function scratchBytes(fn: FunctionManifest, i: number, dims: Record<string, number>): number {
  const src = fn.values[i]!.source as { matmul: Parameters<typeof matmulScratchBytesAt>[0] };
  try {
    return matmulScratchBytesAt(src.matmul, dims);
  } catch (e) {
    throw new KilnError(`invalid module: function ${fn.name}: value ${i} (matmul scratch): ${(e as Error).message}`, { code: "bad_manifest", fn: fn.name, cause: e });
  }
}
