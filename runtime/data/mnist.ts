// MNIST loader: reads the IDX files of the MNIST test set bundled in data/mnist/ and splits it by index
// (images 0–7999 train, 8000–9999 test; see data/mnist/README.md) into TensorDatasets {image u8, label i32}.

import { KilnError } from "../errors.js";
import { Tensor } from "../tensor.js";
import { TensorDataset } from "./dataset.js";
import { IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC, readIdx } from "./idx.js";

export const MNIST_FILES = { images: "t10k-images-idx3-ubyte.gz", labels: "t10k-labels-idx1-ubyte.gz" } as const;
/** Kiln's split of the 10,000 images, by index. */
export const MNIST_TRAIN_COUNT = 8000;
export const MNIST_CLASSES = 10;

export interface MnistOptions {
  /** Folder (path or URL) holding the two .gz files, e.g. "data/mnist" in this repository. */
  dir: string | URL;
  /** "train": images 0–7999; "test": 8000–9999; "all": every image (default "train"). */
  split?: "train" | "test" | "all";
}

/** {image: u8 [N, 28, 28], label: i32 [N]}; apply toTensor() (to f32 in [0, 1]) in the loader's transforms. */
export async function loadMnist(opts: MnistOptions): Promise<TensorDataset> {
  const split = opts.split ?? "train";
  if (split !== "train" && split !== "test" && split !== "all") {
    throw new KilnError(`loadMnist: split must be "train", "test" or "all", got ${JSON.stringify(split)}`, { code: "bad_option" });
  }
  const [images, labels8] = await Promise.all([
    readIdx(join(opts.dir, MNIST_FILES.images), { expectMagic: IDX_IMAGES_MAGIC }),
    readIdx(join(opts.dir, MNIST_FILES.labels), { expectMagic: IDX_LABELS_MAGIC }),
  ]);
  checkMnistShapes(images.shape, labels8.shape, labels8.data as Uint8Array, opts.dir);
  const label = new Tensor("i32", labels8.shape, Int32Array.from(labels8.data as Uint8Array));
  const all = new TensorDataset({ image: images, label });
  if (split === "all") return all;
  return split === "train" ? all.slice(0, MNIST_TRAIN_COUNT) : all.slice(MNIST_TRAIN_COUNT);
}

/**
 * What the IDX headers promise must be MNIST: 28 x 28 images (14 x 56 has the same byte count and would train
 * silently on scrambled pixels), one label per image, labels 0-9.
 */
function checkMnistShapes(images: readonly number[], labels: readonly number[], values: Uint8Array, dir: string | URL): void {
  const fail = (what: string, file: string, expected: string, actual: string): never => {
    throw new KilnError(`loadMnist: ${String(dir)}/${file} ${what}`, { code: "load_failed", tensor: file, expected, actual });
  };
  if (images.length !== 3 || images[1] !== 28 || images[2] !== 28) {
    fail(`holds images of shape [${images.join(", ")}], expected [N, 28, 28]`, MNIST_FILES.images, "[N, 28, 28]", `[${images.join(", ")}]`);
  }
  if (labels.length !== 1 || labels[0] !== images[0]) {
    fail(`holds ${labels.join(" x ")} labels for ${images[0]} images`, MNIST_FILES.labels, `[${images[0]}]`, `[${labels.join(", ")}]`);
  }
  const bad = values.findIndex((v) => v >= MNIST_CLASSES);
  if (bad >= 0) fail(`label ${bad} is ${values[bad]}, not a digit 0-9`, MNIST_FILES.labels, `0 <= label < ${MNIST_CLASSES}`, String(values[bad]));
}

function join(dir: string | URL, file: string): string | URL {
  if (dir instanceof URL) return new URL(file, dir.href.endsWith("/") ? dir : new URL(dir.href + "/"));
  return dir.endsWith("/") || dir.endsWith("\\") ? dir + file : `${dir}/${file}`;
}
