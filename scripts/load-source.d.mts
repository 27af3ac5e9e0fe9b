/** Types of load-source.mjs: importing a module of src/ without building the package. */

/** Imports `entry` (relative to `root`, such as `src/mta/config-schema.ts`), bundled by esbuild. */
export function loadSource(root: string, entry: string): Promise<Record<string, unknown>>;
