// Exports of a model whose shapes use derived dims (B * 3, B * T, T - 1, (T-1)*B): the torch package (Debian's
// python3-torch), the ONNX files (onnxruntime-node) and the bundle, each run at two sizes, give the wasm module's
// outputs, which equal the float64 reference interpreter's; torch's own autograd gives Kiln's gradient of a mean
// over B*T rows; a dim no input has is an export error at the op, not a stack trace.
import { describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as ort from "onnxruntime-node";
import { evaluateGraph } from "../../compiler/reference/interpreter.js";
import { exportOnnx } from "../../compiler/export/onnx/index.js";
import { writePyFunction } from "../../compiler/export/torch/write.js";
import { KilnError } from "../../runtime/errors.js";
import { parseSafetensors, serializeSafetensors } from "../../runtime/safetensors.js";
import { Tensor } from "../../runtime/tensor.js";
import { closeness, irOfFile, kiln, lcg, moduleWithWeights, python, pythonWith, tmp } from "./helpers.js";

const HAVE_TORCH = pythonWith("torch export of derived dims", ["torch", "numpy"]);

const SRC = `model P {
  param w: f32[4, 4] = xavier()
  param b: f32[1, 4] = xavier()

  fn flat(x3: f32[B, 3]) -> f32[B * 3] {
    return reshape(x3, [B * 3]) * 2.0
  }
  fn rows(x: f32[B, T, 4]) -> f32[B, T, 4] {
    let h = reshape(x, [B * T, 4]) @ w + broadcast_to(b, [B * T, 4])
    return reshape(tanh(h), [B, T, 4])
  }
  fn avg(x: f32[B, T, 4]) -> (f32[4], f32) {
    let h = reshape(x, [B * T, 4])
    return mean(h, axis: 0), mean(h @ w)
  }
  fn loss(x: f32[B, T, 4]) -> f32 {
    return mean(tanh(reshape(x, [B * T, 4]) @ w) * 0.5)
  }
  fn grads(x: f32[B, T, 4]) -> f32[4, 4] {
    return grad(loss, wrt: [w])(x)
  }
  fn shifted(x: f32[B, T, 4]) -> f32[B, T - 1, 4] {
    let f = reshape(x[:, 1:], [-1])
    return reshape(f * 2.0, [B, -1, 4])
  }
  fn tile(x: f32[B, T, 4]) -> f32[B * T, 4] {
    return broadcast_to(b, [B * T, 4])
  }
  fn fill(x: f32[B, T, 4]) -> f32[B * T, 2] {
    return full([B * T, 2], 0.25)
  }
  fn pos(x: f32[B, T, 4]) -> i32[T - 1] {
    return arange(T)[1:]
  }
}
`;
const FNS = ["flat", "rows", "avg", "loss", "grads", "shifted", "tile", "fill", "pos"];
/** [B, T]: two batch sizes (and lengths), so a size baked in at export time would fail one of them. */
const SIZES = [[2, 3], [5, 2]];

function setup() {
  const dir = tmp();
  const file = join(dir, "sym.kiln");
  writeFileSync(file, SRC);
  return { dir, file };
}

const inputsAt = ([B, T]: number[], k: number) => ({ x3: new Tensor("f32", [B, 3], lcg(B * 3, 31 + k)), x: new Tensor("f32", [B, T, 4], lcg(B * T * 4, 41 + k)) });
const argOf = (fn: string) => (fn === "flat" ? "x3" : "x");

/** Kiln's wasm results, checked against the float64 reference interpreter, by "fn.k.i". */
async function kilnResults(file: string, dir: string) {
  const { mod, weights } = await moduleWithWeights(file, 7, dir);
  const ir = irOfFile(file);
  const params = Object.fromEntries(Object.entries(mod.paramsByName()).map(([k, t]) => [k, t.data as Float32Array]));
  const want = new Map<string, Tensor>();
  SIZES.forEach((size, k) => {
    const ins = inputsAt(size, k);
    for (const fn of FNS) {
      const x = ins[argOf(fn) as "x"];
      const r = mod.call(`P.${fn}`, { [argOf(fn)]: x });
      const outs = Array.isArray(r) ? r : [r];
      const ref = evaluateGraph(ir.functions.find((g) => g.name === `P.${fn}`)!, { [argOf(fn)]: { data: x.data as Float32Array, shape: x.shape } }, params);
      outs.forEach((t, i) => {
        expect(t.shape, `${fn} at ${size}`).toEqual(ref[i].shape);
        expect(closeness(t.data as Float32Array, ref[i].data, 1e-5, 1e-6), `wasm vs reference: ${fn}[${i}] at B, T = ${size}`).toBeLessThanOrEqual(1);
        want.set(`${fn}.${k}.${i}`, t);
      });
    }
  });
  return { mod, weights, want };
}

const RUN_PY = `import importlib, sys, torch
sys.path.insert(0, sys.argv[1])
pkg = importlib.import_module(sys.argv[2])
m = pkg.P.from_kiln()
ins, _ = pkg.load_file(sys.argv[3])
fns = sys.argv[5].split(",")
out = {}
for k in range(int(sys.argv[6])):
    for fn in fns:
        with torch.no_grad():
            r = getattr(m, fn)(ins[("x3." if fn == "flat" else "x.") + str(k)])
        for i, t in enumerate(r if isinstance(r, tuple) else (r,)):
            out[f"{fn}.{k}.{i}"] = t.contiguous()
    # torch's own gradient of the loss (w is held as nn.Linear's [out, in]: transposed back to Kiln's [in, out]).
    g, = torch.autograd.grad(m.loss(ins["x." + str(k)]), m.w)
    out[f"autograd.{k}"] = g.t().contiguous()
pkg.save_file(out, sys.argv[4])
`;

describe("export of derived dims (B * 3, B * T, T - 1)", () => {
  it.skipIf(!HAVE_TORCH)("torch: the exported module computes the dims from its inputs at two batch sizes; outputs and torch's autograd equal Kiln's", async () => {
    const { dir, file } = setup();
    const { want, weights } = await kilnResults(file, dir);
    const r = await kiln("export", file, "--format", "torch", "--weights", weights, "--out", join(dir, "pkg", "sym_torch"));
    expect(r.code, r.err).toBe(0);
    const model = readFileSync(join(dir, "pkg", "sym_torch", "model.py"), "utf8");
    // The sizes are read from the call's input, never written in as the numbers of some call.
    expect(model).toContain("x3.reshape(((3 * x3.shape[0]),))");
    expect(model).toContain("(x.shape[1] - 1)");
    const ins: Record<string, Tensor> = {};
    SIZES.forEach((size, k) => Object.entries(inputsAt(size, k)).forEach(([n, t]) => (ins[`${n}.${k}`] = t)));
    writeFileSync(join(dir, "in.safetensors"), serializeSafetensors(ins));
    python(RUN_PY, [join(dir, "pkg"), "sym_torch", join(dir, "in.safetensors"), join(dir, "out.safetensors"), FNS.join(","), String(SIZES.length)]);
    const got = parseSafetensors(readFileSync(join(dir, "out.safetensors"))).tensors;
    for (const [key, t] of want) {
      expect(got[key]?.shape, key).toEqual(t.shape);
      expect(closeness(got[key].data as Float32Array, t.data as Float32Array, 1e-5, 1e-6), `torch vs Kiln: ${key}`).toBeLessThanOrEqual(1);
    }
    SIZES.forEach((_s, k) => expect(closeness(got[`autograd.${k}`].data as Float32Array, want.get(`grads.${k}.0`)!.data as Float32Array, 1e-4, 1e-6), `torch autograd vs Kiln's grad at size ${k}`).toBeLessThanOrEqual(1));
  }, 240_000);

  it("ONNX: each function runs in onnxruntime at two batch sizes with Kiln's outputs", async () => {
    const { dir, file } = setup();
    const { want, weights } = await kilnResults(file, dir);
    const r = await kiln("export", file, "--format", "onnx", "--weights", weights, "--out", join(dir, "onnx"));
    expect(r.code, r.err).toBe(0);
    const files = FNS.map((fn) => join(dir, "onnx", `P.${fn}.onnx`));
    // The shape arithmetic (Shape, Mul, Sub, Range, Expand) passes ONNX's own full check, where python3-onnx is.
    if (pythonWith("onnx checker of derived dims", ["onnx"])) python("import onnx, sys\nfor f in sys.argv[1:]:\n    onnx.checker.check_model(onnx.load(f), full_check=True)", files);
    for (const fn of FNS) {
      const session = await ort.InferenceSession.create(join(dir, "onnx", `P.${fn}.onnx`));
      for (let k = 0; k < SIZES.length; k++) {
        const x = inputsAt(SIZES[k], k)[argOf(fn) as "x"];
        const res = await session.run({ [argOf(fn)]: new ort.Tensor("float32", x.data as Float32Array, x.shape) });
        session.outputNames.forEach((name, i) => {
          const t = want.get(`${fn}.${k}.${i}`)!;
          expect([...res[name].dims], `${fn}.${k}.${i}`).toEqual(t.shape);
          expect(closeness(Float32Array.from(res[name].data as ArrayLike<number>), t.data as Float32Array, 1e-5, 1e-6), `onnxruntime vs Kiln: ${fn}.${k}.${i}`).toBeLessThanOrEqual(1);
        });
      }
    }
  }, 120_000);

  it("bundle: the standalone script gives the wasm module's outputs at two batch sizes", async () => {
    const { dir, file } = setup();
    const { want, weights } = await kilnResults(file, dir);
    const out = join(dir, "sym.bundle.js");
    const r = await kiln("export", file, "--format", "bundle", "--weights", weights, "--out", out);
    expect(r.code, r.err).toBe(0);
    const cases = SIZES.map((size, k) => ({ k, size, x3: Array.from(inputsAt(size, k).x3.data as Float32Array), x: Array.from(inputsAt(size, k).x.data as Float32Array) }));
    writeFileSync(join(dir, "cases.json"), JSON.stringify(cases));
    const script = `const m = await (await import("./sym.bundle.js")).load();
const cases = JSON.parse(await (await import("node:fs/promises")).readFile("cases.json", "utf8"));
const out = {};
for (const c of cases) for (const fn of ${JSON.stringify(FNS)}) {
  const arg = fn === "flat" ? "x3" : "x";
  const r = m.call("P." + fn, { [arg]: Float32Array.from(c[arg]) }, { dims: fn === "flat" ? { B: c.size[0] } : { B: c.size[0], T: c.size[1] } });
  (Array.isArray(r) ? r : [r]).forEach((t, i) => (out[fn + "." + c.k + "." + i] = { shape: t.shape, data: Array.from(t.data) }));
}
console.log(JSON.stringify(out));`;
    const got = JSON.parse(execFileSync(process.execPath, ["--input-type=module", "-e", script], { cwd: dir, encoding: "utf8" }));
    for (const [key, t] of want) {
      expect(got[key]?.shape, key).toEqual(t.shape);
      expect(closeness(got[key].data, t.data as Float32Array, 1e-7, 1e-9), `bundle vs wasm: ${key}`).toBeLessThanOrEqual(1);
    }
  }, 120_000);

  it("a dim no input has is an export error naming the op, the dim and what to do (torch and ONNX)", () => {
    const { file } = setup();
    const ir = irOfFile(file);
    const g = ir.functions.find((f) => f.name === "P.tile")!;
    // Hand-edited IR: the broadcast's target names K, which no input axis has (a valid program never gets here).
    const n = g.nodes.find((x) => x.op === "broadcast_to")!;
    (n as { attrs: unknown }).attrs = { shape: ["K*T", 4] };
    (n as { type: unknown }).type = { ...n.type, shape: ["K*T", 4] };
    const torch = () => writePyFunction(g, { name: "tile", method: true, param: (q) => `self.${q}` });
    expect(torch).toThrow(KilnError);
    expect(torch).toThrow(/sym\.kiln:27:\d+: cannot export P\.tile to PyTorch: broadcast_to: dim K\*T needs K, which is not the size of any input axis[^]*\nhint: give the function an input with an axis of size K/);
    const onnx = () => exportOnnx({ ...ir, functions: [g] }, { tensors: new Map(), quantized: new Map() });
    expect(onnx).toThrow(KilnError);
    expect(onnx).toThrow(/sym\.kiln:27:\d+: cannot export P\.tile to ONNX: broadcast_to: dim K\*T needs K[^]*\nhint: give the function an input/);
  });
});
