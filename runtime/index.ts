// Public API of the Kiln runtime (what generated modules import as ./kiln-runtime/index.js).
// The runtime never imports the compiler; everything it needs is in the manifest and the wasm.

export { loadKilnModule, KilnModule } from "./wasm/module.js";
export type { LoadOptions, ParamInfo, KilnFunction, MemoryStats } from "./wasm/module.js";
export { loadKilnModuleFromUrl } from "./load.js";
export { loadCompiled, backendOrder } from "./select.js";
export type { BackendChoice, BackendName, LoadCompiledOptions, ModuleSources } from "./select.js";
export { namedOutputs } from "./outputs.js";
export { readBytes, readText, isNode } from "./io.js";
export { Tensor, isTensor, TENSOR_BRAND } from "./tensor.js";
export type { NestedNumbers } from "./tensor.js";
export { KilnError } from "./errors.js";
export type { KilnErrorCode, KilnErrorDetails } from "./errors.js";
export { Rng } from "./rng.js";
export type { CallInputs, CallOptions, InputValue, NestedArray } from "./bind.js";
export type { DType, AnyTypedArray, TypedArrayFor } from "./dtype.js";
export { dtypeBytes, f32ToF16Bits, f16BitsToF32, f32ToBf16Bits, bf16BitsToF32 } from "./dtype.js";
export { evalDimPoly } from "./manifest.js";
export type {
  Manifest, FunctionManifest, ParamManifest, ValueManifest, StepManifest, TensorSig, ValueSource, InitSpec,
  DimPoly, ManifestDType, ManifestDim,
} from "./manifest.js";
export { methodLayout, MODULE_MEMBERS } from "./layout.js";
export type { MethodLayout } from "./layout.js";
export { initParams, fillInit } from "./init.js";
export * from "./data/index.js";
export { serializeSafetensors, parseSafetensors, loadSafetensors, saveSafetensors } from "./safetensors.js";
export type { SafetensorsFile } from "./safetensors.js";
export { ProgressBar, formatDuration, formatRate } from "./train/progress.js";
export type { ProgressOptions, ProgressStream, Metrics } from "./train/progress.js";
export { lineChartSvg, trainingPlotSvg, writeSvg, niceTicks } from "./train/plot.js";
export type { Series, ChartOptions, TrainingHistory } from "./train/plot.js";
export { loadKilnModuleWebGPU, KilnGpuModule } from "./webgpu/module.js";
export { GPU_MODULE_MEMBERS } from "./webgpu/members.js";
export type { WebGPULoadOptions, KilnGpuFunction, GpuCallInputs, GpuInputValue } from "./webgpu/module.js";
export { GpuTensor, GPU_TENSOR_BRAND } from "./webgpu/gpu-tensor.js";
export { quantizeDynamic, restoreFloat, quantizationOf } from "./quantize/dynamic.js";
export type { QuantizeOptions, QuantizeReport, QuantizedOp, ErrorStats } from "./quantize/dynamic.js";
export { quantizeStatic } from "./quantize/static.js";
export type { StaticQuantizeOptions, Calibration } from "./quantize/static.js";
export { saveQuantized, serializeQuantized, loadQuantized, loadWeights, quantizedWeightsFile } from "./quantize/io.js";
export type { LoadWeightsOptions } from "./weights-check.js";
export { saveCheckpoint, serializeCheckpoint, loadCheckpoint, checkpointParams, CHECKPOINT_FORMAT } from "./train/checkpoint.js";
export { readScaler, trainStepWithScaler } from "./train/loss-scale.js";
export type { ScalerState } from "./train/loss-scale.js";
export { dynamicQuantizeLinear, quantizeWeight, dequantizeWeight } from "./quantize/math.js";
export type { QuantizedWeight, LinearQuant } from "./quantize/math.js";
export { DataParallelTrainer, checkReplicas } from "./parallel/trainer.js";
export type { DataParallelOptions, StepResult, PhaseTimes } from "./parallel/trainer.js";
export { DistributedSampler } from "./parallel/sampler.js";
export type { DistributedSamplerOptions } from "./parallel/sampler.js";
export { splitBatch } from "./parallel/allreduce.js";
export type { ReplicaTransport, ToReplica, FromReplica, WireTensor } from "./parallel/protocol.js";
export type { DataParallelLayout } from "./manifest.js";
