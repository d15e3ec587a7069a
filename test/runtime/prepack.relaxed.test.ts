// Prepacked matmul weights in the relaxed-SIMD build (6-row microkernel, same packed layout), 1 and 2 threads.
import { describe, it } from "vitest";
import { built, expectPackedFollowParams } from "./prepack-cases.js";

describe("prepacked matmul weights, relaxed SIMD", () => {
  it("results follow setParam and training steps", () => expectPackedFollowParams({ relaxedWasm: built.wasmRelaxed }, "relaxed"));
  it("2 threads: results follow setParam and training steps", () => expectPackedFollowParams({ relaxedWasm: built.wasmRelaxed, threads: 2 }, "relaxed"));
});
