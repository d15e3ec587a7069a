// Progress bar lines (TTY redraws vs one line per update, throughput, ETA) and the SVG training plot.

import { describe, expect, test } from "vitest";
import { ProgressBar, formatDuration, formatRate } from "../../runtime/train/progress.js";
import { lineChartSvg, niceTicks, trainingPlotSvg } from "../../runtime/train/plot.js";

function sink(isTTY: boolean) {
  const out: string[] = [];
  return { out, stream: { write: (s: string) => out.push(s), isTTY } };
}

describe("ProgressBar", () => {
  test("non-TTY: one line per update with metrics, throughput and ETA", () => {
    let t = 0;
    const { out, stream } = sink(false);
    const bar = new ProgressBar({ total: 1000, label: "epoch 1/3", width: 10, stream, now: () => t });
    t = 2000;
    bar.tick(500, { loss: 0.5 });
    t = 4000;
    bar.tick(500, { loss: 0.25, acc: 0.9 });
    expect(out).toEqual([
      "epoch 1/3 [#####-----]  50% 500/1000 loss 0.5000 | 250 samples/s | ETA 0:02\n",
      "epoch 1/3 [##########] 100% 1000/1000 loss 0.2500 acc 0.9000 | 250 samples/s | in 0:04\n",
    ]);
  });

  test("TTY: \\r redraws, throttled, padded over longer lines, newline at finish", () => {
    let t = 0;
    const { out, stream } = sink(true);
    const bar = new ProgressBar({ total: 100, width: 4, stream, now: () => t, minIntervalMs: 100 });
    t = 1000;
    bar.update(10, { loss: 12.5 });
    t = 1050;
    bar.update(20); // within 100 ms: skipped
    t = 1200;
    bar.update(30, { loss: 1 });
    const line = bar.finish();
    expect(out.length).toBe(3);
    expect(out.every((s) => s.startsWith("\r"))).toBe(true);
    expect(out[2]!.endsWith("\n")).toBe(true);
    expect(line).toContain("30/100");
    expect(out[1]!.length).toBe(out[0]!.length);
  });

  test("formatting helpers", () => {
    expect([formatDuration(5), formatDuration(75), formatDuration(3725), formatDuration(NaN)]).toEqual(["0:05", "1:15", "1:02:05", "--:--"]);
    expect([formatRate(12.345), formatRate(987), formatRate(12345), formatRate(4.5e6)]).toEqual(["12.3", "987", "12.3k", "4.50M"]);
  });
});

describe("SVG plots", () => {
  test("nice ticks cover the range in 1/2/5 steps", () => {
    expect(niceTicks(0, 1)).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
    expect(niceTicks(0.13, 2.31)).toEqual([0, 0.5, 1, 1.5, 2, 2.5]);
    expect(niceTicks(3, 3).length).toBeGreaterThan(1);
  });

  test("training plot: well-formed SVG with axes, both curves, a legend and escaped text", () => {
    const svg = trainingPlotSvg({ loss: [2.3, 1.1, 0.6, 0.4], accuracy: [0.3, 0.7, 0.85, 0.9], valAccuracy: [0.25, 0.6, NaN, 0.88], title: "MNIST <split 8000/2000>" });
    expect(svg.startsWith("<svg")).toBe(true);
    expect(svg.trim().endsWith("</svg>")).toBe(true);
    expect(svg).toContain("MNIST &lt;split 8000/2000&gt;");
    expect(svg.match(/<path /g)!.length).toBe(3);
    for (const s of ["train loss", "train accuracy", "val accuracy", ">epoch<", ">loss<", ">accuracy<"]) expect(svg).toContain(s);
    const valPath = svg.split("\n").filter((l) => l.startsWith("<path"))[2]!;
    expect(valPath.match(/M/g)!.length).toBe(2); // the NaN breaks the line
    expect(() => lineChartSvg([{ name: "a", values: [1, 2], x: [1] }])).toThrow(/2 values but 1 x positions/);
  });
});
