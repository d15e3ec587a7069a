// Runtime contract for multi-threaded kernels: which kernels the thread pool may split and how, as the compiler
// records it in the wasm custom section "kiln.parallel" (JSON). Kept in the wasm so the manifest stays as is and
// every build of one module describes its own kernels.

export const PARALLEL_SECTION = "kiln.parallel";

/**
 * A matmul: args[range] and args[range + 1] are a row range [m0, m1) of every output matrix; each thread runs
 * the kernel on a sub-range (cut at multiples of `align`), with its own scratch of `scratchBytes` at args[scratch].
 */
export interface RowSplit {
  kind: "rows";
  range: number;
  align: number;
  scratch: number;
  scratchBytes: number;
  /** The product of these args is the work (multiply-adds); small calls stay on one thread. */
  work: number[];
  /**
   * Present when B may be packed once per call for all chunks: args[b] is one plain f32 B of args[K] x args[N],
   * `packer` (an export, prepack.ts) packs it, and the kernel's gemm reads it from SHARED_B_GLOBAL when nonzero.
   */
  sharedB?: {
    b: number; K: number; N: number; packer: string;
    /**
     * The packer packs only the columns [n0, n1) of COL_RANGE_GLOBALS (each panel at its usual place), so the
     * pool may pack B in column chunks on all threads before the row chunks (threads-split.ts packChunks).
     */
    cols?: true;
  };
  /**
   * Present when the kernel may instead be cut by columns of C (small M): args[N] is N (args[K] is K, for the
   * choice between rows and columns), and a thread restricts
   * its gemm to columns [n0, n1) (multiples of `align`, the microkernel's NR, except n1 = N) by setting its
   * instance's COL_RANGE_GLOBALS; the row range and every other argument stay the call's own.
   */
  cols?: { N: number; K: number; align: number };
}

/** Export name of the i32 global holding the address of a B packed for all threads of a call (0: none). */
export const SHARED_B_GLOBAL = "__kiln_shared_b";

/**
 * Export names of the i32 globals bounding the columns [n0, n1) of C a gemm computes (RowSplit.cols): 0 and
 * ALL_COLUMNS (every column) except while a thread runs a column chunk of a split call.
 */
export const COL_RANGE_GLOBALS = ["__kiln_n0", "__kiln_n1"] as const;
export const ALL_COLUMNS = 0x7fffffff;

/**
 * An elementwise kernel: args[ext] is the extent of the outermost axis; a thread gets a sub-range [s, e) as
 * extent e - s, and pointer arg i moves by s * step_i bytes, step_i = steps[i].bytes * product(args[steps[i].exts])
 * (its bytes per element times the extents of the inner axes it is not broadcast along; bytes 0 when it is
 * broadcast along the outer axis). Cuts make s * product(args[inner]) a multiple of `align`, so the vector loop
 * covers the same elements as on one thread and results are bit-identical.
 */
export interface OuterSplit {
  kind: "outer";
  ext: number;
  inner: number[];
  steps: { bytes: number; exts: number[] }[];
  align: number;
  work: number[];
}

export type KernelSplit = RowSplit | OuterSplit;

export interface ParallelInfo {
  version: 1;
  kernels: Record<string, KernelSplit>;
}

/** Reads the section; a module without it (or an unreadable one) simply runs every kernel on one thread. */
export function readParallelInfo(module: WebAssembly.Module): ParallelInfo {
  const empty: ParallelInfo = { version: 1, kernels: {} };
  const sections = WebAssembly.Module.customSections(module, PARALLEL_SECTION);
  if (sections.length !== 1) return empty;
  try {
    const info = JSON.parse(new TextDecoder().decode(sections[0]!)) as ParallelInfo;
    return info?.version === 1 && info.kernels && typeof info.kernels === "object" ? info : empty;
  } catch {
    return empty;
  }
}
