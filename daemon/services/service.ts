import type { Datastore } from 'interface-datastore'
import type { Genesis } from '../../protocols/genesis.js'
import type { DaemonOptions } from '../options.js'
import type { NetworkPreset } from '../preset.js'
import type { DataDir } from '../datadir.js'
import type { Identity } from '../identity.js'
import type { Logger } from '../logger.js'
import type { BitflowMetrics } from '../metrics.js'
import type { PlaintextLeases } from '../network/plaintext-leases.js'
import type { BitflowLibp2p } from '../network/libp2p.js'
import type { GossipRouter } from '../network/gossip.js'
import type { RpcRegistry } from '../rpc/registry.js'
import type { SubscriptionHub } from '../rpc/subscriptions.js'

/**
 * A daemon service: built by its factory before the network starts (so it can add gossip topics,
 * RPC methods and subscription topics), started after libp2p is up, stopped in reverse order.
 */
export interface DaemonService {
  readonly name: string
  start?: () => Promise<void> | void
  stop?: () => Promise<void> | void
}

/** Earlier services, by name, for the ones that depend on them. */
export interface ServiceDirectory {
  get: <T extends DaemonService>(name: string) => T
  find: <T extends DaemonService>(name: string) => T | undefined
}

export interface ServiceContext {
  options: DaemonOptions
  preset: NetworkPreset
  genesis: Genesis
  genesisHash: string
  dataDir: DataDir
  identity: Identity
  libp2p: BitflowLibp2p
  /** the libp2p encrypter reports here when it has read a leased send buffer */
  plaintextLeases: PlaintextLeases
  datastore: Datastore
  gossip: GossipRouter
  metrics: BitflowMetrics
  /** a child logger named after the service */
  log: Logger
  registry: RpcRegistry
  hub: SubscriptionHub
  services: ServiceDirectory
  /** aborted when the daemon stops */
  signal: AbortSignal
}

export interface ServiceFactory {
  /** the service's name: its logger's module name, and its key in the service directory */
  name: string
  /** returns the service, or undefined when this daemon's roles do not need it */
  create: (ctx: ServiceContext) => DaemonService | undefined
}
