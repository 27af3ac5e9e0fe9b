/** Types of loopback.mjs: free loopback ports and waiting for a listener. */

/** A TCP port free on 127.0.0.1 right now. */
export function freePort(): Promise<number>;

/** True when a TCP connection to 127.0.0.1:`port` succeeds now. */
export function accepts(port: number): Promise<boolean>;

/**
 * Resolves once something accepts connections on 127.0.0.1:`port`; rejects after
 * `timeoutMs`, or as soon as `gaveUp()` returns a reason (e.g. the peer exited).
 */
export function waitForPort(
  port: number,
  timeoutMs?: number,
  gaveUp?: () => string | undefined,
): Promise<void>;
