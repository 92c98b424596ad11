import { spawn } from 'node:child_process'
import { existsSync, mkdirSync, openSync, closeSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { DataDir, processAlive, writeAtomic } from '../../daemon/datadir.js'
import { projectRoot, DAEMON_NODE_FLAGS } from '../../daemon/paths.js'
import { BitflowClient } from '../../daemon/rpc/client.js'
import type { Genesis } from '../../protocols/genesis.js'
import type { RuntimeInfo } from '../../daemon/node.js'
import { genesisHash as hashGenesis } from '../../protocols/genesis.js'
import type { SettlementParams } from '../../daemon/preset.js'
import { setupTestnetChain, fundTestnetOperators, stopTestnetChain, testnetChainRunning, type TestnetChain } from './testnet-chain.js'

export type TestnetRole = 'oracle' | 'node' | 'validator'

export interface TestnetDaemon {
  name: string
  role: string
  peerId: string
  solanaAddress: string
  rpcUrl: string
  metricsUrl: string
  dataDir: string
  pid: number
  log: string
  multiaddrs: string[]
  /** the daemon's command line (after the node binary), so it can be restarted as it was */
  args: string[]
}

/** The public contract of `.testnet/testnet.json` that tools rely on. */
export interface TestnetFile {
  network: string
  createdAt: string
  genesisFile: string
  daemons: TestnetDaemon[]
  /** the local Solana chain with the settlement program; absent for a net started without one */
  chain?: TestnetChain
}

export interface UpOptions {
  oracles: number
  nodes: number
  validators: number
  /** extra daemon flags for every daemon */
  extraArgs?: string[]
  /** extra flags for one daemon, by name (oracle-1, node-2, ...) and role */
  argsFor?: (name: string, role: TestnetRole) => string[]
  /** start the local chain, settle the genesis on it and register every node (default true) */
  chain?: boolean
  /** which chain: the LiteSVM local chain (default) or solana-test-validator when it is on PATH */
  chainKind?: 'litesvm' | 'solana-test-validator'
  /** task ids each node and validator specializes in (default ['demo']); registered on chain and advertised */
  specializationsFor?: (name: string, role: TestnetRole) => string[]
  /** settlement parameters on chain that differ from the local preset (e.g. samplingProbability: 1) */
  settlement?: Partial<SettlementParams>
  /** how long to wait for the swarm to connect */
  timeoutMs?: number
  logLevel?: string
  onProgress?: (message: string) => void
}

export class TestnetError extends Error {
  readonly code = 'ERR_TESTNET'
  constructor (message: string) { super(message); this.name = 'TestnetError' }
}

const DAEMON_CLI = (): string => join(projectRoot(), 'dist', 'daemon', 'cli.js')

/** Launches and manages a local multi-process test net in one directory (default .testnet/). */
export class Testnet {
  readonly dir: string

  constructor (dir: string = join(projectRoot(), '.testnet')) {
    this.dir = resolve(dir)
  }

  get file (): string { return join(this.dir, 'testnet.json') }
  get genesisFile (): string { return join(this.dir, 'genesis.json') }

  load (): TestnetFile | undefined {
    if (!existsSync(this.file)) return undefined
    return JSON.parse(readFileSync(this.file, 'utf8')) as TestnetFile
  }

  /** Daemons of the current test net whose process is still the daemon we started. */
  running (): TestnetDaemon[] {
    return (this.load()?.daemons ?? []).filter(d => isOurDaemon(d))
  }

  async up (options: UpOptions): Promise<TestnetFile> {
    const progress = options.onProgress ?? (() => {})
    const { oracles, nodes, validators } = options
    if (oracles > 7) throw new TestnetError('a committee has at most 7 oracles (one settlement transaction); use --oracles 7 or fewer')
    const total = oracles + nodes + validators
    if (total < 1) throw new TestnetError('a test net needs at least one daemon')
    if (this.running().length > 0 || testnetChainRunning(this.dir)) throw new TestnetError(`a test net is already running in ${this.dir}; run \`npm run testnet -- down\` first`)
    if (!existsSync(DAEMON_CLI())) throw new TestnetError('bitflowd is not built; run npm run setup')

    rmSync(this.dir, { recursive: true, force: true })
    mkdirSync(this.dir, { recursive: true })

    const plan: Array<{ name: string, role: TestnetRole }> = [
      ...range(oracles).map(i => ({ name: `oracle-${i + 1}`, role: 'oracle' as const })),
      ...range(nodes).map(i => ({ name: `node-${i + 1}`, role: 'node' as const })),
      ...range(validators).map(i => ({ name: `validator-${i + 1}`, role: 'validator' as const }))
    ]
    const members = plan.map(p => {
      const dataDir = join(this.dir, p.name)
      const identity = DataDir.init(dataDir, 'local').dataDir.loadIdentity()
      return { ...p, dataDir, peerId: identity.peerId.toString(), solanaAddress: identity.solanaAddress }
    })
    const genesis: Genesis = {
      network: 'local',
      createdAt: new Date().toISOString(),
      committee: members.filter(m => m.role === 'oracle').map(m => ({ peerId: m.peerId, solanaAddress: m.solanaAddress })),
      admittedNodes: members.filter(m => m.role !== 'oracle').map(m => ({ peerId: m.peerId, solanaAddress: m.solanaAddress }))
    }
    writeFileSync(this.genesisFile, JSON.stringify(genesis, null, 2) + '\n')
    const specializations = (name: string, role: TestnetRole): string[] => role === 'oracle' ? [] : (options.specializationsFor?.(name, role) ?? ['demo'])

    let chain: TestnetChain | undefined
    if (options.chain !== false) {
      try {
        chain = await setupTestnetChain({
          dir: this.dir,
          genesisHash: hashGenesis(genesis),
          members: members.map(m => ({ name: m.name, role: m.role, dataDir: m.dataDir, specializations: specializations(m.name, m.role), taskSlots: 1 })),
          onProgress: progress,
          ...(options.settlement !== undefined ? { settlement: options.settlement } : {}),
          ...(options.chainKind !== undefined ? { kind: options.chainKind } : {})
        })
        await fundTestnetOperators({ dir: this.dir, chain, dataDirs: members.map(m => m.dataDir) })
        progress(`funded ${members.length} operator keys for execution escrows`)
      } catch (err) {
        await stopTestnetChain(this.dir).catch(() => {})
        throw err
      }
    }

    const started: Array<{ member: typeof members[number], pid: number, log: string, args: string[] }> = []
    const spawnOne = (member: typeof members[number], bootstrap: string[]): { member: typeof members[number], pid: number, log: string, args: string[] } => {
      const log = join(this.dir, `${member.name}.log`)
      const args = [DAEMON_CLI(), '--role', member.role, '--network', 'local', '--data-dir', member.dataDir,
        '--genesis-file', this.genesisFile, '--rpc-port', '0', '--metrics-port', '0',
        '--log-level', options.logLevel ?? 'info', ...bootstrap.flatMap(b => ['--bootstrap', b]), ...(options.extraArgs ?? []),
        ...(chain !== undefined ? ['--solana-rpc', chain.rpcUrl, '--program-id', chain.programId] : []),
        ...specializations(member.name, member.role).flatMap(s => ['--specialization', s]),
        ...(options.argsFor?.(member.name, member.role) ?? [])]
      const entry = { member, pid: spawnDaemonProcess(args, log), log, args }
      started.push(entry)
      return entry
    }

    const deadline = Date.now() + (options.timeoutMs ?? 90_000)
    try {
      // anchors first: up to three daemons that everyone else bootstraps from
      const anchors: string[] = []
      const anchorCount = Math.min(3, total)
      for (let i = 0; i < anchorCount; i++) {
        const entry = spawnOne(members[i]!, anchors.slice())
        const runtime = await waitForRuntime(entry, deadline)
        anchors.push(runtime.multiaddrs[0]!)
      }
      progress(`started ${anchorCount} anchor daemon(s)`)
      const rest = members.slice(anchorCount).map(m => spawnOne(m, anchors))
      const runtimes = new Map<string, RuntimeInfo>()
      for (const entry of started) runtimes.set(entry.member.name, await waitForRuntime(entry, deadline))
      progress(`all ${total} daemons answer; waiting for peers`)
      void rest

      const daemons: TestnetDaemon[] = started.map(({ member, pid, log, args }) => {
        const rt = runtimes.get(member.name)!
        return { name: member.name, role: member.role, peerId: rt.peerId, solanaAddress: rt.solanaAddress, rpcUrl: rt.rpcUrl, metricsUrl: rt.metricsUrl ?? '', dataDir: member.dataDir, pid, log, multiaddrs: rt.multiaddrs, args }
      })
      const file: TestnetFile = { network: 'local', createdAt: genesis.createdAt, genesisFile: this.genesisFile, daemons, ...(chain !== undefined ? { chain } : {}) }
      // written before the peer wait so that `down` can stop a net that failed to connect
      writeAtomic(this.file, JSON.stringify(file, null, 2) + '\n', 0o644)

      const want = Math.min(3, total - 1)
      await waitFor(async () => {
        const counts = await Promise.all(daemons.map(async d => await peerCount(d)))
        return counts.every(c => c >= want)
      }, deadline, async () => {
        const counts = await Promise.all(daemons.map(async d => `${d.name}=${await peerCount(d)}`))
        return `daemons did not all reach ${want} peers: ${counts.join(' ')}`
      })
      progress(`every daemon has at least ${want} peers`)
      return file
    } catch (err) {
      for (const s of started) killTree(s.pid, 'SIGKILL')
      await stopTestnetChain(this.dir).catch(() => {})
      throw err
    }
  }

  daemon (name: string): TestnetDaemon {
    const d = this.load()?.daemons.find(x => x.name === name)
    if (d === undefined) throw new TestnetError(`no daemon named ${name} in ${this.dir}`)
    return d
  }

  /** Stops one daemon (SIGTERM by default, SIGKILL to simulate a crash) and waits for it to exit. */
  async stopDaemon (name: string, signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 10_000): Promise<void> {
    const d = this.daemon(name)
    if (!isOurDaemon(d)) return
    killTree(d.pid, signal)
    const deadline = Date.now() + timeoutMs
    while (processAlive(d.pid) && Date.now() < deadline) await sleep(20)
    if (processAlive(d.pid)) { killTree(d.pid, 'SIGKILL'); while (processAlive(d.pid)) await sleep(20) }
  }

  /**
   * Starts a stopped daemon again with its data dir and flags, on the same libp2p port (so peers
   * that remember it can redial), bootstrapping from the daemons still running. Updates testnet.json.
   */
  async startDaemon (name: string, timeoutMs = 60_000): Promise<TestnetDaemon> {
    const file = this.load()
    const d = this.daemon(name)
    if (isOurDaemon(d)) throw new TestnetError(`${name} is already running (pid ${d.pid})`)
    const running = this.running().filter(x => x.name !== name)
    const args = stripFlag(stripFlag(d.args, '--bootstrap'), '--listen')
    const port = /\/tcp\/(\d+)/.exec(d.multiaddrs[0] ?? '')?.[1]
    args.push(...(port !== undefined ? ['--listen', `/ip4/127.0.0.1/tcp/${port}`] : []),
      ...running.slice(0, 3).flatMap(r => ['--bootstrap', r.multiaddrs[0]!]))
    const pid = spawnDaemonProcess(args, d.log)
    const rt = await waitForRuntime({ member: { name, dataDir: d.dataDir }, pid, log: d.log }, Date.now() + timeoutMs)
    const updated: TestnetDaemon = { ...d, pid, rpcUrl: rt.rpcUrl, metricsUrl: rt.metricsUrl ?? '', multiaddrs: rt.multiaddrs, args }
    if (file !== undefined) {
      file.daemons = file.daemons.map(x => x.name === name ? updated : x)
      writeAtomic(this.file, JSON.stringify(file, null, 2) + '\n', 0o644)
    }
    return updated
  }

  async down (options: { timeoutMs?: number } = {}): Promise<{ stopped: string[], killed: string[] }> {
    const daemons = this.running()
    for (const d of daemons) killTree(d.pid, 'SIGTERM')
    const deadline = Date.now() + (options.timeoutMs ?? 10_000)
    const killed: string[] = []
    for (const d of daemons) {
      while (processAlive(d.pid) && Date.now() < deadline) await sleep(50)
      if (processAlive(d.pid)) { killTree(d.pid, 'SIGKILL'); killed.push(d.name) }
    }
    // the chain last: daemons may settle on it until they stop
    const chain = await stopTestnetChain(this.dir)
    if (chain === 'killed') killed.push('chain')
    return { stopped: [...daemons.map(d => d.name), ...(chain !== 'not-running' ? ['chain'] : [])], killed }
  }

  async status (): Promise<Array<{ name: string, role: string, pid: number, alive: boolean, peers: number | null, rpcUrl: string, peerId: string }>> {
    const file = this.load()
    if (file === undefined) return []
    return await Promise.all(file.daemons.map(async d => {
      const alive = isOurDaemon(d)
      return { name: d.name, role: d.role, pid: d.pid, alive, peers: alive ? await peerCount(d) : null, rpcUrl: d.rpcUrl, peerId: d.peerId }
    }))
  }

  client (d: TestnetDaemon): BitflowClient {
    return new BitflowClient(d.rpcUrl, { token: readFileSync(join(d.dataDir, 'rpc.cookie'), 'utf8').trim() })
  }
}

function range (n: number): number[] { return Array.from({ length: n }, (_, i) => i) }

/** Starts `node ARGS` detached (its own process group), output appended to `log`; returns its pid. */
function spawnDaemonProcess (args: string[], log: string): number {
  const fd = openSync(log, 'a')
  const child = spawn(process.execPath, [...DAEMON_NODE_FLAGS, ...args], { detached: true, stdio: ['ignore', fd, fd], env: cleanEnv() })
  closeSync(fd)
  child.unref()
  if (child.pid === undefined) throw new TestnetError(`could not start ${args.join(' ')}`)
  return child.pid
}

/** Removes every occurrence of a flag and its value. */
function stripFlag (args: string[], flag: string): string[] {
  const out: string[] = []
  for (let i = 0; i < args.length; i++) {
    if (args[i] === flag) { i++; continue }
    out.push(args[i]!)
  }
  return out
}

/** The daemon's environment: ours minus BITFLOW_* (a test net's daemons take flags only). */
function cleanEnv (): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('BITFLOW_')))
}

async function peerCount (d: { rpcUrl: string }): Promise<number> {
  try {
    return (await new BitflowClient(d.rpcUrl, { timeoutMs: 15_000 }).peers()).length
  } catch {
    return -1
  }
}

/** The pid still belongs to the daemon we started (not a recycled pid). */
function isOurDaemon (d: { pid: number, dataDir: string }): boolean {
  if (!processAlive(d.pid)) return false
  try {
    const cmdline = readFileSync(`/proc/${d.pid}/cmdline`, 'utf8')
    return cmdline.includes(d.dataDir)
  } catch {
    return false
  }
}

function killTree (pid: number, signal: NodeJS.Signals): void {
  try { process.kill(pid, signal) } catch { /* gone */ }
}

async function waitForRuntime (entry: { member: { name: string, dataDir: string }, pid: number, log: string }, deadline: number): Promise<RuntimeInfo> {
  const path = join(entry.member.dataDir, 'runtime.json')
  for (;;) {
    if (existsSync(path)) {
      const rt = JSON.parse(readFileSync(path, 'utf8')) as RuntimeInfo
      if (rt.pid === entry.pid) return rt
    }
    if (!processAlive(entry.pid) || isZombie(entry.pid)) {
      throw new TestnetError(`${entry.member.name} exited during start-up; last log lines:\n${tail(entry.log, 15)}`)
    }
    if (Date.now() > deadline) throw new TestnetError(`${entry.member.name} did not start in time; last log lines:\n${tail(entry.log, 15)}`)
    await sleep(50)
  }
}

function isZombie (pid: number): boolean {
  try {
    return /\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'))
  } catch {
    return true
  }
}

export function tail (file: string, lines: number): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n')
  } catch {
    return '(no log)'
  }
}

async function waitFor (check: () => Promise<boolean>, deadline: number, explain: () => Promise<string>): Promise<void> {
  for (;;) {
    if (await check()) return
    if (Date.now() > deadline) throw new TestnetError(await explain())
    await sleep(200)
  }
}


