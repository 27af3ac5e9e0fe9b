/**
 * `postern/testing`: helpers for users' tests — a whole MTA that captures mail (with
 * fault injection and, on request, the capture server's Mailpit-compatible API and web
 * UI), and a clock a test can move.
 *
 * @module postern/testing
 */

export { ManualClock } from '../clock.js';
export { CaptureAgent } from './capture-agent.js';
export type { InboxEvent, MessageMatch } from './capture-inbox.js';
export type { CapturedAttachment, CapturedMessage, CaptureMeta } from './captured-message.js';
export { parseCapturedMessage } from './captured-message.js';
export type { FaultOptions, FaultStage } from './faults.js';
export type { MailAddress } from './header-mailboxes.js';
export type { ChaosTrigger, ChaosTriggers } from './mailpit-chaos.js';
export type {
  MailpitAddress,
  MailpitAttachment,
  MailpitHeadline,
  MailpitListItem,
  MailpitMessage,
} from './mailpit-shapes.js';
export type { MemoryAddress } from './memory-network.js';
export { MemoryNetwork, MemorySocket } from './memory-network.js';
export type { TestMta, TestMtaOptions } from './test-mta.js';
export { createTestMta, createTestSmtpServer } from './test-mta.js';
