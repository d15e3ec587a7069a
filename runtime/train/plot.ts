// SVG line charts of training curves (loss and accuracy per step or epoch), built as a string with no
// dependencies: axes with "nice" ticks, loss on the left axis, accuracy on a right axis scaled to its values
// (within [0, 1]: a fixed 0-1 axis flattens 93.8% -> 96.4% into a line), a legend.

import { KilnError } from "../errors.js";
import { isNode } from "../io.js";

export interface Series {
  name: string;
  /** y per x = 1, 2, 3, … (or x given by `x`); NaN leaves a gap. */
  values: readonly number[];
  x?: readonly number[];
  /** "left" (default) or "right" (accuracy: ticks fitted to the values, kept within [0, 1]). */
  axis?: "left" | "right";
  color?: string;
  dashed?: boolean;
}

export interface ChartOptions {
  title?: string;
  xLabel?: string;
  yLabel?: string;
  y2Label?: string;
  width?: number;
  height?: number;
}

export interface TrainingHistory {
  loss?: readonly number[];
  /** Accuracy on the training data itself. */
  accuracy?: readonly number[];
  /** Loss and accuracy on held-out data (what `kiln train` measures after each epoch): "held-out …" in the legend. */
  valLoss?: readonly number[];
  valAccuracy?: readonly number[];
  /** What one value is (default "epoch"). */
  per?: "step" | "epoch";
  title?: string;
}

// Hidden from bundlers, which would otherwise try to resolve the Node builtin for a browser build.
const nodeImport = (spec: string): Promise<unknown> => import(/* @vite-ignore */ /* webpackIgnore: true */ spec);

const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"];
const MARGIN = { top: 36, right: 64, bottom: 48, left: 64 };

/** An SVG line chart of the series. */
export function lineChartSvg(series: readonly Series[], opts: ChartOptions = {}): string {
  const W = opts.width ?? 640;
  const H = opts.height ?? 400;
  const plot = { x: MARGIN.left, y: MARGIN.top, w: W - MARGIN.left - MARGIN.right, h: H - MARGIN.top - MARGIN.bottom };
  if (plot.w <= 0 || plot.h <= 0) throw new KilnError(`lineChartSvg: ${W}x${H} is too small for a chart`, { code: "bad_option" });
  const pts = series.map((s) => points(s));
  const xs = pts.flat().filter(isPoint).map((p) => p[0]);
  const xTicks = niceTicks(xs.length ? Math.min(...xs) : 0, xs.length ? Math.max(...xs) : 1);
  const left = pts.filter((_, i) => series[i]!.axis !== "right").flat().filter(isPoint).map((p) => p[1]);
  const yTicks = niceTicks(left.length ? Math.min(...left) : 0, left.length ? Math.max(...left) : 1);
  const hasRight = series.some((s) => s.axis === "right");
  const right = pts.filter((_, i) => series[i]!.axis === "right").flat().filter(isPoint).map((p) => p[1]);
  const y2Ticks = accuracyTicks(right);
  const sx = scale(xTicks, plot.x, plot.x + plot.w);
  const sy = scale(yTicks, plot.y + plot.h, plot.y);
  const sy2 = scale(y2Ticks, plot.y + plot.h, plot.y);
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
  ];
  if (opts.title) out.push(text(W / 2, 20, opts.title, "middle", 'font-size="14" font-weight="bold"'));
  out.push(...xAxis(xTicks, sx, plot, opts.xLabel ?? "step"));
  out.push(...yAxis(yTicks, sy, plot, "left", opts.yLabel ?? (hasRight ? "loss" : "")));
  const rightNames = series.filter((s) => s.axis === "right").map((s) => s.name);
  const y2Label = opts.y2Label ?? (rightNames.length === 1 && rightNames[0] === "held-out accuracy" ? "held-out accuracy" : "accuracy");
  if (hasRight) out.push(...yAxis(y2Ticks, sy2, plot, "right", y2Label));
  series.forEach((s, i) => {
    const color = s.color ?? COLORS[i % COLORS.length]!;
    const y = s.axis === "right" ? sy2 : sy;
    const d = pathData(pts[i]!, sx, y);
    if (d) out.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="1.75"${s.dashed ? ' stroke-dasharray="5 3"' : ""}/>`);
  });
  out.push(...legend(series, plot));
  out.push("</svg>");
  return out.join("\n") + "\n";
}

/** Loss (left axis) and accuracy (right axis) of a training run, validation curves dashed. */
export function trainingPlotSvg(h: TrainingHistory, opts: ChartOptions = {}): string {
  const series: Series[] = [];
  if (h.loss) series.push({ name: "train loss", values: h.loss, color: COLORS[0]! });
  // Held-out curves are dashed beside their training counterpart, solid when they are the only one of their kind.
  if (h.valLoss) series.push({ name: "held-out loss", values: h.valLoss, color: COLORS[0]!, dashed: !!h.loss });
  if (h.accuracy) series.push({ name: "train accuracy", values: h.accuracy, axis: "right", color: COLORS[1]! });
  if (h.valAccuracy) series.push({ name: "held-out accuracy", values: h.valAccuracy, axis: "right", color: COLORS[1]!, dashed: !!h.accuracy });
  return lineChartSvg(series, { title: h.title, xLabel: h.per ?? "epoch", ...opts });
}

/** Writes an SVG string to a file (Node only). */
export async function writeSvg(path: string, svg: string): Promise<void> {
  if (!isNode()) throw new KilnError("writeSvg: writing files needs Node", { code: "bad_option" });
  const fs = (await nodeImport("node:fs/promises")) as typeof import("node:fs/promises");
  await fs.writeFile(path, svg);
}

/** Tick values at 1/2/5 × 10^k steps covering [lo, hi] (about 5 ticks). */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [0, 1];
  if (hi - lo < 1e-12 * Math.max(1, Math.abs(hi))) {
    lo -= lo === 0 ? 1 : Math.abs(lo) * 0.1;
    hi += hi === 0 ? 1 : Math.abs(hi) * 0.1;
  }
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw)!;
  const first = Math.floor(lo / step) * step;
  const ticks: number[] = [];
  for (let v = first; v <= hi + step * 1e-9; v += step) ticks.push(Number(v.toPrecision(12)));
  if (ticks[ticks.length - 1]! < hi) ticks.push(Number((ticks[ticks.length - 1]! + step).toPrecision(12)));
  return ticks;
}

/** Right-axis ticks for accuracies: fitted to the values with a little room, never below 0 or above 1. */
export function accuracyTicks(values: readonly number[]): number[] {
  if (values.length === 0) return [0, 0.2, 0.4, 0.6, 0.8, 1];
  const lo = Math.min(...values), hi = Math.max(...values);
  const pad = Math.max((hi - lo) * 0.1, 0.005);
  const ticks = niceTicks(Math.max(0, lo - pad), Math.min(1, hi + pad));
  const inside = ticks.filter((t) => t >= 0 && t <= 1);
  return inside.length >= 2 ? inside : [0, 1];
}

type Point = [number, number];

function isPoint(p: Point | null): p is Point {
  return p !== null;
}

/** The series' points; null where a value is missing (NaN or infinite). */
function points(s: Series): Array<Point | null> {
  if (s.x && s.x.length !== s.values.length) {
    throw new KilnError(`lineChartSvg: series "${s.name}" has ${s.values.length} values but ${s.x.length} x positions`, { code: "input_shape", tensor: s.name });
  }
  return s.values.map((v, i) => {
    const x = s.x ? s.x[i]! : i + 1;
    return Number.isFinite(x) && Number.isFinite(v) ? [x, v] : null;
  });
}

function scale(ticks: number[], from: number, to: number): (v: number) => number {
  const lo = ticks[0]!;
  const hi = ticks[ticks.length - 1]!;
  return (v) => from + ((v - lo) / (hi - lo || 1)) * (to - from);
}

// Gaps (NaN) break the line: a new "M" after each missing value.
function pathData(pts: Array<Point | null>, sx: (v: number) => number, sy: (v: number) => number): string {
  const parts: string[] = [];
  let pen = "M";
  for (const p of pts) {
    if (p === null) {
      pen = "M";
      continue;
    }
    parts.push(`${pen}${fmt(sx(p[0]))},${fmt(sy(p[1]))}`);
    pen = "L";
  }
  return parts.join(" ");
}

function xAxis(ticks: number[], sx: (v: number) => number, p: Box, label: string): string[] {
  const y = p.y + p.h;
  const out = [`<line x1="${p.x}" y1="${y}" x2="${p.x + p.w}" y2="${y}" stroke="black"/>`];
  for (const t of ticks) {
    const x = fmt(sx(t));
    out.push(`<line x1="${x}" y1="${y}" x2="${x}" y2="${y + 5}" stroke="black"/>`, text(sx(t), y + 18, tickLabel(t), "middle"));
  }
  out.push(text(p.x + p.w / 2, y + 38, label, "middle"));
  return out;
}

function yAxis(ticks: number[], sy: (v: number) => number, p: Box, side: "left" | "right", label: string): string[] {
  const x = side === "left" ? p.x : p.x + p.w;
  const dir = side === "left" ? -1 : 1;
  const out = [`<line x1="${x}" y1="${p.y}" x2="${x}" y2="${p.y + p.h}" stroke="black"/>`];
  for (const t of ticks) {
    const y = fmt(sy(t));
    out.push(`<line x1="${x}" y1="${y}" x2="${x + 5 * dir}" y2="${y}" stroke="black"/>`);
    if (side === "left") out.push(`<line x1="${p.x}" y1="${y}" x2="${p.x + p.w}" y2="${y}" stroke="#e0e0e0"/>`);
    out.push(text(x + 8 * dir, sy(t) + 4, tickLabel(t), side === "left" ? "end" : "start"));
  }
  if (label) {
    const lx = side === "left" ? 16 : p.x + p.w + MARGIN.right - 12;
    out.push(`<text x="${lx}" y="${fmt(p.y + p.h / 2)}" text-anchor="middle" transform="rotate(-90 ${lx} ${fmt(p.y + p.h / 2)})">${escapeXml(label)}</text>`);
  }
  return out;
}

function legend(series: readonly Series[], p: Box): string[] {
  // A light backing, so curves that pass under the legend do not run through its words.
  const out: string[] = series.length ? [`<rect x="${p.x + p.w - 136}" y="${p.y + 2}" width="132" height="${series.length * 16 + 6}" fill="white" fill-opacity="0.85"/>`] : [];
  series.forEach((s, i) => {
    const y = p.y + 14 + i * 16;
    const x = p.x + p.w - 130;
    const color = s.color ?? COLORS[i % COLORS.length]!;
    out.push(`<line x1="${x}" y1="${y - 4}" x2="${x + 20}" y2="${y - 4}" stroke="${color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="5 3"' : ""}/>`);
    out.push(text(x + 26, y, s.name, "start"));
  });
  return out;
}

interface Box {
  x: number;
  y: number;
  w: number;
  h: number;
}

function text(x: number, y: number, s: string, anchor: string, extra = ""): string {
  return `<text x="${fmt(x)}" y="${fmt(y)}" text-anchor="${anchor}"${extra ? " " + extra : ""}>${escapeXml(s)}</text>`;
}

function tickLabel(v: number): string {
  const a = Math.abs(v);
  return a !== 0 && (a < 1e-3 || a >= 1e6) ? v.toExponential(1) : String(Number(v.toPrecision(6)));
}

function fmt(v: number): string {
  return String(Math.round(v * 100) / 100);
}

export function escapeXml(s: string): string {
  return s.replace(/[<>&"']/g, (c) => ({ "<": "&lt;", ">": "&gt;", "&": "&amp;", '"': "&quot;", "'": "&apos;" })[c]!);
}
