// The precision pass: its output as golden IR (test/precision/fixtures, KILN_UPDATE_FIXTURES=1 regenerates),
// the contract it leaves for fusion (f16/bf16 only as casts, matmul operands and copy params), f32 bit-identity,
// and the diagnostics of bad precision requests.
import { describe, expect, it } from "vitest";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { compileToIR, type Precision } from "../../compiler/compile.js";
import { formatDiagnostics } from "../../compiler/diagnostics.js";
import { printModule } from "../../compiler/ir/print.js";
import type { IRModule } from "../../compiler/ir/graph.js";
import { main } from "../../compiler/cli/main.js";
import { evaluateGraph } from "../../compiler/reference/interpreter.js";
import { golden } from "../helpers/golden.js";

const DIR = "test/precision/fixtures";

function dumpAfterPrecision(file: string, precision: Precision): string {
  const src = readFileSync(file, "utf8");
  const r = compileToIR(src, file, ["precision"], [], { precision });
  if (!r.ir) throw new Error(formatDiagnostics(r.diagnostics, { [file]: src }));
  return r.dumps[0].text;
}


/**
 * The contract of docs/language.md (Mixed precision): where an f16/bf16 value may appear after the pass (the
 * pass's own view rebuilding adds layout copies of 16-bit values).
 */
function lowValuesFollowContract(ir: IRModule): string[] {
  const bad: string[] = [];
  const low = (d: string) => d === "f16" || d === "bf16";
  for (const g of ir.functions) {
    for (const n of g.nodes) {
      const ins = n.inputs.map((i) => g.nodes[i].type.dtype);
      // Layout copies (views, and conv's pad + window im2col) move 16-bit elements without computing on them;
      // an input only matmuls read is stored low (its caller passes f32: the GraphIO keeps dtype f32).
      // all_finite reads a gradient as stored (an f16 value that rounded to Inf is the overflow it looks for).
      if (n.op === "cast" || n.op === "param" || n.op === "input" || n.op === "all_finite" || ["reshape", "permute", "broadcast_to", "pad", "window", "slice"].includes(n.op)) continue;
      if (n.op === "matmul") {
        if (low(ins[0]) && (ins[1] !== ins[0] || n.type.dtype !== "f32")) bad.push(`${g.name} %${n.id}: mixed matmul`);
        continue;
      }
      if (low(n.type.dtype) || ins.some(low)) bad.push(`${g.name} %${n.id}: ${n.op} computes on ${[...ins, n.type.dtype].join(",")}`);
    }
  }
  return bad;
}

describe("precision pass", () => {
  it("mixed-f16 on a linear layer, its training step and a conv (golden IR after the pass)", () => {
    golden(join(DIR, "mixed.ir"), dumpAfterPrecision(join(DIR, "mixed.kiln"), "mixed-f16"));
  });

  it("@autocast marks only its function and what it inlines (golden IR after the pass)", () => {
    const text = dumpAfterPrecision(join(DIR, "autocast.kiln"), "f32");
    golden(join(DIR, "autocast.ir"), text);
    const fn = (name: string) => text.slice(text.indexOf(`fn ${name}(`)).split("\n}")[0];
    expect(fn("mixed")).toContain("bf16");
    expect(fn("plain")).not.toContain("bf16");
    expect(fn("exact")).not.toContain("bf16");
  });

  it("f16/bf16 values appear only as casts, matmul operands (f32 results) and copy params", () => {
    for (const f of ["mnist_mlp.kiln", "mnist_cnn.kiln", "mlp_train.kiln", "attention.kiln"]) {
      for (const precision of ["mixed-f16", "mixed-bf16"] as const) {
        const src = readFileSync(join("dsl-examples", f), "utf8");
        const r = compileToIR(src, f, [], ["fusion"], { precision });
        expect(r.ir, formatDiagnostics(r.diagnostics, { [f]: src })).toBeDefined();
        expect(lowValuesFollowContract(r.ir!), `${f} ${precision}`).toEqual([]);
        expect(r.ir!.params.filter((p) => p.role === "copy").length, `${f}: copy params`).toBeGreaterThan(0);
      }
    }
  });

  it("a training step refreshes every copy it reads from its master's new value", () => {
    const src = readFileSync("dsl-examples/mnist_mlp.kiln", "utf8");
    const ir = compileToIR(src, "m.kiln", [], [], { precision: "mixed-bf16" }).ir!;
    const step = ir.functions.find((g) => g.name === "Train.step")!;
    for (const c of ir.params.filter((p) => p.role === "copy")) {
      const u = step.updates!.find((x) => x.param === c.name);
      const master = step.updates!.find((x) => x.param === c.copyOf)!;
      expect(u, c.name).toBeDefined();
      expect(step.nodes[u!.node].op).toBe("cast");
      expect(step.nodes[u!.node].inputs).toEqual([master.node]);
    }
  });

  it("--precision f32 (the default) leaves every example's IR identical", () => {
    for (const f of readdirSync("dsl-examples").filter((x) => x.endsWith(".kiln"))) {
      const src = readFileSync(join("dsl-examples", f), "utf8");
      const a = compileToIR(src, f), b = compileToIR(src, f, [], [], { precision: "f32" });
      expect(printModule(b.ir!), f).toBe(printModule(a.ir!));
      expect(printModule(a.ir!), f).not.toMatch(/f16|bf16|copy /);
    }
  });

  it("mixed-f16 gives a train block dynamic loss scaling with GradScaler's defaults; bf16 needs none", () => {
    const src = readFileSync("dsl-examples/mnist_mlp.kiln", "utf8");
    const f16 = compileToIR(src, "m.kiln", [], [], { precision: "mixed-f16" }).ir!;
    const bf16 = compileToIR(src, "m.kiln", [], [], { precision: "mixed-bf16" }).ir!;
    const scale = f16.params.find((p) => p.name === "Train.scaler.scale");
    expect(scale?.init).toEqual({ kind: "constant", value: 65536 });
    expect(bf16.params.some((p) => p.name.includes("scaler"))).toBe(false);
  });
});

describe("user-written low precision", () => {
  it("matmul of two f16 operands returns f32, and its gradient is rounded back to f16 (reference)", () => {
    const src = `fn f(x: f32[1, 2], w: f32[2, 1]) -> f32 { return sum(cast(x, f16) @ cast(w, f16)) }
fn df(x: f32[1, 2], w: f32[2, 1]) -> f32[1, 2] { return grad(f)(x, w) }`;
    const ir = compileToIR(src, "t.kiln").ir!;
    const mm = ir.functions[0].nodes.find((n) => n.op === "matmul")!;
    expect(mm.type.dtype).toBe("f32");
    const df = ir.functions.find((g) => g.name === "df")!;
    // d/dx sum(x @ w) = w^T; w = [0.1, 3] rounds to f16 as [0.0999755859375, 3] (np.float16(0.1)).
    const out = evaluateGraph(df, { x: { data: [1, 2], shape: [1, 2] }, w: { data: [0.1, 3], shape: [2, 1] } });
    expect(Array.from(out[0].data)).toEqual([0.0999755859375, 3]);
  });

  it("an op the policy keeps in f32, applied to an f16 value, computes in f32 and rounds back (documented override)", () => {
    const src = "fn f(x: f32[2]) -> f32[2] { return cast(exp(cast(x, f16)), f32) }";
    const r = compileToIR(src, "t.kiln", ["precision"], [], { precision: "mixed-f16" });
    const g = r.ir!.functions[0];
    const exp = g.nodes.find((n) => n.op === "exp")!;
    expect(exp.type.dtype).toBe("f32");
    expect(g.nodes[exp.inputs[0]].op).toBe("cast");
    // exp(1) = 2.718281828... rounds to f16 2.71875 (spacing 2^-9 in [2, 4)); exp(0) = 1.
    expect(Array.from(evaluateGraph(g, { x: { data: [1, 0], shape: [2] } })[0].data)).toEqual([2.71875, 1]);
  });
});

describe("bad precision requests", () => {
  const bad = (attr: string) => `${attr}\nfn f(x: f32[2, 2]) -> f32[2, 2] {\n  return x @ x\n}\n`;
  for (const [attr, what, col] of [
    ["@autocast(i32)", "integer dtype", 11],
    ["@autocast(f64)", "got f64", 11],
    ["@autocast()", "needs one dtype", 1],
    ["@autocast(f16, f32)", "needs one dtype", 1],
    ["@fast", "unknown attribute", 1],
  ] as const) {
    it(`${attr} is K305 at its position`, () => {
      const r = compileToIR(bad(attr), "bad.kiln");
      expect(r.ir).toBeUndefined();
      const d = r.diagnostics[0];
      expect(d.code).toBe("K305");
      expect(d.message).toContain(what);
      expect([d.span.line, d.span.col]).toEqual([1, col]);
      expect(formatDiagnostics(r.diagnostics, { "bad.kiln": bad(attr) })).toMatch(/\^+\nhint: /);
    });
  }

  it("kiln compile --precision mixed-bf16 --dump-after precision prints the pass's output", async () => {
    const outs: string[] = [];
    const code = await main(["compile", "dsl-examples/mlp.kiln", "--precision", "mixed-bf16", "--dump-after", "precision", "--emit", "ir"], (s) => outs.push(s), () => {});
    expect(code).toBe(0);
    expect(outs[0]).toMatch(/^\/\/ after precision\n\/\/ kiln IR of dsl-examples\/mlp.kiln \(precision mixed-bf16\)/);
    expect(outs[0]).toContain("copy MLP.w1.bf16: bf16[784, 128] = cast(MLP.w1)");
  });

  it("--precision with a bad value is a usage error naming the option and the choices", async () => {
    const errs: string[] = [];
    const code = await main(["compile", "dsl-examples/mlp.kiln", "--precision", "fp16", "--emit", "ir"], () => {}, (s) => errs.push(s));
    expect(code).toBe(2);
    expect(errs[0]).toContain("--precision must be f32, mixed-f16, mixed-bf16, got 'fp16'");
  });
});
