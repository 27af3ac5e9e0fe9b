/**
 * `postern/testing`: helpers for users' tests — a whole MTA that captures mail, and a
 * clock a test can move.
 *
 * @module
 */

export { ManualClock } from '../clock.js';
export { CaptureAgent } from './capture-agent.js';
export type { CapturedAttachment, CapturedMessage } from './captured-message.js';
export { parseCapturedMessage } from './captured-message.js';
export type { FaultOptions, FaultStage } from './faults.js';
export type { MemoryAddress } from './memory-network.js';
export { MemoryNetwork, MemorySocket } from './memory-network.js';
export type { MessageMatch, TestMta, TestMtaOptions } from './test-mta.js';
export { createTestMta, createTestSmtpServer } from './test-mta.js';
