// CSV reader for numeric tables: an optional header row, one record per line, every cell a number. Ragged rows
// and non-numeric cells are KilnErrors naming the file, the line and the column.

import { KilnError } from "../errors.js";
import { Tensor } from "../tensor.js";
import type { DType } from "../dtype.js";
import { readMaybeGzip, type Source, type SourceOptions } from "./source.js";

export interface CsvOptions extends SourceOptions {
  /** true: the first row names the columns; false: it is data; "auto" (default): a header when any cell of it is not a number. */
  header?: boolean | "auto";
  /** Cell separator (default ","). */
  delimiter?: string;
  /** dtype of `data` (default f32). */
  dtype?: "f32" | "f64" | "i32";
  /** Splits one column out as integer `labels` (i32): its header name or 0-based index. */
  labelColumn?: string | number;
}

export interface CsvTable {
  /** Column names from the header row (null when there is none); `labelColumn` is not among them. */
  columns: string[] | null;
  /** [rows, columns] */
  data: Tensor;
  /** [rows] i32, when `labelColumn` was given. */
  labels?: Tensor<"i32">;
  /** Name of the label column (or its index as a string). */
  labelName?: string;
}

// Decimal numbers (with exponent) and the usual spellings of nan/inf; Number() alone would take "" and "0x1f".
const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const F32_MAX = 3.4028234663852886e38;
const SPECIAL = new Map<string, number>([
  ["nan", NaN], ["inf", Infinity], ["+inf", Infinity], ["-inf", -Infinity], ["infinity", Infinity], ["-infinity", -Infinity],
]);

/** Reads a numeric CSV file (optionally gzip-compressed). */
export async function readCsv(src: Source, opts: CsvOptions = {}): Promise<CsvTable> {
  const { bytes, name } = await readMaybeGzip(src, opts);
  return parseCsv(new TextDecoder().decode(bytes), { ...opts, name });
}

/** Parses CSV text. */
export function parseCsv(text: string, opts: CsvOptions = {}): CsvTable {
  const name = opts.name ?? "<text>";
  const delim = opts.delimiter ?? ",";
  const lines = text.replace(/^\uFEFF/, "").split(/\r?\n/);
  const rows: Array<{ line: number; cells: string[] }> = [];
  lines.forEach((l, i) => {
    if (l.trim().length > 0) rows.push({ line: i + 1, cells: l.split(delim).map(unquote) });
  });
  let columns: string[] | null = null;
  const first = rows[0];
  const hasHeader = opts.header === "auto" || opts.header === undefined ? !!first && first.cells.some((c) => parseCell(c) === undefined) : opts.header;
  if (hasHeader && first) {
    columns = first.cells;
    rows.shift();
  }
  const width = columns?.length ?? rows[0]?.cells.length ?? 0;
  const labelIdx = labelIndex(opts.labelColumn, columns, width, name);
  const dtype = opts.dtype ?? "f32";
  const data = new Tensor(dtype, [rows.length, labelIdx === undefined ? width : width - 1]);
  const labels = labelIdx === undefined ? undefined : new Tensor("i32", [rows.length]);
  rows.forEach((row, r) => {
    if (row.cells.length !== width) {
      throw new KilnError(`CSV file ${name}: row ${r + 1} (line ${row.line}) has ${row.cells.length} cells, expected ${width}${columns ? " (the header's count)" : " (the first row's count)"}`, { code: "input_shape", tensor: name });
    }
    let k = 0;
    row.cells.forEach((cell, c) => {
      const v = parseCell(cell);
      const where = () => `CSV file ${name}: row ${r + 1} (line ${row.line}), column ${c + 1}${columns ? ` "${columns[c]}"` : ""}`;
      if (v === undefined) throw new KilnError(`${where()}: ${JSON.stringify(cell)} is not a number`, { code: "input_value", tensor: name });
      // A written number too large for the column would read as Infinity (only "inf" spelled out means that).
      if (NUMBER.test(cell) && !(Math.abs(v) <= (dtype === "f32" ? F32_MAX : Number.MAX_VALUE))) {
        throw new KilnError(`${where()}: ${cell} is out of range for ${dtype} (it would become Infinity)`, { code: "input_value", tensor: name, expected: dtype, actual: cell });
      }
      if (c === labelIdx) {
        if (!Number.isInteger(v) || v < -2147483648 || v > 2147483647) throw new KilnError(`${where()}: label ${cell} is not an integer`, { code: "input_value", tensor: name });
        labels!.data[r] = v;
        return;
      }
      if (dtype === "i32" && (!Number.isInteger(v) || Math.abs(v) > 2147483647)) {
        throw new KilnError(`${where()}: ${cell} is not an i32 (dtype i32 was asked for)`, { code: "input_value", tensor: name });
      }
      data.data[r * data.shape[1]! + k++] = v;
    });
  });
  const out: CsvTable = { columns: columns && labelIdx !== undefined ? columns.filter((_, i) => i !== labelIdx) : columns, data };
  if (labels) {
    out.labels = labels;
    out.labelName = columns ? columns[labelIdx!]! : String(labelIdx);
  }
  return out;
}

function unquote(cell: string): string {
  const t = cell.trim();
  return t.length >= 2 && t.startsWith('"') && t.endsWith('"') ? t.slice(1, -1).trim() : t;
}

function parseCell(cell: string): number | undefined {
  if (NUMBER.test(cell)) return Number(cell);
  return SPECIAL.get(cell.toLowerCase());
}

function labelIndex(col: string | number | undefined, columns: string[] | null, width: number, name: string): number | undefined {
  if (col === undefined) return undefined;
  const idx = typeof col === "number" ? col : (columns?.indexOf(col) ?? -1);
  if (!Number.isInteger(idx) || idx < 0 || idx >= width) {
    const have = columns ? `columns ${columns.map((c) => JSON.stringify(c)).join(", ")}` : `${width} unnamed columns`;
    throw new KilnError(`CSV file ${name}: no label column ${JSON.stringify(col)} (the file has ${have})`, { code: "bad_option", tensor: name });
  }
  return idx;
}
