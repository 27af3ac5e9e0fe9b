// Helpers every benchmark script shares: free loopback ports, waiting for a listener
// (the same ones the test peers use), medians.
export { freePort, waitForPort } from '../../test/peers/loopback.mjs';

/** The median of a list of numbers. */
export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}
