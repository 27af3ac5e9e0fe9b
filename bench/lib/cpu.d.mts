/** Types of cpu.mjs: the CPU time of a server's whole process tree during a benchmark run. */

/** A running count of a process tree's CPU time. */
export interface CpuMeter {
  /** How it counts: `cgroup v2`, `cgroup v1 cpuacct` or `process tree`. */
  readonly method: string;
  /** CPU time (user + system) used by the tree since the meter started, in microseconds. */
  usageUs(): number;
  /** Releases the meter's cgroup, if it made one. */
  close(): void;
}

/** `pid` and every live or zombie descendant of it. */
export function processTree(pid: number): number[];

/**
 * Starts counting the CPU time of process `pid` and all its descendants, present and
 * future: in a cgroup when one can be made (unless `cgroup` is false), else from the
 * process tree's times.
 */
export function cpuMeter(pid: number, options?: { cgroup?: boolean }): CpuMeter;

/** Resolves once the metered tree has gone quiet, or after `timeoutMs`. */
export function settle(
  meter: CpuMeter,
  options?: { windowMs?: number; idleShare?: number; timeoutMs?: number },
): Promise<void>;
