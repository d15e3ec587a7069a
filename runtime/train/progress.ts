// Terminal progress bar for training loops: one line per epoch with a bar, metrics (loss, …), throughput in
// samples/s and an ETA. On a TTY it redraws the line with "\r", never wider than the terminal (a line that wraps
// cannot be redrawn); elsewhere (logs, CI, browsers) it prints a line per update.

import { KilnError } from "../errors.js";
import { isNode } from "../io.js";

/** Where lines go: process.stdout under Node, console.log elsewhere. */
export interface ProgressStream {
  write(s: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface ProgressOptions {
  /** Samples (or steps) in the epoch. */
  total: number;
  /** Line prefix, e.g. "epoch 3/10". */
  label?: string;
  /** Width of the bar in characters (default 24; narrower when the line would not fit `columns`). */
  width?: number;
  /** Terminal width the whole line must fit in (default: stream.columns on a TTY, else unlimited). */
  columns?: number;
  stream?: ProgressStream;
  /** Redraw in place (default: stream.isTTY). */
  tty?: boolean;
  /** On a TTY, skip redraws closer together than this (default 100 ms); the final line always prints. */
  minIntervalMs?: number;
  /** Off a TTY (a log), the least time between printed lines (default 0: a line per update). */
  logIntervalMs?: number;
  /** Unit of throughput (default "samples"). */
  unit?: string;
  /** Clock in ms (default performance.now / Date.now); tests pass a fake one. */
  now?: () => number;
}

export type Metrics = Record<string, number>;

export class ProgressBar {
  readonly total: number;
  readonly #o: Required<Omit<ProgressOptions, "stream" | "tty" | "columns">> & { stream: ProgressStream; tty: boolean; columns?: number };
  readonly #start: number;
  #done = 0;
  #metrics: Metrics = {};
  #lastDraw = -Infinity;
  #lastLen = 0;
  #finished = false;
  #lastLine = "";

  constructor(opts: ProgressOptions) {
    if (!Number.isFinite(opts.total) || opts.total < 0) throw new KilnError(`ProgressBar: total ${opts.total} is not a non-negative number`, { code: "bad_option" });
    const stream = opts.stream ?? defaultStream();
    this.total = opts.total;
    this.#o = {
      total: opts.total,
      label: opts.label ?? "",
      width: opts.width ?? 24,
      stream,
      tty: opts.tty ?? !!stream.isTTY,
      columns: opts.columns,
      minIntervalMs: opts.minIntervalMs ?? 100,
      logIntervalMs: opts.logIntervalMs ?? 0,
      unit: opts.unit ?? "samples",
      now: opts.now ?? defaultNow,
    };
    this.#start = this.#o.now();
  }

  /** Adds n completed samples and merges metrics (e.g. {loss}); redraws. */
  tick(n: number, metrics: Metrics = {}): void {
    this.update(this.#done + n, metrics);
  }

  /** Sets the completed count and merges metrics; redraws. */
  update(done: number, metrics: Metrics = {}): void {
    if (this.#finished) return;
    this.#done = Math.min(done, this.total);
    this.#metrics = { ...this.#metrics, ...metrics };
    const t = this.#o.now();
    const interval = this.#o.tty ? this.#o.minIntervalMs : this.#o.logIntervalMs;
    if (t - this.#lastDraw < interval && this.#done < this.total) return;
    this.#lastDraw = t;
    this.#draw(false);
  }

  /** Prints the final line (with a newline on a TTY) and returns it. */
  finish(metrics: Metrics = {}): string {
    if (this.#finished) return this.render();
    this.#metrics = { ...this.#metrics, ...metrics };
    this.#finished = true;
    return this.#draw(true);
  }

  /**
   * The current line: `label [#####-----]  45% 450/1000 loss 0.4321 | 1234 samples/s | ETA 0:05`. To fit the
   * terminal it narrows the bar (to 8), then drops the throughput, the metrics, the ETA and the bar, in that order.
   */
  render(): string {
    const { label, unit } = this.#o;
    const cols = this.#columns();
    const frac = this.total > 0 ? this.#done / this.total : 1;
    const elapsed = (this.#o.now() - this.#start) / 1000;
    const rate = elapsed > 0 ? this.#done / elapsed : 0;
    const metrics = Object.entries(this.#metrics).map(([k, v]) => `${k} ${formatMetric(v)}`).join(" ");
    const eta = this.#finished || this.#done >= this.total ? `in ${formatDuration(elapsed)}` : `ETA ${rate > 0 ? formatDuration((this.total - this.#done) / rate) : "--:--"}`;
    const count = `${(frac * 100).toFixed(0).padStart(3)}% ${this.#done}/${this.total}`;
    const line = (width: number, parts: { metrics: boolean; rate: boolean; eta: boolean }) => {
      const filled = Math.round(frac * width);
      const bar = width > 0 ? `[${"#".repeat(filled)}${"-".repeat(width - filled)}] ` : "";
      const head = `${label ? label + " " : ""}${bar}${count}${parts.metrics && metrics ? ` ${metrics}` : ""}`;
      return [head, ...(parts.rate ? [`${formatRate(rate)} ${unit}/s`] : []), ...(parts.eta ? [eta] : [])].join(" | ");
    };
    const all = { metrics: true, rate: true, eta: true };
    const full = line(this.#o.width, all);
    if (cols === undefined || full.length <= cols) return full;
    const fixed = line(0, all).length + 3; // "[" + "] " around the bar
    const width = Math.max(8, Math.min(this.#o.width, cols - fixed));
    for (const parts of [all, { metrics: true, rate: false, eta: true }, { metrics: false, rate: false, eta: true }, { metrics: false, rate: false, eta: false }]) {
      const l = line(width, parts);
      if (l.length <= cols) return l;
    }
    const bare = line(0, { metrics: false, rate: false, eta: false });
    return bare.length <= cols ? bare : bare.slice(0, cols);
  }

  /** The widest line that will not wrap: one less than the terminal, whose last column would move the cursor on. */
  #columns(): number | undefined {
    const c = this.#o.columns ?? (this.#o.tty ? this.#o.stream.columns : undefined);
    return c !== undefined && c > 1 ? c - 1 : undefined;
  }

  #draw(final: boolean): string {
    const line = this.render();
    const { stream, tty } = this.#o;
    if (tty) {
      // Pad over the previous line's tail instead of an ANSI erase, so plain terminals render it too.
      const room = this.#columns() ?? Infinity;
      stream.write("\r" + line + " ".repeat(Math.max(0, Math.min(this.#lastLen, room) - line.length)) + (final ? "\n" : ""));
      this.#lastLen = line.length;
    } else if (line !== this.#lastLine) {
      // In a log, finishing right after the last update would print the same line twice.
      stream.write(line + "\n");
    }
    this.#lastLine = line;
    return line;
  }
}

/** m:ss, or h:mm:ss from an hour on. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "--:--";
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}

/** 3 significant digits, with k/M suffixes: 987, 12.3k, 4.56M. */
export function formatRate(r: number): string {
  if (!Number.isFinite(r)) return "-";
  if (r >= 1e6) return `${(r / 1e6).toPrecision(3)}M`;
  if (r >= 1e3) return `${(r / 1e3).toPrecision(3)}k`;
  return r >= 100 ? r.toFixed(0) : r.toPrecision(3);
}

function formatMetric(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  return a !== 0 && (a < 1e-3 || a >= 1e5) ? v.toExponential(3) : v.toFixed(4);
}

function defaultNow(): number {
  return typeof performance !== "undefined" ? performance.now() : Date.now();
}

function defaultStream(): ProgressStream {
  if (isNode()) return process.stdout;
  // console.log appends its own newline.
  return { write: (s: string) => console.log(s.replace(/\n$/, "")), isTTY: false };
}
