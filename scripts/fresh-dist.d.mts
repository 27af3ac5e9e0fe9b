/** Types of fresh-dist.mjs: rebuilding dist/ when the sources changed. */

/** The repository root. */
export const ROOT: string;

/** The file in the output directory where tsup.config.ts records what it was built from. */
export const FINGERPRINT_NAME: string;

/** A digest of every build input's path, size and modification time. */
export function sourceFingerprint(root?: string): string;

/** Why dist/ must be rebuilt, or undefined when it matches the sources. */
export function staleness(root?: string): string | undefined;

/**
 * Rebuilds dist/ (JavaScript only) when it is stale; returns why it rebuilt, or undefined
 * when dist/ was fresh. `log` receives one line before a build.
 */
export function freshDist(options?: {
  readonly root?: string;
  readonly log?: (line: string) => void;
}): Promise<string | undefined>;
