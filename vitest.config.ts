import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // integration tests start real daemons, containers and chains: run files one at a time so
    // that a 2-core machine is not oversubscribed, and give them room
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 120_000,
    reporters: ['default'],
    pool: 'forks'
  }
})
