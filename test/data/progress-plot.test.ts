// Progress bar lines (TTY redraws vs one line per update, throughput, ETA) and the SVG training plot.

import { describe, expect, test } from "vitest";
import { ProgressBar, formatDuration, formatRate } from "../../runtime/train/progress.js";
import { accuracyTicks, lineChartSvg, niceTicks, trainingPlotSvg } from "../../runtime/train/plot.js";

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

  test("TTY: every redraw fits the terminal's columns (a wrapped line cannot be redrawn with \\r)", () => {
    let t = 0;
    for (const columns of [80, 60, 40, 20]) {
      const out: string[] = [];
      const stream = { write: (s: string) => out.push(s), isTTY: true, columns };
      const bar = new ProgressBar({ total: 8000, label: "epoch 10/10", stream, now: () => t, minIntervalMs: 0 });
      for (let i = 1; i <= 4; i++) {
        t += 1000;
        bar.tick(2000, { loss: 0.123456, acc: 0.5 });
      }
      bar.finish();
      for (const s of out) expect(s.replace(/[\r\n]/g, "").length, `${columns} columns: ${JSON.stringify(s)}`).toBeLessThan(columns);
      expect(out.at(-1)).toContain("epoch 10/10");
    }
    // Wide enough: the full line with its default 24-character bar, as before.
    const wide = new ProgressBar({ total: 10, stream: { write: () => {}, isTTY: true, columns: 200 }, now: () => 0 });
    expect(wide.render()).toContain(`[${"-".repeat(24)}]`);
  });

  test("a log (not a TTY) gets whole lines whatever its columns", () => {
    const { out, stream } = sink(false);
    const bar = new ProgressBar({ total: 10, label: "epoch 1/1", stream: { ...stream, columns: 20 }, now: () => 0 });
    bar.finish({ loss: 1 });
    expect(out[0]).toContain("loss 1.0000 |");
    expect(out[0]!.endsWith("\n")).toBe(true);
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
    for (const s of ["train loss", "train accuracy", "held-out accuracy", ">epoch<", ">loss<", ">accuracy<"]) expect(svg).toContain(s);
    const valPath = svg.split("\n").filter((l) => l.startsWith("<path"))[2]!;
    expect(valPath.match(/M/g)!.length).toBe(2); // the NaN breaks the line
    expect(() => lineChartSvg([{ name: "a", values: [1, 2], x: [1] }])).toThrow(/2 values but 1 x positions/);
  });

  test("the accuracy axis fits the values: 93.8% -> 96.4% spans the plot instead of a flat line at the top", () => {
    const ticks = accuracyTicks([0.938, 0.951, 0.964]);
    expect(ticks[0]).toBeGreaterThanOrEqual(0.9);
    expect(ticks[0]).toBeLessThanOrEqual(0.938);
    expect(ticks.at(-1)).toBeGreaterThanOrEqual(0.964);
    expect(ticks.at(-1)).toBeLessThanOrEqual(1);
    expect(accuracyTicks([0.2, 0.99]).every((t) => t >= 0 && t <= 1)).toBe(true);
    // Drawn: the first and last points of a held-out curve lie near the bottom and the top of the plot (y 36..352).
    const svg = trainingPlotSvg({ loss: [0.5, 0.3, 0.2], valAccuracy: [0.938, 0.951, 0.964] });
    const acc = svg.split("\n").filter((l) => l.startsWith("<path"))[1]!;
    const ys = [...acc.matchAll(/[ML][\d.]+,([\d.]+)/g)].map((m) => Number(m[1]));
    expect(ys[0]! - ys[2]!).toBeGreaterThan(200);
    expect(svg).toContain("held-out accuracy");
    expect(svg).not.toContain("train accuracy");
  });
});
