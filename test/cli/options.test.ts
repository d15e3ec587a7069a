// The command table: per-command --help, flags that belong to another command, "did you mean", one-line file
// errors, the compiling status line on a terminal (and nothing off one), and run --weights.
import { describe, expect, it } from "vitest";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { main, COMMANDS } from "../../compiler/cli/main.js";
import { serializeSafetensors } from "../../runtime/safetensors.js";
import { Tensor } from "../../runtime/tensor.js";

interface FakeTty { writes: string[]; isTTY: boolean; columns: number; write(s: string): boolean }
const fakeTty = (isTTY: boolean): FakeTty => ({ writes: [], isTTY, columns: 80, write(s: string) { this.writes.push(s); return true; } });

async function kiln(args: string[], tty: FakeTty = fakeTty(false)) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(args, (s) => out.push(s), (s) => err.push(s), tty as unknown as NodeJS.WriteStream);
  return { code, out: out.join("\n"), err: err.join("\n"), tty: tty.writes.join("") };
}

const tmp = () => mkdtempSync(join(tmpdir(), "kiln-opts-"));

describe("--help", () => {
  it("every command prints its usage and every option it declares, exit 0", async () => {
    for (const c of COMMANDS) {
      for (const h of ["--help", "-h"]) {
        const r = await kiln([c.name, h]);
        expect(r.code, `${c.name} ${h}`).toBe(0);
        expect(r.out).toContain(`usage: kiln ${c.name} `);
        for (const o of Object.keys(c.options)) expect(r.out, `${c.name} --${o}`).toContain(`--${o}`);
      }
    }
    const t = await kiln(["train", "dsl-examples/mlp_train.kiln", "--help"]);
    expect(t.out).toContain("--label-column NAME|INDEX");
    expect((await kiln(["help", "quantize"])).out).toContain("usage: kiln quantize FILE.kiln --weights W.safetensors");
  });

  it("the general usage lists every command", async () => {
    const r = await kiln(["--help"]);
    expect(r.code).toBe(0);
    for (const c of COMMANDS) expect(r.out).toMatch(new RegExp(`^  ${c.name} +\\S`, "m"));
    expect((await kiln([])).code).toBe(2);
  });
});

describe("flags and commands that do not fit", () => {
  it("a flag of another command is named as such (exit 2), never ignored", async () => {
    const check = await kiln(["check", "dsl-examples/mlp.kiln", "--epochs", "5"]);
    expect(check.code).toBe(2);
    expect(check.err).toContain("kiln: --epochs is an option of kiln train, not of kiln check");
    expect(check.err).toContain("usage: kiln check FILE.kiln");
    const q = await kiln(["compile", "dsl-examples/mlp.kiln", "--mode", "static"]);
    expect(q.err).toContain("--mode is an option of kiln quantize, not of kiln compile");
    const fn = await kiln(["train", "dsl-examples/mlp_train.kiln", "--fn", "forward"]);
    expect(fn.err).toContain("--fn is an option of kiln run, kiln quantize, kiln export, not of kiln train");
  });

  it("did you mean, for commands and flags", async () => {
    const cmd = await kiln(["trian", "x.kiln"]);
    expect(cmd.code).toBe(2);
    expect(cmd.err).toContain("unknown command 'trian'; did you mean 'train'?");
    const opt = await kiln(["train", "dsl-examples/mlp_train.kiln", "--epoch", "3"]);
    expect(opt.code).toBe(2);
    expect(opt.err).toContain("unknown option --epoch for kiln train; did you mean --epochs?");
    const none = await kiln(["run", "dsl-examples/mlp.kiln", "--zzzzzz"]);
    expect(none.err).toContain("unknown option --zzzzzz for kiln run");
    expect(none.err).not.toContain("did you mean");
    expect((await kiln(["train", "dsl-examples/mlp_train.kiln", "--data", "minst"])).err).toContain("did you mean mnist?");
  });

  it("options that do not apply to the chosen data are refused, naming where they apply", async () => {
    const cases: Array<[string[], string]> = [
      [["--steps", "2", "--data", "mnist"], "--steps applies to --data synthetic"],
      [["--epochs", "2"], "--epochs applies to --data mnist or a data file"],
      [["--augment"], "--augment applies to --data mnist"],
      [["--labels", "y.npy", "--data", "dsl-examples/tutorial-app/flowers.csv"], "--labels applies to --data FILE.npy or FILE.idx"],
      [["--val-split", "0.1", "--data", "mnist"], "--val-split applies to --data FILE"],
      [["--data", "dsl-examples/tutorial-app/flowers.csv", "--val-split", "1.5"], "--val-split must be a fraction in [0, 1)"],
    ];
    for (const [args, msg] of cases) {
      const r = await kiln(["train", "dsl-examples/mlp_train.kiln", ...args]);
      expect(r.code, args.join(" ")).toBe(2);
      expect(r.err).toContain(msg);
    }
    const dims = await kiln(["compile", "dsl-examples/mlp.kiln", "--dims", "B=4"]);
    expect(dims.err).toContain("--dims sizes the --report; add --report");
    const repeated = await kiln(["run", "dsl-examples/mlp.kiln", "--fn", "forward", "--fn", "predict"]);
    expect(repeated.err).toContain("--fn given more than once");
    const missing = await kiln(["compile", "dsl-examples/mlp.kiln", "--out"]);
    expect(missing.err).toContain("kiln: --out needs a value");
    expect((await kiln(["help", "nosuch"])).err).toContain("unknown command 'nosuch'");
    const sw = await kiln(["compile", "dsl-examples/mlp.kiln", "--report=yes"]);
    expect(sw.err).toContain("--report is a switch and takes no value");
  });
});

describe("file errors: one line, exit 1", () => {
  it("a missing file, a directory, a bad path under a flag", async () => {
    const dir = await kiln(["check", "dsl-examples"]);
    expect(dir).toMatchObject({ code: 1, err: "kiln: cannot read 'dsl-examples': it is a directory, not a file" });
    const miss = await kiln(["compile", "no/such.kiln"]);
    expect(miss).toMatchObject({ code: 1, err: "kiln: cannot read 'no/such.kiln': no such file" });
    const w = await kiln(["run", "dsl-examples/mlp.kiln", "--fn", "forward", "--weights", "/nonexistent.safetensors"]);
    expect(w).toMatchObject({ code: 1, err: "kiln: --weights /nonexistent.safetensors: could not read it: no such file", out: "" });
    const d = await kiln(["train", "dsl-examples/mlp_train.kiln", "--data", "dsl-examples/", "--epochs", "1"]);
    expect(d.code).toBe(2); // no data extension: a usage error naming the accepted kinds
    const dd = await kiln(["train", "dsl-examples/mlp_train.kiln", "--data", "nowhere.csv"]);
    expect(dd).toMatchObject({ code: 1, err: "kiln: --data nowhere.csv: could not read it: no such file" });
    const save = tmp();
    const s = await kiln(["train", "dsl-examples/mlp_train.kiln", "--steps", "1", "--batch", "2", "--save", save]);
    expect(s.code).toBe(1);
    expect(s.err).toBe(`kiln: cannot open '${save}': it is a directory, not a file`);
  });

  it.skipIf(process.getuid?.() === 0)("an unreadable file", async () => {
    const { chmodSync } = await import("node:fs");
    const f = join(tmp(), "locked.kiln");
    writeFileSync(f, "fn f(x: f32) -> f32 { return x }\n");
    chmodSync(f, 0o000);
    expect(await kiln(["check", f])).toMatchObject({ code: 1, err: `kiln: cannot read '${f}': permission denied` });
  });
});

describe("the compiling status line", () => {
  it("on a terminal: shown while compiling, erased before the result; off a terminal: nothing", async () => {
    const tty = fakeTty(true);
    const r = await kiln(["check", "dsl-examples/attention.kiln"], tty);
    expect(r.code).toBe(0);
    expect(tty.writes[0]).toBe("kiln: compiling dsl-examples/attention.kiln…");
    expect(tty.writes[1]).toMatch(/^\r +\r$/);
    expect(tty.writes[1]!.trim()).toBe("");
    const log = fakeTty(false);
    await kiln(["check", "dsl-examples/attention.kiln"], log);
    expect(log.writes).toEqual([]);
  });
});

describe("kiln run --weights", () => {
  it("runs with the file's params (wasm and reference agree) instead of the init rules", async () => {
    const dir = tmp();
    const src = join(dir, "lin.kiln");
    writeFileSync(src, "model L {\n  param w: f32[2, 2] = he()\n  fn forward(x: f32[1, 2]) -> f32[1, 2] {\n    return x @ w\n  }\n}\n");
    const w = join(dir, "w.safetensors");
    writeFileSync(w, serializeSafetensors({ "L.w": new Tensor("f32", [2, 2], [1, 2, 3, 4]) }));
    for (const backend of ["wasm", "reference"]) {
      const r = await kiln(["run", src, "--fn", "forward", "--input", "x=[[1,1]]", "--weights", w, "--backend", backend]);
      expect(r.code, r.err).toBe(0);
      expect(r.out).toMatch(/4(\.0*)?,\s*6(\.0*)?\]/);
    }
    const foreign = join(dir, "f.safetensors");
    writeFileSync(foreign, serializeSafetensors({ "M.w": new Tensor("f32", [2, 2], [1, 2, 3, 4]) }));
    const bad = await kiln(["run", src, "--fn", "forward", "--weights", foreign]);
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/^kiln: --weights: .*"M\.w".* not a param/);
  });
});
