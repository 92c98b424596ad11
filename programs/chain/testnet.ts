/**
 * What the test net launcher needs from the local chain: start it as a detached process (its pid
 * recorded in `<dir>/ready.json`), stop it, and set the network's token economy up through an
 * ordinary web3.js `Connection`: the stake mint (a 6-decimal test stablecoin) and funded owner keys.
 *
 *   const chain = await startLocalChain({ dir: join(testnetDir, 'chain'), slotMs: 100, signal })
 *   const connection = new Connection(chain.rpcUrl, 'confirmed')   // WebSocket at rpcUrl port + 1
 *   const payer = loadOrCreateKeypair(join(testnetDir, 'keys', 'payer.json'))
 *   await airdrop(connection, payer.publicKey, 100 * LAMPORTS_PER_SOL)
 *   const { mint, mintAuthority } = await createStakeMint(connection, { payer })
 *   await fundOwners(connection, { payer, mint, mintAuthority, owners: [{ owner, lamports, tokens }] })
 *   await chain.stop()
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import {
  Keypair, PublicKey, SystemProgram, Transaction, type Connection, type TransactionInstruction
} from '@solana/web3.js'
import { projectRoot } from '../../daemon/paths.js'
import { ChainStartError, ChainTransactionError } from './errors.js'
import { readyPath, type ChainReady } from './ready.js'
import { signTransaction } from './signer.js'
import { MINT_SIZE, associatedTokenAddress, createAssociatedTokenAccountIdempotent, createMintInstructions, mintToInstruction } from './spl.js'

export type { ChainReady }
export const STAKE_MINT_DECIMALS = 6

export interface StartLocalChainOptions {
  /** chain data directory; an existing chain there is restarted with its state */
  dir: string
  /** slot time (default 100 ms) */
  slotMs?: number
  /** slots a blockhash stays valid (default: 150, or 60 s worth of slots when slots are faster than 400 ms) */
  blockhashTtlSlots?: number
  /** aborting kills a chain that is still starting (a started chain is stopped with stop()) */
  signal?: AbortSignal
  /** JSON-RPC port; WebSocket on port + 1 too. Default 0: any free pair */
  port?: number
  /** default 'litesvm'; 'solana-test-validator' needs that binary on PATH */
  chain?: 'litesvm' | 'solana-test-validator'
  /** program .so deployed at genesis (default: programs/settlement/build/bitflow_settlement.so) */
  programPath?: string
  logLevel?: string
  /** how long to wait for ready.json (default 30 s; 120 s for solana-test-validator) */
  timeoutMs?: number
}

export interface LocalChain extends ChainReady {
  dir: string
  /** the server's log file (pino JSON lines) */
  log: string
  /** SIGTERM, wait for a clean exit (the open slot is persisted), SIGKILL after timeoutMs */
  stop: (options?: { timeoutMs?: number }) => Promise<void>
  /** SIGKILL and wait until the process is gone (crash tests) */
  kill: () => Promise<void>
}

export const SERVER_JS = (): string => join(projectRoot(), 'dist', 'programs', 'chain', 'server.js')

/** Spawns the chain server detached, waits for its ready.json and returns its endpoints. */
export async function startLocalChain (options: StartLocalChainOptions): Promise<LocalChain> {
  const dir = resolve(options.dir)
  const server = SERVER_JS()
  if (!existsSync(server)) throw new ChainStartError(`${server} is not built; run npm run build`)
  options.signal?.throwIfAborted()
  mkdirSync(dir, { recursive: true })
  const running = localChainRunning(dir)
  if (running !== undefined) throw new ChainStartError(`a local chain (pid ${running.pid}) already serves ${dir}; stop it first (stopLocalChain)`)
  const log = join(dir, 'chain.log')
  const args = [server, '--dir', dir, '--port', String(options.port ?? 0), '--slot-ms', String(options.slotMs ?? 100),
    '--log-level', options.logLevel ?? 'info', '--chain', options.chain ?? 'litesvm']
  if (options.blockhashTtlSlots !== undefined) args.push('--blockhash-ttl-slots', String(options.blockhashTtlSlots))
  if (options.programPath !== undefined) args.push('--program', resolve(options.programPath))
  const fd = openSync(log, 'a')
  let child: ChildProcess
  try {
    child = spawn(process.execPath, args, { detached: true, stdio: ['ignore', fd, fd] })
  } finally {
    closeSync(fd)
  }
  child.unref()
  const pid = child.pid
  if (pid === undefined) throw new ChainStartError('could not spawn the local chain server')
  const exited = new Promise<void>(r => { if (child.exitCode !== null || child.signalCode !== null) r(); else child.once('exit', () => { r() }) })
  const gone = async (timeoutMs: number): Promise<boolean> => {
    const timer = sleep(timeoutMs).then(() => false)
    return await Promise.race([exited.then(() => true), timer])
  }

  const deadline = Date.now() + (options.timeoutMs ?? (options.chain === 'solana-test-validator' ? 120_000 : 30_000))
  let ready: ChainReady | undefined
  while (ready === undefined) {
    const r = readChainReady(dir)
    if (r !== undefined && r.pid === pid) { ready = r; break }
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new ChainStartError(`the local chain server exited during start-up (${child.exitCode ?? child.signalCode}); last log lines:\n${tail(log, 10)}`)
    }
    if (options.signal?.aborted === true || Date.now() > deadline) {
      try { process.kill(pid, 'SIGKILL') } catch { /* gone */ }
      await gone(5000)
      if (options.signal?.aborted === true) throw new ChainStartError('starting the local chain was aborted')
      throw new ChainStartError(`the local chain server did not write ready.json in time; last log lines:\n${tail(log, 10)}`)
    }
    await sleep(25)
  }

  return {
    ...ready,
    dir,
    log,
    stop: async ({ timeoutMs = 10_000 } = {}) => {
      if (child.exitCode !== null || child.signalCode !== null) return
      try { process.kill(pid, 'SIGTERM') } catch { return }
      if (await gone(timeoutMs)) return
      try { process.kill(pid, 'SIGKILL') } catch { /* gone */ }
      await gone(5000)
    },
    kill: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return
      try { process.kill(pid, 'SIGKILL') } catch { return }
      await gone(10_000)
    }
  }
}

export function readChainReady (dir: string): ChainReady | undefined {
  try {
    return JSON.parse(readFileSync(readyPath(resolve(dir)), 'utf8')) as ChainReady
  } catch {
    return undefined
  }
}

/** The ready.json of a chain server that is still running in `dir` (pid alive and really ours). */
export function localChainRunning (dir: string): ChainReady | undefined {
  const ready = readChainReady(dir)
  if (ready === undefined || !processAlive(ready.pid)) return undefined
  try {
    const cmdline = readFileSync(`/proc/${ready.pid}/cmdline`, 'utf8')
    if (!cmdline.includes(resolve(dir))) return undefined
    if (/\) Z /.test(readFileSync(`/proc/${ready.pid}/stat`, 'utf8'))) return undefined
  } catch {
    return undefined
  }
  return ready
}

/** Stops the chain serving `dir` by its recorded pid (for `testnet down`, which has no handle). */
export async function stopLocalChain (dir: string, options: { timeoutMs?: number } = {}): Promise<'stopped' | 'killed' | 'not-running'> {
  const ready = localChainRunning(dir)
  if (ready === undefined) return 'not-running'
  try { process.kill(ready.pid, 'SIGTERM') } catch { return 'stopped' }
  const deadline = Date.now() + (options.timeoutMs ?? 10_000)
  while (Date.now() < deadline) {
    if (localChainRunning(dir) === undefined && !processAlive(ready.pid)) return 'stopped'
    if (readChainReady(dir) === undefined) {
      // ready.json is removed at the end of a clean stop; the process exits right after
      await sleep(50)
      if (!processAlive(ready.pid)) return 'stopped'
    }
    await sleep(50)
  }
  try { process.kill(ready.pid, 'SIGKILL') } catch { /* gone */ }
  return 'killed'
}

function processAlive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

function tail (file: string, lines: number): string {
  try { return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n') } catch { return '(no log)' }
}

// ---- keys ------------------------------------------------------------------------------------------

/** Reads a Solana CLI keypair file (JSON array of 64 bytes), creating it (mode 0600) when missing. */
export function loadOrCreateKeypair (path: string): Keypair {
  if (existsSync(path)) {
    const raw = JSON.parse(readFileSync(path, 'utf8')) as number[]
    if (!Array.isArray(raw) || raw.length !== 64) throw new ChainTransactionError(`${path} is not a Solana keypair file (a JSON array of 64 bytes)`)
    return Keypair.fromSecretKey(Uint8Array.from(raw))
  }
  const k = Keypair.generate()
  mkdirSync(dirname(path), { recursive: true })
  writeFileSync(path, JSON.stringify(Array.from(k.secretKey)), { mode: 0o600 })
  return k
}

// ---- transactions ----------------------------------------------------------------------------------

/**
 * Signs (Node's Ed25519), sends and confirms a transaction; throws ChainTransactionError with the
 * program logs when it fails. `payer` pays the fee.
 */
export async function sendAndConfirm (connection: Connection, instructions: TransactionInstruction[], payer: Keypair, signers: Keypair[] = []): Promise<string> {
  const { blockhash, lastValidBlockHeight } = await connection.getLatestBlockhash('confirmed')
  const tx = new Transaction({ feePayer: payer.publicKey, blockhash, lastValidBlockHeight })
  tx.add(...instructions)
  const wire = signTransaction(tx, [payer, ...signers])
  let signature: string
  try {
    signature = await connection.sendRawTransaction(wire)
  } catch (err) {
    const logs = (err as { logs?: string[] }).logs
    throw new ChainTransactionError(`transaction refused: ${(err as Error).message}${logs !== undefined ? `\n${logs.join('\n')}` : ''}`, { cause: err })
  }
  const result = await connection.confirmTransaction({ signature, blockhash, lastValidBlockHeight }, 'confirmed')
  if (result.value.err !== null) throw new ChainTransactionError(`transaction ${signature} failed: ${JSON.stringify(result.value.err)}`)
  return signature
}

/** Faucet lamports to `to`, confirmed. */
export async function airdrop (connection: Connection, to: PublicKey, lamports: number): Promise<string> {
  const { blockhash, lastValidBlockHeight } = await connection.getLatestBlockhash('confirmed')
  const signature = await connection.requestAirdrop(to, lamports)
  const result = await connection.confirmTransaction({ signature, blockhash, lastValidBlockHeight }, 'confirmed')
  if (result.value.err !== null) throw new ChainTransactionError(`airdrop ${signature} failed: ${JSON.stringify(result.value.err)}`)
  return signature
}

/**
 * Creates the network's stake mint: an SPL token with 6 decimals (a test stablecoin) whose mint
 * authority is `mintAuthority` (default: a new key, returned). `payer` needs ~0.002 SOL.
 */
export async function createStakeMint (connection: Connection, options: { payer: Keypair, mintAuthority?: Keypair, mint?: Keypair, decimals?: number }): Promise<{ mint: PublicKey, mintAuthority: Keypair }> {
  const mint = options.mint ?? Keypair.generate()
  const mintAuthority = options.mintAuthority ?? Keypair.generate()
  const lamports = await connection.getMinimumBalanceForRentExemption(MINT_SIZE)
  await sendAndConfirm(connection, createMintInstructions({
    payer: options.payer.publicKey, mint: mint.publicKey, mintAuthority: mintAuthority.publicKey, decimals: options.decimals ?? STAKE_MINT_DECIMALS, lamports
  }), options.payer, [mint])
  return { mint: mint.publicKey, mintAuthority }
}

export interface OwnerFunding {
  owner: PublicKey
  /** lamports moved from the payer to the owner (fees, rent); default 0 */
  lamports?: number
  /** stake-mint base units minted to the owner's associated token account; default 0 */
  tokens?: bigint
}

const OWNERS_PER_TRANSACTION = 4

/**
 * Funds owner keys: lamports from `payer`, an associated token account of `mint` for each owner
 * (created idempotently), and `tokens` minted into it. Batches several owners per transaction and
 * sends the batches concurrently. Returns each owner's token account.
 */
export async function fundOwners (connection: Connection, options: { payer: Keypair, mint: PublicKey, mintAuthority: Keypair, owners: OwnerFunding[] }): Promise<Array<{ owner: PublicKey, tokenAccount: PublicKey }>> {
  const { payer, mint, mintAuthority } = options
  const batches: OwnerFunding[][] = []
  for (let i = 0; i < options.owners.length; i += OWNERS_PER_TRANSACTION) batches.push(options.owners.slice(i, i + OWNERS_PER_TRANSACTION))
  await Promise.all(batches.map(async batch => {
    const ixs: TransactionInstruction[] = []
    for (const o of batch) {
      if ((o.lamports ?? 0) > 0) ixs.push(SystemProgram.transfer({ fromPubkey: payer.publicKey, toPubkey: o.owner, lamports: o.lamports! }))
      ixs.push(createAssociatedTokenAccountIdempotent({ payer: payer.publicKey, owner: o.owner, mint }))
      if ((o.tokens ?? 0n) > 0n) ixs.push(mintToInstruction({ mint, destination: associatedTokenAddress(o.owner, mint), authority: mintAuthority.publicKey, amount: o.tokens! }))
    }
    await sendAndConfirm(connection, ixs, payer, [mintAuthority])
  }))
  return options.owners.map(o => ({ owner: o.owner, tokenAccount: associatedTokenAddress(o.owner, mint) }))
}

export { associatedTokenAddress }
