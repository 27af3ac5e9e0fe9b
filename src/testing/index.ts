/**
 * `postern/testing`: helpers for users' tests.
 *
 * @module
 */

export { ManualClock } from '../clock.js';
