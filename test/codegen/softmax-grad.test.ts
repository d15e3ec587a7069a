// The backward of softmax / log_softmax as one row kernel (codegen/plan-rows-grad.ts) on the plain build: softmax-grad-cases.ts.
import { softmaxGradSuite } from "./softmax-grad-cases.js";

softmaxGradSuite("plain");
