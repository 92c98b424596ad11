import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { projectRoot, DAEMON_NODE_FLAGS } from '../../daemon/paths.js'
import { processAlive } from '../../daemon/datadir.js'
import { BitflowClient, RpcCallError } from '../../daemon/rpc/client.js'
import type { RuntimeInfo } from '../../daemon/node.js'

export const CLI = join(projectRoot(), 'dist', 'daemon', 'cli.js')

export function tempDir (prefix: string): string {
  return mkdtempSync(join(tmpdir(), `bitflow-${prefix}-`))
}

export interface CliResult { code: number | null, stdout: string, stderr: string }

/** Runs `bitflowd ARGS` to completion. */
export async function runCli (args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  const child = spawn(process.execPath, [CLI, ...args], { env: { ...cleanEnv(), ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', d => { stdout += String(d) })
  child.stderr.on('data', d => { stderr += String(d) })
  const code = await new Promise<number | null>(resolve => child.on('close', resolve))
  return { code, stdout, stderr }
}

export function cleanEnv (): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('BITFLOW_')))
}

export interface SpawnedDaemon {
  child: ChildProcess
  pid: number
  dataDir: string
  runtime: RuntimeInfo
  client: BitflowClient
  output: () => string
  /** SIGTERM, wait for exit; returns the exit code and how long it took */
  stop: () => Promise<{ code: number | null, ms: number }>
}

/** Starts a real bitflowd process and waits until it wrote runtime.json. */
export async function spawnDaemon (dataDir: string, args: string[], timeoutMs = 30_000): Promise<SpawnedDaemon> {
  const child = spawn(process.execPath, [...DAEMON_NODE_FLAGS, CLI, '--data-dir', dataDir, '--rpc-port', '0', '--metrics-port', '0', ...args], { env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout!.on('data', d => { output += String(d) })
  child.stderr!.on('data', d => { output += String(d) })
  const exited = new Promise<number | null>(resolve => child.on('exit', resolve))
  const runtimePath = join(dataDir, 'runtime.json')
  const deadline = Date.now() + timeoutMs
  let runtime: RuntimeInfo | undefined
  while (runtime === undefined) {
    if (child.exitCode !== null) throw new Error(`bitflowd exited with ${child.exitCode}: ${output}`)
    if (existsSync(runtimePath)) {
      const rt = JSON.parse(readFileSync(runtimePath, 'utf8')) as RuntimeInfo
      if (rt.pid === child.pid) runtime = rt
    }
    if (runtime === undefined) {
      if (Date.now() > deadline) { child.kill('SIGKILL'); throw new Error(`bitflowd did not start: ${output}`) }
      await sleep(50)
    }
  }
  const pid = child.pid!
  return {
    child,
    pid,
    dataDir,
    runtime,
    client: BitflowClient.fromDataDir(dataDir),
    output: () => output,
    stop: async () => {
      const started = performance.now()
      if (child.exitCode === null) child.kill('SIGTERM')
      const code = await exited
      return { code, ms: performance.now() - started }
    }
  }
}

/** Kill leftovers by pid (never by name) and remove temp dirs; for afterAll hooks. */
export function cleanup (pids: number[], dirs: string[]): void {
  for (const pid of pids) if (processAlive(pid)) { try { process.kill(pid, 'SIGKILL') } catch { /* gone */ } }
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
}

/** Polls `check` until it returns a value other than undefined, or fails after timeoutMs with `what`. */
export async function eventually<T> (what: string, check: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  for (;;) {
    try {
      const v = await check()
      if (v !== undefined) return v
    } catch (err) { last = err }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last !== undefined ? `: ${String(last)}` : ''}`)
    await sleep(100)
  }
}

/** Children of a process, from /proc. */
export function childPids (pid: number): number[] {
  const out: number[] = []
  for (const entry of readdirSafe('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
      if (ppid === pid) out.push(Number(entry))
    } catch { /* exited */ }
  }
  return out
}

function readdirSafe (dir: string): string[] {
  try { return readdirSync(dir) } catch { return [] }
}

/** The RpcCallError a call fails with; fails the test if the call succeeds or fails otherwise. */
export async function rpcFailure (call: Promise<unknown>): Promise<RpcCallError> {
  try {
    await call
  } catch (err) {
    if (err instanceof RpcCallError) return err
    throw err
  }
  throw new Error('expected the call to fail with a JSON-RPC error, but it succeeded')
}

/** Reads one sample from a Prometheus text endpoint (0 when absent). */
export async function metricValue (metricsUrl: string, name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(metricsUrl)).text()
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`)
  let total = 0
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})? ([0-9.eE+-]+)$/.exec(line)
    if (m === null || m[1] !== name) continue
    const have = (m[3] ?? '').split(',')
    if (want.every(w => have.includes(w))) total += Number(m[4])
  }
  return total
}
