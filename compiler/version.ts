// The compiler version recorded in every manifest (keep in step with package.json).
export const COMPILER_VERSION = "0.1.0";
