// Every ```sh and ```ts block of README.md and docs/*.md runs, in order, per file, in a scratch folder (so they
// cannot rot): `npx kiln` lines run bin/kiln.js with small budgets (--epochs 1, --steps 2 at most), `node` and
// `npx vite build` lines run as written, `cd` into a folder of the repository works on a copy of its tracked
// files, and ts blocks are transpiled and run by Node there. A block after `<!-- doc-test: illustrative -->` is
// only shown (a handful at most); one after `<!-- doc-test: webgpu -->` runs where a WebGPU adapter is found; a
// block of any language after `<!-- doc-test: same-as FILE -->` must appear word for word in FILE.
import { describe, expect, it } from "vitest";
import { spawnSync, execFileSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import ts from "typescript";

const ROOT = resolve(".");
const FILES = ["README.md", ...readdirSync("docs").filter((f) => f.endsWith(".md")).sort().map((f) => `docs/${f}`)];
const MARKERS = ["illustrative", "webgpu", "same-as"] as const;
type Marker = (typeof MARKERS)[number];
/** Commands a reader runs once to set up; the test suite stands for them (npm test runs this file). */
const SETUP = ["npm install", "npm test", "npm run build", "npm run docs"];

interface Block { file: string; line: number; lang: string; text: string; marker?: Marker; source?: string }

function codeBlocks(file: string): Block[] {
  const lines = readFileSync(file, "utf8").split("\n");
  const out: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const m = /^```(\w*)\s*$/.exec(lines[i]!);
    if (!m) continue;
    let prev = i - 1;
    while (prev >= 0 && lines[prev]!.trim() === "") prev--;
    const [, mark, source] = /^<!-- doc-test: (\S+)(?: (\S+))? -->$/.exec(lines[prev]?.trim() ?? "") ?? [];
    if (mark !== undefined && !(MARKERS as readonly string[]).includes(mark)) throw new Error(`${file}:${prev + 1}: unknown doc-test marker '${mark}' (known: ${MARKERS.join(", ")})`);
    const start = i;
    const body: string[] = [];
    while (++i < lines.length && !/^```\s*$/.test(lines[i]!)) body.push(lines[i]!);
    if (m[1] !== "sh" && m[1] !== "ts" && mark !== "same-as") continue;
    out.push({ file, line: start + 1, lang: m[1]!, text: body.join("\n"), ...(mark ? { marker: mark as Marker } : {}), ...(source ? { source } : {}) });
  }
  return out;
}

/** Shell lines: continuations joined, comments dropped, `a && b` split. */
function commands(text: string): string[] {
  return text.replace(/\\\n\s*/g, " ").split("\n")
    .map((l) => l.replace(/(^|\s)#.*$/, "").trim())
    .filter((l) => l.length > 0)
    .flatMap((l) => l.split("&&").map((c) => c.trim()));
}

/** Training budgets for the test: one epoch, two steps. */
function budget(args: string[]): string[] {
  return args.map((a, i) => (args[i - 1] === "--epochs" ? "1" : args[i - 1] === "--steps" ? String(Math.min(2, Number(a))) : a));
}

/** Thrown by a command that cannot run here (and need not): the rest of its block depends on it. */
class SkipRest extends Error {}

class Sandbox {
  readonly root = mkdtempSync(join(tmpdir(), "kiln-docs-"));
  cwd = this.root;
  constructor() {
    for (const d of ["dsl-examples", "data"]) symlinkSync(join(ROOT, d), join(this.root, d));
    // node_modules: what a user's project has installed: Kiln itself (generated modules import
    // @kiln-ml/kiln/runtime), webgpu for Node, vite for the tutorial's app.
    mkdirSync(join(this.root, "node_modules", "@kiln-ml"), { recursive: true });
    symlinkSync(ROOT, join(this.root, "node_modules", "@kiln-ml", "kiln"));
    for (const e of readdirSync(join(ROOT, "node_modules"))) {
      if (e !== "@kiln-ml" && !e.startsWith(".")) symlinkSync(join(ROOT, "node_modules", e), join(this.root, "node_modules", e));
    }
  }

  run(file: string, cmd: string, where: string): void {
    const args = cmd.split(/\s+/).map((a) => a.replace(/^"(.*)"$/, "$1").replace(/^'(.*)'$/, "$1"));
    if (SETUP.some((s) => cmd === s || cmd.startsWith(s + " "))) return;
    if (args[0] === "cd") return this.cd(args[1]!, where);
    if (args[0] === "npx" && args[1] === "kiln") return this.spawn(where, [join(ROOT, "bin/kiln.js"), ...budget(args.slice(2))]);
    if (args[0] === "npx" && args[1] === "vite" && args[2] === "build") return this.spawn(where, [join(ROOT, "node_modules/vite/bin/vite.js"), ...args.slice(2)]);
    if (args[0] === "node") return this.spawn(where, args.slice(1));
    if (args[0] === "torchrun") return this.torchrun(where, args.slice(1));
    throw new Error(`${where}: the doc test does not know how to run \`${cmd}\` (${file}); mark the block <!-- doc-test: illustrative --> or teach test/docs/code-blocks.test.ts`);
  }

  /** Into a folder of the repository: a copy of its tracked (and new, not ignored) files, so nothing is written there. */
  cd(dir: string, where: string): void {
    const target = resolve(this.cwd, dir);
    const inRepo = relative(this.root, target);
    const real = existsSync(target) ? realpathSync(target) : target;
    if (!inRepo.startsWith("..") && real.startsWith(ROOT + "/")) {
      const rel = relative(ROOT, real);
      const copy = join(this.root, ".copies", rel);
      if (!existsSync(copy)) {
        const files = execFileSync("git", ["ls-files", "--cached", "--others", "--exclude-standard", rel], { cwd: ROOT, encoding: "utf8" }).split("\n").filter(Boolean);
        for (const f of files) {
          mkdirSync(dirname(join(this.root, ".copies", f)), { recursive: true });
          cpSync(join(ROOT, f), join(this.root, ".copies", f));
        }
      }
      this.cwd = copy;
    } else if (existsSync(target)) this.cwd = target;
    else throw new Error(`${where}: cd ${dir}: no such folder`);
  }

  /** torchrun as `python3 -m torch.distributed.run` (Debian's python3-torch has no torchrun script); skipped without torch unless CI requires it. */
  torchrun(where: string, args: string[]): void {
    const probe = spawnSync("/usr/bin/python3", ["-c", "import torch"], { encoding: "utf8" });
    if (probe.status !== 0) {
      if (process.env.KILN_REQUIRE_PYTORCH === "1") throw new Error(`${where}: torchrun needs python3-torch (KILN_REQUIRE_PYTORCH=1)`);
      console.warn(`[docs] ${where}: torchrun not run (no python3-torch); later lines of the block are skipped`);
      throw new SkipRest();
    }
    const r = spawnSync("/usr/bin/python3", ["-m", "torch.distributed.run", ...budget(args)], { cwd: this.cwd, encoding: "utf8", timeout: 300_000 });
    if (r.status !== 0) throw new Error(`${where}: \`torchrun ${args.join(" ")}\` exited ${r.status ?? r.signal}\n${r.stdout}\n${r.stderr}`);
  }

  spawn(where: string, args: string[]): void {
    const r = spawnSync(process.execPath, args, { cwd: this.cwd, encoding: "utf8", timeout: 300_000, env: { ...process.env, NO_COLOR: "1" } });
    if (r.status !== 0) throw new Error(`${where}: \`node ${args.map((a) => relative(ROOT, a).startsWith("..") ? a : relative(ROOT, a)).join(" ")}\` (in ${this.cwd}) exited ${r.status ?? r.signal}\n${r.stdout}\n${r.stderr}`);
  }

  ts(block: Block, where: string): void {
    const js = ts.transpileModule(block.text, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } }).outputText;
    const file = join(this.cwd, `.doc-block-${block.line}.mjs`);
    writeFileSync(file, js);
    this.spawn(where, [file]);
  }
}

let adapter: Promise<string | undefined> | undefined;
/** Why WebGPU blocks cannot run here, or undefined when an adapter is found. */
function noWebGPU(): Promise<string | undefined> {
  adapter ??= import("../webgpu/helpers.js").then(async ({ webgpuEnv }) => {
    const env = await webgpuEnv("doc blocks marked webgpu");
    env.h?.device.destroy();
    return env.reason;
  });
  return adapter;
}

describe("code blocks in README.md and docs/", () => {
  const all = FILES.flatMap((f) => codeBlocks(f));

  it("illustrative blocks stay few, and every block is sh or ts with a known marker", () => {
    const shown = all.filter((b) => b.marker === "illustrative");
    expect(shown.map((b) => `${b.file}:${b.line}`).length, shown.map((b) => `${b.file}:${b.line}`).join(", ")).toBeLessThanOrEqual(3);
    expect(all.length).toBeGreaterThan(8);
  });

  for (const file of FILES) {
    const blocks = codeBlocks(file).filter((b) => b.marker !== "illustrative");
    it.skipIf(blocks.length === 0)(`${file}: ${blocks.length} block(s) run`, async () => {
      const box = new Sandbox();
      for (const b of blocks) {
        const where = `${b.file}:${b.line}`;
        if (b.marker === "webgpu") {
          const why = await noWebGPU();
          if (why) {
            console.warn(`[docs] ${where}: not run (no WebGPU adapter: ${why})`);
            continue;
          }
        }
        if (b.marker === "same-as") expect(readFileSync(b.source!, "utf8"), `${where}: the block is not word for word in ${b.source}`).toContain(b.text);
        else if (b.lang === "ts") box.ts(b, where);
        else {
          try {
            for (const c of commands(b.text)) box.run(file, c, where);
          } catch (e) {
            if (!(e instanceof SkipRest)) throw e;
          }
        }
      }
    }, 900_000);
  }
});
