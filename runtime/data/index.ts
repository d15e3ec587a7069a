// Public API of the data pipeline: datasets, samplers, the loader, readers for real formats, augmentation, MNIST.
// Browser-safe: Node builtins are only imported dynamically (source.ts), behind a Node check.

export { TensorDataset, Subset, checkIndex } from "./dataset.js";
export type { Dataset, Sample, SampleSpec } from "./dataset.js";
export { SequentialSampler, RandomSampler, SubsetSampler, rangeSampler, trainValSplit } from "./sampler.js";
export type { Sampler, RandomSamplerOptions, SubsetSamplerOptions, SplitOptions } from "./sampler.js";
export { DataLoader } from "./loader.js";
export type { DataLoaderOptions } from "./loader.js";
export type { Batch } from "./collate.js";
export { deriveSeed, randomInt, shuffleInPlace } from "./random.js";
export { readIdx, parseIdx, IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC } from "./idx.js";
export type { IdxOptions } from "./idx.js";
export { readNpy, parseNpy } from "./npy.js";
export { readCsv, parseCsv } from "./csv.js";
export type { CsvOptions, CsvTable } from "./csv.js";
export { gunzip, readMaybeGzip } from "./source.js";
export type { Source, SourceOptions } from "./source.js";
export {
  compose, randomHorizontalFlip, randomVerticalFlip, randomRotation, randomCrop, normalize, toTensor, BufferPool,
} from "./transforms.js";
export type { Transform, ApplyOptions, BackendOption, RotationOptions, CropOptions } from "./transforms.js";
export { augmentKernels, loadAugmentKernels, augmentBackend } from "./augment-kernels.js";
export type { AugmentBackendName } from "./augment-kernels.js";
export type { AugmentBackend, Dims } from "./augment-ref.js";
export { loadMnist, MNIST_FILES, MNIST_TRAIN_COUNT, MNIST_CLASSES } from "./mnist.js";
export type { MnistOptions } from "./mnist.js";
