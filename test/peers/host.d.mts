/** Types of host.mjs: commands, users and process groups of the host the peers run on. */

/** The full path of command `name`, or undefined when it is not installed. */
export function findCommand(name: string): string | undefined;

/** True when this process runs as root. */
export function isRoot(): boolean;

/** The uid and gid of system user `name`, or undefined when there is no such user. */
export function userIds(name: string): { uid: number; gid: number } | undefined;

/** The PIDs of every live process in process group `pgid`. */
export function groupMembers(pgid: number): number[];

/** CPU time (user + system, children included) of `pids` so far, in clock ticks. */
export function cpuTicks(pids: readonly number[]): number;

/** SIGTERM to every process of group `pgid`, SIGKILL after `graceMs`; resolves when none is left. */
export function stopGroup(pgid: number, graceMs?: number): Promise<void>;

/** The PID a daemon wrote to `file`, waiting for the file to appear. */
export function readPidFile(file: string, timeoutMs?: number): Promise<number>;

/** Records a daemon so that it is killed and `dir` removed when this process exits. */
export function adoptDaemon(pgid: number, dir: string | undefined): void;

/** Stops daemon `pgid` if there is one, and removes `dir`. */
export function retireDaemon(
  pgid: number | undefined,
  dir: string | undefined,
  graceMs?: number,
): Promise<void>;
