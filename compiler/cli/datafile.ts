// CLI helper for `kiln train --data FILE`: a user's own table or arrays (CSV with a label column, or NPY/IDX
// features with a --labels file) shaped to the train block's input, split into training rows and held-out rows.

import { KilnError } from "../../runtime/errors.js";
import { Tensor } from "../../runtime/tensor.js";
import { DataLoader, readCsv, readIdx, readNpy, Subset, TensorDataset, trainValSplit } from "../../runtime/data/index.js";
import { UsageError } from "./common.js";

export type DataFormat = "csv" | "npy" | "idx";

/** The format a --data path names by its extension (before an optional .gz), or undefined. */
export function dataFormat(path: string): DataFormat | undefined {
  const p = path.toLowerCase().replace(/\.gz$/, "");
  if (p.endsWith(".csv")) return "csv";
  if (p.endsWith(".npy")) return "npy";
  if (p.endsWith(".idx") || /\.idx\d-ubyte$/.test(p) || p.endsWith("-ubyte")) return "idx";
  return undefined;
}

export interface FileDataOptions {
  /** NPY/IDX: the file of integer labels, one per row of the data. */
  labels?: string;
  /** CSV: the label column's header name or 0-based index (default: the column "label", else the last). */
  labelColumn?: string;
  /** Fraction of the rows held out to measure accuracy (chosen at random with the seed). */
  valSplit: number;
  batch: number;
  seed: number;
  /** The train step's feature input shape, e.g. [B, 4] or [B, 1, 28, 28] (the first dim is the batch). */
  shape: readonly (number | string)[];
  /** The number of classes (the forward's last output dim) when known: labels are checked against it. */
  classes?: number;
}

export interface FileData {
  train: DataLoader;
  test?: DataLoader;
  trainCount: number;
  testCount: number;
  /** "150 rows of 4 features", for the headline. */
  description: string;
  /** Where the labels came from: `column "species"`, or the --labels file. */
  labelsFrom: string;
}

async function readTables(path: string, format: DataFormat, o: FileDataOptions): Promise<{ x: Tensor; y: Tensor; what: string; labelsFrom: string }> {
  if (format === "csv") {
    const t = await readCsv(path, {});
    const width = t.data.shape[1] ?? 0;
    const col = labelColumnIndex(path, t.columns, width, o.labelColumn);
    const n = t.data.shape[0]!;
    const x = new Tensor("f32", [n, width - 1]);
    const y = new Tensor("i32", [n]);
    for (let r = 0; r < n; r++) {
      for (let c = 0, k = 0; c < width; c++) {
        const v = t.data.data[r * width + c] as number;
        if (c !== col) x.data[r * (width - 1) + k++] = v;
        else if (!Number.isInteger(v)) throw new KilnError(`kiln: --data ${path}: row ${r + 1}: label ${v} in column ${columnName(t.columns, col)} is not an integer class`);
        else y.data[r] = v;
      }
    }
    return { x, y, what: `${n} rows of ${width - 1} features`, labelsFrom: `column ${columnName(t.columns, col)}` };
  }
  if (!o.labels) throw new UsageError(`--data ${path} holds features only: name the labels with --labels FILE (.npy or .idx, one integer per row)`);
  const read = (p: string) => (format === "npy" ? readNpy(p) : readIdx(p));
  const x = await read(path);
  const labelFormat = dataFormat(o.labels);
  if (labelFormat !== "npy" && labelFormat !== "idx") throw new UsageError(`--labels ${o.labels} must be a .npy or .idx file`);
  const y = await (labelFormat === "npy" ? readNpy(o.labels) : readIdx(o.labels));
  return { x, y, what: `${x.shape[0]} samples of [${x.shape.slice(1).join(", ")}] ${x.dtype}`, labelsFrom: o.labels };
}

function columnName(columns: string[] | null, i: number): string {
  return columns ? `"${columns[i]}"` : String(i);
}

function labelColumnIndex(path: string, columns: string[] | null, width: number, given?: string): number {
  if (width < 2) throw new KilnError(`kiln: --data ${path}: needs at least two columns (features and a label), found ${width}`);
  if (given === undefined) {
    const i = columns?.indexOf("label") ?? -1;
    return i >= 0 ? i : width - 1;
  }
  const byName = columns?.indexOf(given) ?? -1;
  if (byName >= 0) return byName;
  if (/^\d+$/.test(given) && Number(given) < width) return Number(given);
  const have = columns ? `columns ${columns.map((c) => JSON.stringify(c)).join(", ")}` : `${width} unnamed columns (give a 0-based index)`;
  throw new UsageError(`--label-column ${given}: ${path} has no such column (it has ${have})`);
}

/** Features as f32: u8 pixels scaled to [0, 1] (as torchvision's ToTensor), other dtypes converted as they are. */
function asF32(x: Tensor): { t: Tensor; note: string } {
  if (x.dtype === "f32") return { t: x, note: "" };
  const scale = x.dtype === "u8" ? 1 / 255 : 1;
  const data = new Float32Array(x.size);
  for (let i = 0; i < data.length; i++) data[i] = (x.data[i] as number) * scale;
  return { t: new Tensor("f32", [...x.shape], data), note: x.dtype === "u8" ? " (u8 scaled to [0, 1])" : ` (${x.dtype} read as f32)` };
}

function asLabels(y: Tensor, path: string): Tensor<"i32"> {
  const n = y.shape[0] ?? 0;
  if (y.rank !== 1 && !(y.rank === 2 && y.shape[1] === 1)) throw new KilnError(`kiln: ${path}: labels must be one integer per row ([N] or [N, 1]); the file holds [${y.shape.join(", ")}]`);
  if (y.dtype === "f32" || y.dtype === "f64" || y.dtype === "f16" || y.dtype === "bf16") {
    for (let i = 0; i < n; i++) if (!Number.isInteger(y.data[i])) throw new KilnError(`kiln: ${path}: label ${i} is ${y.data[i]}, not an integer class`);
  }
  return new Tensor("i32", [n], Int32Array.from({ length: n }, (_, i) => Number(y.data[i])));
}

export async function fileLoaders(path: string, format: DataFormat, o: FileDataOptions): Promise<FileData> {
  const raw = await readTables(path, format, o);
  const labelsFile = format === "csv" ? path : o.labels!;
  const y = asLabels(raw.y, labelsFile);
  const { t: x, note } = asF32(raw.x);
  const n = x.shape[0] ?? 0;
  if (y.shape[0] !== n) throw new KilnError(`kiln: --data ${path} has ${n} rows but --labels ${labelsFile} has ${y.shape[0]} labels`);
  const per = x.shape.slice(1).reduce((a, b) => a * b, 1);
  const want = o.shape.slice(1);
  const wantPer = want.reduce<number>((a, d) => a * (typeof d === "number" ? d : NaN), 1);
  if (per !== wantPer) {
    throw new KilnError(`kiln: --data ${path}: each sample has ${per} values ([${x.shape.slice(1).join(", ")}]) but the train block's input takes [${want.join(", ")}] (${Number.isNaN(wantPer) ? "a symbolic size" : wantPer} values)`);
  }
  if (o.classes !== undefined) {
    for (let i = 0; i < n; i++) {
      const c = y.data[i]!;
      if (c < 0 || c >= o.classes) throw new KilnError(`kiln: ${labelsFile}: label ${c} (row ${i + 1}) is outside [0, ${o.classes}): the model has ${o.classes} classes`);
    }
  }
  const shaped = new Tensor("f32", [n, ...(want as number[])], x.data as Float32Array);
  const all = new TensorDataset({ x: shaped, label: y });
  const split = trainValSplit(n, { valFraction: o.valSplit, seed: o.seed });
  const trainCount = split.train.length;
  if (trainCount < o.batch) throw new UsageError(`--batch ${o.batch} is more than the ${trainCount} training rows of ${path}; use a smaller --batch`);
  const train = new DataLoader(new Subset(all, split.train), { batchSize: o.batch, shuffle: true, seed: o.seed, dropLast: true });
  const test = split.val.length ? new DataLoader(new Subset(all, split.val), { batchSize: Math.min(500, split.val.length), shuffle: false }) : undefined;
  return { train, test, trainCount, testCount: split.val.length, description: `${raw.what}${note}`, labelsFrom: raw.labelsFrom };
}
