// kiln import of torchvision's resnet18, mobilenet_v2 and squeezenet1_1 (random weights and BatchNorm statistics,
// 10 classes, exported by torch 1.13 at opset 13 by test/import/make_nets.py; resnet18_bn at opset 17 without
// constant folding, so BatchNormalization stays). Each model is imported and compiled once, then run at batch 1
// and 2 on 64x64 inputs; goldens: onnxruntime-node on the same inputs.
import { beforeAll, describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { closeness, lcg, python, pythonWith, tmp } from "../export/helpers.js";
import { importAndLoad, ortOutput } from "./helpers.js";

const HAVE_TORCH = pythonWith("kiln import (torchvision models)", ["torch", "torchvision", "onnx"]);
const SCRIPT = readFileSync(join(__dirname, "make_nets.py"), "utf8");

describe.skipIf(!HAVE_TORCH)("kiln import: torchvision models from torch.onnx.export", () => {
  const dir = tmp();
  const MODELS = [
    { name: "resnet18", expect: [/conv2d\(x, \w+, \w+, stride: 2, padding: 3\)/, /max_pool2d\(\w+, 3, stride: 2, padding: 1\)/, /mean\(\w+, axis: \[2, 3\], keepdims: true\)/] },
    { name: "resnet18_bn", expect: [/= batch_norm\(conv1_conv, bn1_weight, bn1_bias, bn1_running_mean, bn1_running_var, momentum: 0\.1, eps: 0\.00001\)/, /param layer1_0_bn2_weight: f32\[64\] = ones\(\)  \/\/ onnx: layer1\.0\.bn2\.weight/] },
    { name: "mobilenet_v2", expect: [/clamp\(\w+, 0\.0, 6\.0\)/, /groups: 32\)/] },
    { name: "squeezenet1_1", expect: [/concat\(\w+, \w+, axis: 1\)/, /max_pool2d\(\w+, 3, stride: 2\)/] },
  ];
  beforeAll(() => {
    python(SCRIPT, [dir, ...MODELS.map((m) => m.name)], { timeout: 300_000 });
  }, 300_000);

  for (const c of MODELS) {
    it(`${c.name}: the imported program matches onnxruntime-node at batch 1 and 2`, async () => {
      const m = await importAndLoad(dir, c.name);
      for (const re of c.expect) expect(m.source).toMatch(re);
      for (const batch of [1, 2]) {
        const shape = [batch, 3, 64, 64];
        const x = lcg(batch * 3 * 64 * 64, 20 + batch);
        const want = await ortOutput(join(dir, `${c.name}.onnx`), x, shape);
        const got = m.call(x, shape);
        expect(got.length).toBe(batch * 10);
        expect(closeness(got, want, 1e-4, 1e-5), `${got.slice(0, 4)} vs ${want.slice(0, 4)}`).toBeLessThanOrEqual(1);
      }
    }, 300_000);
  }
});
