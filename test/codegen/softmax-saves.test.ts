// softmax rows storing their exps and sums (codegen/plan-rows.ts `saves`) on the plain build: softmax-saves-cases.ts.
import { savesSuite } from "./softmax-saves-cases.js";

savesSuite();
