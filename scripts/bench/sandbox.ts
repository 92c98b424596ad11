/**
 * Per-task overhead of the sandbox: the same `python3 -I -S -c pass` run N times in the sandbox (mount /out,
 * create, attach, start, wait, inspect, remove, collect) and N times directly on the host, in the
 * same process run, then p50/p95 of each and of the difference.
 *   sh scripts/node22 dist/scripts/bench/sandbox.js [runs]
 */
import { execFile } from 'node:child_process'
import { chmodSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { promisify } from 'node:util'
import { SandboxRunner } from '../../sandbox/runner.js'
import type { SandboxConfigInput } from '../../sandbox/config.js'

const run = promisify(execFile)

export interface SandboxBenchResult {
  runs: number
  hostMs: { p50: number, p95: number }
  sandboxMs: { p50: number, p95: number }
  /** sandbox minus host, at each percentile */
  overheadMs: { p50: number, p95: number }
}

function percentile (values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b)
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return Math.round(sorted[i]! * 10) / 10
}

export async function benchSandbox (options: { runs?: number, warmup?: number, config?: SandboxConfigInput, signal?: AbortSignal } = {}): Promise<SandboxBenchResult> {
  const runs = options.runs ?? 30
  const warmup = options.warmup ?? 3
  // -I -S: no site packages or environment, so host and image interpreters do the same work
  const command = ['python3', '-I', '-S', '-c', 'pass']
  const taskDir = mkdtempSync(join(tmpdir(), 'bitflow-bench-sandbox-'))
  chmodSync(taskDir, 0o755)
  const runner = new SandboxRunner({ config: { owner: `bench-${process.pid}`, slots: 1, ...options.config } })
  await runner.start(options.signal !== undefined ? { signal: options.signal } : {})
  try {
    const host: number[] = []
    const sandbox: number[] = []
    for (let i = 0; i < warmup + runs; i++) {
      options.signal?.throwIfAborted()
      // interleaved, so both see the same machine load
      let t = performance.now()
      await run(command[0]!, command.slice(1), options.signal !== undefined ? { signal: options.signal } : {})
      const h = performance.now() - t
      t = performance.now()
      const r = await runner.run({ id: `bench-${i}`, taskDir, command, seed: '0' }, options.signal !== undefined ? { signal: options.signal } : {})
      const s = performance.now() - t
      if (r.status !== 'succeeded') throw new Error(`sandbox bench run ${i} ended ${r.status} (exit ${r.exitCode}): ${r.stderr.toString()}`)
      if (i >= warmup) { host.push(h); sandbox.push(s) }
    }
    const hostMs = { p50: percentile(host, 50), p95: percentile(host, 95) }
    const sandboxMs = { p50: percentile(sandbox, 50), p95: percentile(sandbox, 95) }
    return {
      runs,
      hostMs,
      sandboxMs,
      overheadMs: { p50: Math.round((sandboxMs.p50 - hostMs.p50) * 10) / 10, p95: Math.round((sandboxMs.p95 - hostMs.p95) * 10) / 10 }
    }
  } finally {
    await runner.stop()
    rmSync(taskDir, { recursive: true, force: true })
  }
}

export function formatSandboxBench (r: SandboxBenchResult): string {
  return [
    `sandbox overhead over ${r.runs} runs of python3 -I -S -c pass (same run, interleaved):`,
    `  host python3      p50 ${r.hostMs.p50} ms   p95 ${r.hostMs.p95} ms`,
    `  sandboxed python3 p50 ${r.sandboxMs.p50} ms   p95 ${r.sandboxMs.p95} ms`,
    `  overhead          p50 ${r.overheadMs.p50} ms   p95 ${r.overheadMs.p95} ms   (goal: p50 <= 250 ms)`
  ].join('\n')
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const runs = process.argv[2] !== undefined ? Number(process.argv[2]) : 30
  benchSandbox({ runs }).then(r => {
    console.log(formatSandboxBench(r))
    console.log(JSON.stringify(r))
  }, (err: unknown) => {
    console.error(err instanceof Error ? err.message : err)
    process.exitCode = 1
  })
}
