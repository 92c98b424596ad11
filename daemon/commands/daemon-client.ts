import { existsSync, readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import type { Command } from 'commander'
import { BitflowError } from '../errors.js'
import { resolveOptions } from '../options.js'
import { processAlive } from '../datadir.js'
import { BitflowClient, RpcCallError } from '../rpc/client.js'

/** Flags of commands that talk to a running daemon. */
export interface DaemonFlags {
  network?: string
  dataDir?: string
  rpcUrl?: string
  json?: boolean
}

export function addDaemonOptions (cmd: Command): Command {
  return cmd
    .option('--network <name>', 'network of the daemon (default local)')
    .option('--data-dir <path>', 'data dir of the running daemon (default ~/.bitflow/<network>)')
    .option('--rpc-url <url>', 'JSON-RPC URL of the daemon (token from BITFLOW_RPC_TOKEN)')
}

/** The data dir the flags name, after the usual option layering. */
export function dataDirOf (flags: DaemonFlags): string {
  const { options } = resolveOptions({ flags: { ...(flags.network !== undefined ? { network: flags.network } : {}), ...(flags.dataDir !== undefined ? { dataDir: resolve(flags.dataDir) } : {}) }, env: process.env })
  return options.dataDir
}

/** True when a daemon is running on the data dir (its runtime.json names a live process). */
export function daemonRunning (dataDir: string): boolean {
  const path = join(dataDir, 'runtime.json')
  if (!existsSync(path)) return false
  try {
    const rt = JSON.parse(readFileSync(path, 'utf8')) as { pid?: number }
    return typeof rt.pid === 'number' && processAlive(rt.pid)
  } catch {
    return false
  }
}

/** A client for the running daemon, or a clear error saying none runs. */
export function daemonClient (flags: DaemonFlags, timeoutMs = 10 * 60_000): BitflowClient {
  const rpcUrl = flags.rpcUrl ?? process.env.BITFLOW_RPC_URL
  if (rpcUrl !== undefined) {
    const token = process.env.BITFLOW_RPC_TOKEN
    return new BitflowClient(rpcUrl, { timeoutMs, ...(token !== undefined ? { token } : {}) })
  }
  const dataDir = dataDirOf(flags)
  if (!daemonRunning(dataDir)) {
    throw new BitflowError('ERR_NO_DAEMON', `no bitflowd is running on ${dataDir}; start one with \`bitflowd --data-dir ${dataDir}\` (or pass --data-dir / --rpc-url)`)
  }
  return BitflowClient.fromDataDir(dataDir, { timeoutMs })
}

/** Runs a daemon call, turning JSON-RPC and connection errors into BitflowErrors. */
export async function daemonCall<T> (fn: () => Promise<T>): Promise<T> {
  try {
    return await fn()
  } catch (err) {
    if (err instanceof BitflowError) throw err
    if (err instanceof RpcCallError) {
      const code = (err.data as { code?: unknown } | undefined)?.code
      throw new BitflowError(typeof code === 'string' ? code : `ERR_RPC_${Math.abs(err.code)}`, err.message.replace(/^bitflow_\w+: /, ''))
    }
    const cause = (err as { cause?: { code?: string } }).cause
    if (cause?.code === 'ECONNREFUSED') throw new BitflowError('ERR_NO_DAEMON', 'the daemon is not answering (connection refused); is bitflowd running?')
    throw err
  }
}
