// Vitest settings for this folder only: run the vitest example, not the jest and node:test ones.
import { defineConfig } from 'vitest/config';

export default defineConfig({ test: { include: ['vitest.test.mjs'] } });
