// The compiler version recorded in every manifest (keep in step with package.json).
export const COMPILER_VERSION = "0.1.0";
/** The npm package generated modules import the runtime from (`${PACKAGE_NAME}/runtime`); package.json's name. */
export const PACKAGE_NAME = "@kiln-ml/kiln";
