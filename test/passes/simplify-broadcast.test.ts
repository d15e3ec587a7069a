// broadcast_to folding (passes/simplify-broadcast.ts) on the plain build: the checks in simplify-broadcast-cases.ts.
import { foldSuite } from "./simplify-broadcast-cases.js";

foldSuite();
