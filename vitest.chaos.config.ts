import { defineConfig } from 'vitest/config'

/**
 * The chaos suite (`npm run test:chaos`): one test net per file, each scenario followed by the same
 * checks (terminal states correct, books balanced on chain, every daemon answering). `npm test` runs
 * a reduced set: the pipeline (node killed, oracles down) and the slashing tests.
 */
export default defineConfig({
  test: {
    include: ['test/chaos/**/*.chaos.ts', 'test/integration/execution/slashing.test.ts'],
    fileParallelism: false,
    testTimeout: 1_200_000,
    hookTimeout: 300_000,
    reporters: ['default'],
    pool: 'forks'
  }
})
