/**
 * The local chain server: LiteSVM with the settlement program preloaded, behind Solana's JSON-RPC
 * (HTTP POST) and PubSub (WebSocket) APIs, advancing a slot every `slotMs` and persisting every
 * slot that carries transactions before reporting them confirmed.
 *
 *   node dist/programs/chain/server.js --dir <dataDir> [--port 8899] [--slot-ms 100]
 *        [--program path.so] [--program-id <pubkey>] [--log-level info] [--chain litesvm|solana-test-validator]
 *
 * HTTP JSON-RPC on --port; WebSocket on --port + 1 (web3.js's convention) and on --port itself.
 * `--port 0` picks a free pair. Writes `<dir>/ready.json` ({ rpcUrl, wsUrl, programId, pid, … })
 * once it answers; SIGTERM/SIGINT stop it cleanly (the open slot is persisted first).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import type { Duplex } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import { Command, Option } from 'commander'
import { WebSocketServer, type WebSocket } from 'ws'
import { Keypair, PublicKey } from '@solana/web3.js'
import { createLogger, LOG_LEVELS, type Logger, type LogLevel } from '../../daemon/logger.js'
import { projectRoot } from '../../daemon/paths.js'
import { Bank } from './bank.js'
import { defaultBlockhashTtlSlots } from './constants.js'
import { ChainRpc, PubsubConnection } from './rpc.js'
import { Ledger, LEDGER_FORMAT, writeJsonAtomic, type GenesisFile, type SlotFrame } from './ledger.js'
import { base58Encode } from './codec.js'
import { ChainOptionError, ChainStartError, ProgramNotBuiltError } from './errors.js'
import { startTestValidator } from './validator.js'
import { readyPath, type ChainReady } from './ready.js'

export const DEFAULT_SLOT_MS = 100
export const DEFAULT_PORT = 8899
const MAX_BODY_BYTES = 4 * 1024 * 1024
const MAX_WS_BUFFERED_BYTES = 16 * 1024 * 1024
export const SLOTS_PER_EPOCH = 432_000

export function defaultProgramPath (): string {
  return join(projectRoot(), 'programs', 'settlement', 'build', 'bitflow_settlement.so')
}

export { readyPath, type ChainReady }

export interface ChainServerOptions {
  dir: string
  host?: string
  /** HTTP port; the WebSocket also listens on port + 1. 0 picks a free pair. */
  port?: number
  slotMs?: number
  /** slots a blockhash stays valid (default: 150, or 60 s worth of slots when slots are faster than 400 ms) */
  blockhashTtlSlots?: number
  /** program .so deployed at genesis (later starts use the copy in the chain dir) */
  programPath?: string
  /** program id at genesis (default: a fresh key) */
  programId?: string
  logger?: Logger
  signal?: AbortSignal
  /** called when persisting fails: nothing may be confirmed after that (default: log and stop) */
  onFatal?: (err: Error) => void
}

export class ChainServer {
  readonly dir: string
  readonly slotMs: number
  readonly blockhashTtlSlots: number
  private readonly options: ChainServerOptions
  private readonly log: Logger
  private ledger!: Ledger
  bank!: Bank
  private rpc!: ChainRpc
  private http: Server[] = []
  private wss!: WebSocketServer
  private timer: NodeJS.Timeout | undefined
  private nextTickAt = 0
  private state: 'new' | 'running' | 'stopping' | 'stopped' = 'new'
  private stopped: Promise<void> | undefined
  ready: ChainReady | undefined

  constructor (options: ChainServerOptions) {
    this.options = options
    this.dir = resolve(options.dir)
    this.slotMs = options.slotMs ?? DEFAULT_SLOT_MS
    if (!Number.isInteger(this.slotMs) || this.slotMs < 5 || this.slotMs > 60_000) throw new ChainOptionError(`slot time ${String(options.slotMs)} ms is out of range; use 5..60000`)
    this.blockhashTtlSlots = options.blockhashTtlSlots ?? defaultBlockhashTtlSlots(this.slotMs)
    if (!Number.isInteger(this.blockhashTtlSlots) || this.blockhashTtlSlots < 1 || this.blockhashTtlSlots > 100_000) throw new ChainOptionError(`blockhash lifetime ${String(options.blockhashTtlSlots)} slots is out of range; use 1..100000`)
    this.log = (options.logger ?? createLogger('info')).child({ module: 'chain' })
  }

  async start (): Promise<ChainReady> {
    if (this.state !== 'new') throw new ChainStartError('a ChainServer starts once')
    this.state = 'running'
    mkdirSync(this.dir, { recursive: true })
    this.ledger = new Ledger(this.dir)
    this.ledger.lock()
    try {
      return await this.startLocked()
    } catch (err) {
      await this.stop()
      throw err
    }
  }

  private async startLocked (): Promise<ChainReady> {
    const ledger = this.ledger
    if (!ledger.hasGenesis()) this.createGenesis()
    const genesis = ledger.readGenesis()
    const faucet = Keypair.fromSecretKey(ledger.readFaucetSecret())
    const started = performance.now()
    this.bank = new Bank({ genesis, faucet, program: readFileSync(ledger.programPath), blockhashTtlSlots: this.blockhashTtlSlots })
    let frames = 0
    ledger.readFrames(frame => { this.bank.restoreFrame(frame); frames++ }, (offset, size) => {
      this.log.warn({ offset, size }, 'cut a torn, never-confirmed frame off the end of the ledger')
    })
    const warning = this.bank.finishRestore(ledger.readHead())
    if (warning !== undefined) this.log.warn(warning)
    this.log.info({ frames, slot: this.bank.slot, transactions: this.bank.transactionCount, ms: Math.round(performance.now() - started) }, 'ledger restored')
    await ledger.openForAppend()
    this.options.signal?.throwIfAborted()

    const host = this.options.host ?? '127.0.0.1'
    const port = await this.listen(host, this.options.port ?? DEFAULT_PORT)
    const rpcUrl = `http://${host}:${port}`
    const wsUrl = `ws://${host}:${port + 1}`
    this.rpc = new ChainRpc(this.bank, this.log, { rpcUrl, wsUrl })
    this.nextTickAt = Date.now() + this.slotMs
    this.schedule()
    this.options.signal?.addEventListener('abort', () => { void this.stop() }, { once: true })

    this.ready = { chain: 'litesvm', rpcUrl, wsUrl, programId: genesis.programId, genesisHash: genesis.genesisHash, pid: process.pid, slotMs: this.slotMs, blockhashTtlSlots: this.blockhashTtlSlots, startedAt: new Date().toISOString() }
    writeJsonAtomic(readyPath(this.dir), this.ready)
    this.log.info({ ...this.ready, slot: this.bank.slot }, 'local chain ready')
    return this.ready
  }

  private createGenesis (): void {
    const programPath = this.options.programPath ?? defaultProgramPath()
    if (!existsSync(programPath)) throw new ProgramNotBuiltError(programPath)
    const programId = this.options.programId !== undefined ? new PublicKey(this.options.programId).toBase58() : Keypair.generate().publicKey.toBase58()
    const faucet = Keypair.generate()
    const genesis: GenesisFile = {
      format: LEDGER_FORMAT,
      genesisHash: base58Encode(randomBytes(32)),
      programId,
      faucet: faucet.publicKey.toBase58(),
      createdAt: new Date().toISOString(),
      startUnix: Math.floor(Date.now() / 1000),
      slotsPerEpoch: SLOTS_PER_EPOCH
    }
    this.ledger.writeGenesis(genesis, faucet.secretKey, readFileSync(programPath))
    this.log.info({ programId, programPath, genesisHash: genesis.genesisHash }, 'created a new chain')
  }

  // ---- slots -------------------------------------------------------------------------------------

  private schedule (): void {
    if (this.state !== 'running') return
    const now = Date.now()
    // stay on the slot grid; when the process fell behind, skip ahead instead of bursting slots
    if (this.nextTickAt < now - this.slotMs) this.nextTickAt = now
    this.timer = setTimeout(() => { this.tick() }, Math.max(0, this.nextTickAt - now))
  }

  private tick (): void {
    this.timer = undefined
    if (this.state !== 'running') return
    this.nextTickAt += this.slotMs
    this.persist(this.bank.closeSlot())
    this.schedule()
  }

  /** Persists a closed slot; its transactions become confirmed once that resolved. */
  private persist (frame: SlotFrame): Promise<void> {
    const head = { slot: frame.slot, unixTime: frame.unixTime, blockhash: frame.blockhash }
    const carriesState = frame.txs.length > 0 || frame.accounts.length > 0
    const durable = carriesState ? this.ledger.append(frame) : this.ledger.writeHead(head)
    if (carriesState) void this.ledger.writeHead(head).catch(() => {})
    return durable.then(() => { this.bank.markDurable(frame) }, (err: Error) => { this.fatal(err) })
  }

  private fatal (err: Error): void {
    if (this.state !== 'running') return
    this.log.fatal({ err }, 'persisting the ledger failed; stopping so that nothing unpersisted is reported confirmed')
    if (this.options.onFatal !== undefined) this.options.onFatal(err)
    else void this.stop()
  }

  // ---- network -----------------------------------------------------------------------------------

  private async listen (host: string, port: number): Promise<number> {
    if (port !== 0) {
      await this.listenPair(host, port)
      return port
    }
    for (let attempt = 0; attempt < 50; attempt++) {
      const first = this.newHttpServer()
      const p = await listenOn(first, host, 0)
      if (p >= 65535) { first.close(); continue }
      const second = this.newHttpServer()
      try {
        await listenOn(second, host, p + 1)
      } catch {
        first.close()
        continue
      }
      this.http = [first, second]
      return p
    }
    throw new ChainStartError('found no free pair of adjacent ports on 127.0.0.1 (RPC port and RPC port + 1)')
  }

  private async listenPair (host: string, port: number): Promise<void> {
    const first = this.newHttpServer()
    const second = this.newHttpServer()
    try {
      await listenOn(first, host, port)
      await listenOn(second, host, port + 1)
    } catch (err) {
      first.close(); second.close()
      throw new ChainStartError(`cannot listen on ${host}:${port} and ${host}:${port + 1}: ${(err as Error).message}; pass another --port (or 0 for any free pair)`, { cause: err })
    }
    this.http = [first, second]
  }

  private newHttpServer (): Server {
    this.wss ??= new WebSocketServer({ noServer: true, maxPayload: 1024 * 1024 })
    const server = createServer((req, res) => { this.onHttp(req, res) })
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      if (this.state !== 'running') { socket.destroy(); return }
      this.wss.handleUpgrade(req, socket, head, ws => { this.onWebSocket(ws) })
    })
    server.keepAliveTimeout = 30_000
    return server
  }

  private onHttp (req: IncomingMessage, res: ServerResponse): void {
    const reply = (status: number, body: string, type = 'application/json'): void => {
      res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) })
      res.end(body)
    }
    if (req.method === 'GET' && (req.url === '/health' || req.url === '/')) { reply(200, 'ok', 'text/plain'); return }
    if (req.method !== 'POST') { reply(405, 'use POST with a JSON-RPC 2.0 body', 'text/plain'); return }
    const type = req.headers['content-type'] ?? ''
    if (!type.toLowerCase().startsWith('application/json')) { reply(415, 'content-type must be application/json', 'text/plain'); return }
    const chunks: Buffer[] = []
    let size = 0
    req.on('data', (c: Buffer) => {
      size += c.length
      if (size > MAX_BODY_BYTES) { reply(413, `request body over ${MAX_BODY_BYTES} bytes`, 'text/plain'); req.destroy() }
      else chunks.push(c)
    })
    req.on('end', () => {
      if (size > MAX_BODY_BYTES) return
      if (this.rpc === undefined || this.state !== 'running') { reply(503, 'the local chain is starting or stopping', 'text/plain'); return }
      this.rpc.server.receiveJSON(Buffer.concat(chunks).toString('utf8'), {}).then(response => {
        if (response === null) { res.writeHead(204); res.end(); return }
        reply(200, JSON.stringify(response))
      }, (err: unknown) => {
        this.log.error({ err }, 'RPC dispatch failed')
        reply(500, JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32603, message: 'Internal error' } }))
      })
    })
  }

  private onWebSocket (ws: WebSocket): void {
    const conn = new PubsubConnection(message => {
      if (ws.readyState !== ws.OPEN) return
      if (ws.bufferedAmount > MAX_WS_BUFFERED_BYTES) { ws.terminate(); return } // a client that does not read
      ws.send(JSON.stringify(message))
    })
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (isBinary) { conn.send({ jsonrpc: '2.0', id: null, error: { code: -32700, message: 'Parse error: binary frames are not JSON' } }); return }
      this.rpc.server.receiveJSON(data.toString('utf8'), { connection: conn }).then(response => {
        if (response !== null) conn.send(response)
        const deferred = conn.deferred
        conn.deferred = []
        for (const f of deferred) f()
      }, (err: unknown) => { this.log.error({ err }, 'WebSocket RPC dispatch failed') })
    })
    ws.on('close', () => { this.rpc.disconnect(conn) })
    ws.on('error', () => { this.rpc.disconnect(conn) })
  }

  // ---- stop --------------------------------------------------------------------------------------

  /** Stops serving, persists the open slot, closes the ledger and removes ready.json. Idempotent. */
  async stop (): Promise<void> {
    this.stopped ??= this.stopOnce()
    await this.stopped
  }

  private async stopOnce (): Promise<void> {
    const wasRunning = this.state === 'running' && this.rpc !== undefined
    this.state = 'stopping'
    if (this.timer !== undefined) clearTimeout(this.timer)
    for (const s of this.http) { s.close(); s.closeAllConnections() }
    if (this.wss !== undefined) {
      // a normal closure (1000), completed before the process exits: web3.js's client does not try
      // to reconnect to a chain that stopped (it does after an abnormal one, which suits a crash)
      const clients = [...this.wss.clients]
      const closed = Promise.all(clients.map(async c => await new Promise<void>(r => { c.once('close', () => { r() }); c.close(1000, 'local chain stopping') })))
      await Promise.race([closed, sleep(500)])
      for (const c of clients) c.terminate()
      this.wss.close()
    }
    try {
      if (wasRunning) await this.persist(this.bank.closeSlot()).catch(() => {})
      if (this.ledger !== undefined) await this.ledger.close().catch((err: unknown) => { this.log.error({ err }, 'closing the ledger failed') })
    } finally {
      this.rpc?.close()
      if (this.ready !== undefined) rmSync(readyPath(this.dir), { force: true })
      this.ledger?.unlock()
      this.state = 'stopped'
      if (wasRunning) this.log.info({ slot: this.bank.slot - 1 }, 'local chain stopped')
    }
  }
}

function listenOn (server: Server, host: string, port: number): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const onError = (err: Error): void => { reject(err) }
    server.once('error', onError)
    server.listen(port, host, () => {
      server.off('error', onError)
      const addr = server.address()
      resolvePort(typeof addr === 'object' && addr !== null ? addr.port : port)
    })
  })
}

// ---- CLI -----------------------------------------------------------------------------------------

async function main (argv: string[]): Promise<void> {
  const program = new Command()
    .name('bitflow-chain')
    .description('BitFlow local Solana chain: LiteSVM with the settlement program behind Solana JSON-RPC + WebSocket')
    .requiredOption('--dir <path>', 'chain data directory (ledger, genesis, ready.json)')
    .option('--host <address>', 'address to listen on', '127.0.0.1')
    .option('--port <n>', 'JSON-RPC port (WebSocket on port + 1 too); 0 picks a free pair', String(DEFAULT_PORT))
    .option('--slot-ms <ms>', 'slot time in milliseconds', String(DEFAULT_SLOT_MS))
    .option('--blockhash-ttl-slots <n>', 'slots a blockhash stays valid (default: 150, or 60 s worth of slots when --slot-ms < 400)')
    .option('--program <path>', 'settlement program .so to deploy at genesis', defaultProgramPath())
    .option('--program-id <pubkey>', 'program id at genesis (default: a fresh key)')
    .addOption(new Option('--log-level <level>', 'log level').choices([...LOG_LEVELS]).default('info'))
    .addOption(new Option('--chain <kind>', 'chain implementation').choices(['litesvm', 'solana-test-validator']).default('litesvm'))
    .exitOverride()
  try {
    program.parse(argv)
  } catch (err) {
    process.exitCode = (err as { exitCode?: number }).exitCode === 0 ? 0 : 2 // --help is 0, option errors 2
    return
  }
  const o = program.opts<{ dir: string, host: string, port: string, slotMs: string, blockhashTtlSlots?: string, program: string, programId?: string, logLevel: LogLevel, chain: string }>()
  const logger = createLogger(o.logLevel)
  const port = Number(o.port)
  const slotMs = Number(o.slotMs)
  if (!Number.isInteger(port) || port < 0 || port > 65534) { logger.fatal(`--port ${o.port} is not a port number (0..65534)`); process.exitCode = 2; return }

  if (o.chain === 'solana-test-validator') {
    await runTestValidator(resolve(o.dir), port === 0 ? DEFAULT_PORT : port, o.program, slotMs, logger)
    return
  }

  const abort = new AbortController()
  let server: ChainServer
  try {
    server = new ChainServer({
    dir: o.dir, host: o.host, port, slotMs, blockhashTtlSlots: o.blockhashTtlSlots !== undefined ? Number(o.blockhashTtlSlots) : undefined, programPath: o.program, programId: o.programId, logger, signal: abort.signal,
      onFatal: () => { void server.stop().finally(() => { process.exit(1) }) }
    })
  } catch (err) {
    logger.fatal((err as Error).message)
    process.exitCode = 2
    return
  }
  const onSignal = (sig: string): void => {
    logger.info({ signal: sig }, 'stopping')
    abort.abort()
    void server.stop().then(() => { process.exit(0) })
  }
  process.once('SIGTERM', () => { onSignal('SIGTERM') })
  process.once('SIGINT', () => { onSignal('SIGINT') })
  try {
    await server.start()
  } catch (err) {
    const e = err as Error & { code?: string }
    logger.fatal({ code: e.code, err: e.code === undefined ? e : undefined }, e.message)
    process.exit(1)
  }
}

async function runTestValidator (dir: string, port: number, programSo: string, slotMs: number, logger: Logger): Promise<void> {
  mkdirSync(dir, { recursive: true })
  const abort = new AbortController()
  const onSignal = (): void => { abort.abort() }
  process.once('SIGTERM', onSignal)
  process.once('SIGINT', onSignal)
  try {
    const v = await startTestValidator({ dir, port, programSo, signal: abort.signal })
    const ready: ChainReady = { chain: 'solana-test-validator', rpcUrl: v.rpcUrl, wsUrl: v.wsUrl, programId: v.programId, genesisHash: '', pid: process.pid, slotMs, blockhashTtlSlots: 150, startedAt: new Date().toISOString() }
    try {
      const res = await fetch(v.rpcUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'getGenesisHash' }) })
      ready.genesisHash = (await res.json() as { result: string }).result
    } catch { /* optional */ }
    writeJsonAtomic(readyPath(dir), ready)
    logger.info(ready, 'solana-test-validator ready')
    abort.signal.addEventListener('abort', () => { v.child.kill('SIGTERM') }, { once: true })
    const code = await new Promise<number | null>(r => v.child.once('exit', r))
    rmSync(readyPath(dir), { force: true })
    process.exitCode = abort.signal.aborted ? 0 : (code ?? 1)
  } catch (err) {
    logger.fatal((err as Error).message)
    process.exitCode = 1
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  void main(process.argv)
}
