import { readFileSync } from 'node:fs'
import { Type } from '@sinclair/typebox'
import { Ajv } from 'ajv'
import { LevelDatastore } from 'datastore-level'
import { MemoryDatastore } from 'datastore-core'
import { Genesis, genesisHash as hashGenesis } from '../protocols/genesis.js'
import { gossipTopic } from '../protocols/names.js'
import type { DaemonOptions } from './options.js'
import type { NetworkPreset } from './preset.js'
import { DataDir } from './datadir.js'
import type { Identity } from './identity.js'
import type { Logger } from './logger.js'
import { BitflowMetrics, MetricsServer } from './metrics.js'
import { createBitflowLibp2p, type BitflowLibp2p } from './network/libp2p.js'
import { PlaintextLeases } from './network/plaintext-leases.js'
import { GossipRouter } from './network/gossip.js'
import { RpcRegistry } from './rpc/registry.js'
import { RpcServer } from './rpc/server.js'
import { SubscriptionHub } from './rpc/subscriptions.js'
import { NodeInfo } from './rpc/types.js'
import { SERVICES } from './services/index.js'
import type { DaemonService, ServiceContext } from './services/service.js'
import { NetworkPresetError } from './errors.js'
import { softwareVersion } from './paths.js'

export interface RuntimeInfo {
  pid: number
  peerId: string
  solanaAddress: string
  roles: string[]
  network: string
  genesisHash: string
  rpcUrl: string
  metricsUrl: string | null
  multiaddrs: string[]
  startedAt: string
}

const validateGenesis = new Ajv({ strict: false }).compile(Genesis)

/** The network's genesis: from the preset when published, else from the genesis file. */
export function loadGenesis (options: DaemonOptions, preset: NetworkPreset): Genesis {
  if (options.genesisFile !== undefined) {
    let raw: unknown
    try {
      raw = JSON.parse(readFileSync(options.genesisFile, 'utf8'))
    } catch (err) {
      throw new NetworkPresetError(`cannot read genesis file ${options.genesisFile}: ${(err as Error).message}`)
    }
    if (!validateGenesis(raw)) throw new NetworkPresetError(`genesis file ${options.genesisFile} is invalid at '${validateGenesis.errors?.[0]?.instancePath ?? ''}': ${validateGenesis.errors?.[0]?.message ?? ''}`)
    if (raw.network !== options.network) throw new NetworkPresetError(`genesis file ${options.genesisFile} is for network '${raw.network}', not '${options.network}'`)
    return raw
  }
  if (preset.genesis !== null) return preset.genesis
  throw new NetworkPresetError(preset.local
    ? `network '${options.network}' has no fixed genesis: pass --genesis-file (a test net writes .testnet/genesis.json)`
    : `network '${options.network}' has not launched yet: its genesis is published at launch; until then pass --genesis-file`)
}

/**
 * One bitflowd process: data dir lock, libp2p, gossip, JSON-RPC, metrics and the role services,
 * started in dependency order and stopped in reverse.
 */
export class BitflowDaemon {
  readonly options: DaemonOptions
  readonly preset: NetworkPreset
  readonly genesis: Genesis
  readonly genesisHash: string
  readonly dataDir: DataDir
  readonly identity: Identity
  readonly log: Logger
  readonly metrics = new BitflowMetrics()
  readonly startedAt = new Date()
  #libp2p: BitflowLibp2p | undefined
  #datastore: LevelDatastore | undefined
  #rpc: RpcServer | undefined
  #metricsServer: MetricsServer | undefined
  #hub: SubscriptionHub | undefined
  #gossip: GossipRouter | undefined
  #services: DaemonService[] = []
  #started: DaemonService[] = []
  readonly #controller = new AbortController()
  readonly #plaintextLeases = new PlaintextLeases()
  #stopping: Promise<void> | undefined
  #rpcMethods: string[] = []

  constructor (options: DaemonOptions, preset: NetworkPreset, log: Logger) {
    this.options = options
    this.preset = preset
    this.log = log
    this.genesis = loadGenesis(options, preset)
    this.genesisHash = hashGenesis(this.genesis)
    this.dataDir = DataDir.init(options.dataDir, options.network).dataDir
    this.identity = this.dataDir.loadIdentity()
  }

  get libp2p (): BitflowLibp2p {
    if (this.#libp2p === undefined) throw new Error('daemon not started')
    return this.#libp2p
  }

  async start (): Promise<RuntimeInfo> {
    this.dataDir.lock()
    try {
      return await this.#start()
    } catch (err) {
      await this.stop()
      throw err
    }
  }

  async #start (): Promise<RuntimeInfo> {
    const o = this.options
    this.metrics.info.set({ version: softwareVersion(), network: o.network, roles: o.roles.join(','), peer_id: this.identity.peerId.toString() }, 1)

    this.#datastore = new LevelDatastore(this.dataDir.sub('datastore'))
    await this.#datastore.open()

    this.#libp2p = await createBitflowLibp2p({
      identity: this.identity,
      network: o.network,
      local: this.preset.local,
      listen: o.listen,
      announce: o.announce,
      bootstrap: o.bootstrap,
      maxConnections: o.connections.maxConnections,
      maxInboundPerSecondPerIp: o.connections.maxInboundPerSecondPerIp,
      allowList: o.connections.allowList,
      // libp2p's peer store and DHT records stay in memory: persisting them rewrote LevelDB on every
      // mesh graft/prune and identify, the hottest path of a busy daemon; the network rebuilds them
      datastore: new MemoryDatastore(),
      ...(o.metrics.enabled ? { metricsRegistry: this.metrics.registry } : {}),
      providerRecordTtlMs: this.preset.params.providerRecordTtlMs,
      scoredTopics: (['liveness', 'committee', 'execution', 'probe'] as const).map(k => gossipTopic(o.network, k)),
      plaintextLeases: this.#plaintextLeases
    })

    const registry = new RpcRegistry({ title: 'BitFlow daemon JSON-RPC', version: softwareVersion(), description: 'bitflowd JSON-RPC 2.0 over HTTP POST and WebSocket' })
    this.#hub = new SubscriptionHub(this.metrics)
    this.#gossip = new GossipRouter(this.#libp2p, o.network, this.metrics, this.log.child({ module: 'gossip' }))
    this.#buildServices(registry, this.#datastore)
    this.#registerNodeRpc(registry)
    this.#hub.register(registry)
    registry.add({
      name: 'rpc.discover',
      summary: 'The OpenRPC document describing every method this daemon serves',
      params: [],
      result: { name: 'openrpc', schema: Type.Object({ openrpc: Type.String(), methods: Type.Array(Type.Unknown()) }, { additionalProperties: true }) },
      mutating: false,
      handler: () => registry.openrpc()
    })

    this.#rpcMethods = registry.names()
    await this.#libp2p.start()
    this.#gossip.start()
    for (const service of this.#services) {
      await service.start?.()
      this.#started.push(service)
    }

    if (o.metrics.enabled) {
      this.#metricsServer = new MetricsServer(this.metrics, o.metrics.host, o.metrics.port, this.log.child({ module: 'metrics' }))
      await this.#metricsServer.start()
    }
    const token = this.dataDir.writeCookie()
    this.#rpc = new RpcServer(registry, { ...o.rpc, token }, this.log.child({ module: 'rpc' }), this.metrics)
    await this.#rpc.start()

    const info = this.runtimeInfo()
    this.dataDir.writeRuntime(info)
    this.log.info({ peerId: info.peerId, multiaddrs: info.multiaddrs, rpcUrl: info.rpcUrl, roles: o.roles, network: o.network }, 'bitflowd started')
    return info
  }

  #buildServices (registry: RpcRegistry, datastore: LevelDatastore): void {
    const byName = new Map<string, DaemonService>()
    const services = {
      get: <T extends DaemonService>(name: string): T => {
        const s = byName.get(name)
        if (s === undefined) throw new Error(`service ${name} is not running in this daemon`)
        return s as T
      },
      find: <T extends DaemonService>(name: string): T | undefined => byName.get(name) as T | undefined
    }
    for (const factory of SERVICES) {
      const ctx: ServiceContext = {
        options: this.options,
        preset: this.preset,
        genesis: this.genesis,
        genesisHash: this.genesisHash,
        dataDir: this.dataDir,
        identity: this.identity,
        libp2p: this.libp2p,
        plaintextLeases: this.#plaintextLeases,
        datastore,
        gossip: this.#gossip!,
        metrics: this.metrics,
        log: this.log.child({ module: factory.name }),
        registry,
        hub: this.#hub!,
        services,
        signal: this.#controller.signal
      }
      const service = factory.create(ctx)
      if (service === undefined) continue
      if (byName.has(factory.name)) throw new Error(`two services are named ${factory.name}`)
      byName.set(factory.name, service)
      this.#services.push(service)
    }
  }

  /** Names of the JSON-RPC methods this daemon serves (the table bound to the RPC server). */
  get rpcMethods (): string[] { return [...this.#rpcMethods] }

  runtimeInfo (): RuntimeInfo {
    return {
      pid: process.pid,
      peerId: this.identity.peerId.toString(),
      solanaAddress: this.identity.solanaAddress,
      roles: this.options.roles,
      network: this.options.network,
      genesisHash: this.genesisHash,
      rpcUrl: this.#rpc?.url ?? '',
      metricsUrl: this.#metricsServer?.url ?? null,
      multiaddrs: this.#libp2p?.getMultiaddrs().map(m => m.toString()) ?? [],
      startedAt: this.startedAt.toISOString()
    }
  }

  #registerNodeRpc (registry: RpcRegistry): void {
    registry.add({
      name: 'bitflow_nodeInfo',
      summary: 'Identity, roles, network, version, addresses and uptime of this daemon',
      params: [],
      result: { name: 'nodeInfo', schema: NodeInfo },
      mutating: false,
      handler: (): NodeInfo => {
        const info = this.runtimeInfo()
        return {
          peerId: info.peerId,
          solanaAddress: info.solanaAddress,
          roles: info.roles,
          network: info.network,
          genesisHash: info.genesisHash,
          version: softwareVersion(),
          listenAddresses: info.multiaddrs,
          uptimeSeconds: (Date.now() - this.startedAt.getTime()) / 1000,
          startedAt: info.startedAt,
          rpcUrl: info.rpcUrl,
          metricsUrl: info.metricsUrl
        }
      }
    })
  }

  /** Stops everything that started, in reverse order. Safe to call more than once. */
  async stop (): Promise<void> {
    this.#stopping ??= this.#stop()
    await this.#stopping
  }

  async #stop (): Promise<void> {
    const step = async (name: string, fn: () => unknown): Promise<void> => {
      try { await fn() } catch (err) { this.log.warn({ err }, `stopping ${name} failed`) }
    }
    this.#controller.abort()
    await step('rpc', async () => await this.#rpc?.stop())
    await step('subscriptions', () => this.#hub?.stop())
    await step('metrics', async () => await this.#metricsServer?.stop())
    for (const service of this.#started.reverse()) await step(service.name, async () => await service.stop?.())
    await step('gossip', () => this.#gossip?.stop())
    await step('libp2p', async () => await this.#libp2p?.stop())
    await step('datastore', async () => await this.#datastore?.close())
    if (this.dataDir.locked) {
      this.dataDir.removeRuntimeFiles()
      this.dataDir.unlock()
    }
    this.log.info('bitflowd stopped')
  }
}
