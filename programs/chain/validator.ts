/**
 * `--chain solana-test-validator`: where Agave's `solana-test-validator` is on PATH, run it with the
 * settlement program deployed instead of the LiteSVM server. It is not installable on this
 * project's build machine (no Solana release tarballs, no Rust toolchain), so this path is kept
 * small and is exercised only where the binary exists.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { accessSync, constants, existsSync, mkdirSync, openSync, closeSync, readFileSync, writeFileSync } from 'node:fs'
import { delimiter, join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { Keypair } from '@solana/web3.js'
import { ChainStartError } from './errors.js'

export const SOLANA_TEST_VALIDATOR = 'solana-test-validator'

/** The absolute path of an executable on PATH, or undefined. */
export function findOnPath (command: string, path = process.env.PATH ?? ''): string | undefined {
  for (const dir of path.split(delimiter)) {
    if (dir === '') continue
    const candidate = join(dir, command)
    try {
      accessSync(candidate, constants.X_OK)
      return candidate
    } catch { /* next */ }
  }
  return undefined
}

export interface TestValidator {
  rpcUrl: string
  wsUrl: string
  programId: string
  child: ChildProcess
}

/**
 * Starts solana-test-validator on 127.0.0.1:`port` (WebSocket on port + 1, its convention) with the
 * program deployed at a program id kept in `dir`, and waits until getHealth answers ok.
 */
export async function startTestValidator (options: { dir: string, port: number, programSo: string, signal?: AbortSignal, timeoutMs?: number }): Promise<TestValidator> {
  const binary = findOnPath(SOLANA_TEST_VALIDATOR)
  if (binary === undefined) {
    throw new ChainStartError(`${SOLANA_TEST_VALIDATOR} is not on PATH (it cannot be installed on this machine); use the default LiteSVM chain (--chain litesvm)`)
  }
  if (!existsSync(options.programSo)) throw new ChainStartError(`program ${options.programSo} not found; run npm run build:program`)
  mkdirSync(options.dir, { recursive: true })
  const keyPath = join(options.dir, 'validator-program-keypair.json')
  if (!existsSync(keyPath)) writeFileSync(keyPath, JSON.stringify(Array.from(Keypair.generate().secretKey)), { mode: 0o600 })
  const programId = Keypair.fromSecretKey(Uint8Array.from(JSON.parse(readFileSync(keyPath, 'utf8')) as number[])).publicKey.toBase58()
  const log = openSync(join(options.dir, 'validator.log'), 'a')
  const child = spawn(binary, [
    '--ledger', join(options.dir, 'validator-ledger'),
    '--bind-address', '127.0.0.1',
    '--rpc-port', String(options.port),
    '--faucet-port', String(options.port + 2),
    '--bpf-program', programId, options.programSo,
    '--quiet'
  ], { stdio: ['ignore', log, log] })
  closeSync(log)
  const rpcUrl = `http://127.0.0.1:${options.port}`
  const deadline = Date.now() + (options.timeoutMs ?? 120_000)
  for (;;) {
    if (child.exitCode !== null) throw new ChainStartError(`${SOLANA_TEST_VALIDATOR} exited with ${child.exitCode}; see ${join(options.dir, 'validator.log')}`)
    if (options.signal?.aborted === true) { child.kill('SIGTERM'); throw new ChainStartError('start aborted') }
    try {
      const res = await fetch(rpcUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'getHealth' }) })
      if ((await res.json() as { result?: string }).result === 'ok') break
    } catch { /* not up yet */ }
    if (Date.now() > deadline) { child.kill('SIGKILL'); throw new ChainStartError(`${SOLANA_TEST_VALIDATOR} did not become healthy in time`) }
    await sleep(250)
  }
  return { rpcUrl, wsUrl: `ws://127.0.0.1:${options.port + 1}`, programId, child }
}
