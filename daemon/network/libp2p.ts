import { createHash } from 'node:crypto'
import { createLibp2p, type Libp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@libp2p/noise'
import { yamux } from '@libp2p/yamux'
import { identify, type Identify } from '@libp2p/identify'
import { ping, type Ping } from '@libp2p/ping'
import { kadDHT, passthroughMapper, removePrivateAddressesMapper, type KadDHT } from '@libp2p/kad-dht'
import { bootstrap } from '@libp2p/bootstrap'
import { gossipsub, type GossipSub } from '@libp2p/gossipsub'
import { createPeerScoreParams, createPeerScoreThresholds } from '@libp2p/gossipsub/score'
import { prometheusMetrics } from '@libp2p/prometheus-metrics'
import type { Datastore } from 'interface-datastore'
import type { Registry } from 'prom-client'
import { createTopicScoreParams } from '@libp2p/gossipsub/score'
import type { Identity } from '../identity.js'
import { kadProtocol } from '../../protocols/names.js'
import { createNoiseCrypto } from './noise-crypto.js'
import type { PlaintextLeases } from './plaintext-leases.js'
import { yamuxOptions } from './muxer.js'

export type NetworkServices = {
  identify: Identify
  ping: Ping
  dht: KadDHT
  pubsub: GossipSub
}

export type BitflowLibp2p = Libp2p<NetworkServices>

export interface Libp2pConfig {
  identity: Identity
  network: string
  /** local networks keep loopback and LAN addresses in DHT records */
  local: boolean
  listen: string[]
  announce: string[]
  bootstrap: string[]
  maxConnections: number
  maxInboundPerSecondPerIp: number
  allowList: string[]
  datastore?: Datastore
  /** prometheus registry for libp2p's own metrics; none disables them */
  metricsRegistry?: Registry
  /** how long DHT provider records stay valid; records of dead nodes disappear after this */
  providerRecordTtlMs: number
  /** gossip topics whose invalid messages lower the sender's peer score */
  scoredTopics: string[]
  /** extra kad-dht record validators by key namespace (e.g. the taskpack registry's `bitflow-registry`) */
  dhtValidators?: Record<string, (key: Uint8Array, value: Uint8Array) => void | Promise<void>>
  /** told when the encrypter has read the buffers a sender leased (bulk transfers reuse them) */
  plaintextLeases?: PlaintextLeases
  /** extra kad-dht record selectors by key namespace */
  dhtSelectors?: Record<string, (key: Uint8Array, records: Uint8Array[]) => number | Promise<number>>
}

/** Largest gossip message any BitFlow topic accepts; topic validators enforce tighter limits. */
export const MAX_GOSSIP_MESSAGE_BYTES = 256 * 1024

/**
 * Builds the daemon's libp2p node: TCP + Noise + Yamux, identify, ping, a Kademlia DHT in server
 * mode on the network's private protocol, gossipsub with peer scoring, and bootstrap.
 */
export async function createBitflowLibp2p (config: Libp2pConfig): Promise<BitflowLibp2p> {
  const peerDiscovery = config.bootstrap.length > 0
    ? [bootstrap({ list: config.bootstrap, timeout: 100 })]
    : []

  return createLibp2p({
    privateKey: config.identity.privateKey,
    start: false,
    addresses: {
      listen: config.listen,
      announce: config.announce
    },
    transports: [tcp()],
    connectionEncrypters: [noise({ crypto: createNoiseCrypto(config.plaintextLeases) })],
    streamMuxers: [yamux(yamuxOptions)],
    peerDiscovery,
    ...(config.datastore !== undefined ? { datastore: config.datastore } : {}),
    ...(config.metricsRegistry !== undefined ? { metrics: prometheusMetrics({ registry: config.metricsRegistry, collectDefaultMetrics: false, preserveExistingMetrics: true }) } : {}),
    connectionManager: {
      maxConnections: config.maxConnections,
      inboundConnectionThreshold: config.maxInboundPerSecondPerIp,
      maxIncomingPendingConnections: 64,
      allow: config.allowList
    },
    services: {
      identify: identify(),
      ping: ping(),
      dht: kadDHT({
        protocol: kadProtocol(config.network),
        clientMode: false,
        // a private network: never fall back to the public IPFS DHT, and on local nets keep the
        // loopback addresses that are the only ones peers have
        peerInfoMapper: config.local ? passthroughMapper : removePrivateAddressesMapper,
        allowQueryWithZeroPeers: true,
        providers: { provideValidity: config.providerRecordTtlMs, cleanupInterval: Math.max(1000, Math.floor(config.providerRecordTtlMs / 2)) },
        reprovide: { validity: config.providerRecordTtlMs, interval: Math.max(1000, Math.floor(config.providerRecordTtlMs / 3)), threshold: Math.floor(config.providerRecordTtlMs / 2) },
        ...(config.dhtValidators !== undefined ? { validators: config.dhtValidators } : {}),
        ...(config.dhtSelectors !== undefined ? { selectors: config.dhtSelectors } : {})
      }),
      pubsub: gossipsub({
        emitSelf: false,
        allowPublishToZeroTopicPeers: true,
        ignoreDuplicatePublishError: true,
        fallbackToFloodsub: false,
        // a smaller mesh than gossipsub's default (6): every message costs D sends and about D
        // duplicate receptions per daemon, and a local test net runs dozens of daemons on 2 cores
        ...(config.local ? { D: 4, Dlo: 3, Dhi: 8, Dlazy: 4 } : {}),
        // IDONTWANT (gossipsub 1.2) saves bandwidth only for large messages; for our small
        // heartbeats it doubles the number of frames each daemon sends
        idontwantMinDataSize: 16 * 1024,
        // dedupe on a hash of the signed content before verifying signatures again
        fastMsgIdFn: (msg) => createHash('sha1')
          .update(msg.from ?? new Uint8Array())
          .update(msg.seqno ?? new Uint8Array())
          .update(msg.topic)
          .update(msg.data ?? new Uint8Array())
          .digest('base64'),
        maxInboundDataLength: MAX_GOSSIP_MESSAGE_BYTES + 4096,
        maxOutboundBufferSize: 8 * 1024 * 1024,
        scoreParams: createPeerScoreParams({
          // no IP colocation penalty: every peer of a loopback test net shares 127.0.0.1
          IPColocationFactorWeight: config.local ? 0 : -5,
          IPColocationFactorThreshold: 10,
          topics: Object.fromEntries(config.scoredTopics.map(topic => [topic, createTopicScoreParams({
            topicWeight: 1,
            // each message a validator rejects costs the sender; the penalty decays slowly
            invalidMessageDeliveriesWeight: -20,
            invalidMessageDeliveriesDecay: 0.97,
            timeInMeshWeight: 0,
            firstMessageDeliveriesWeight: 0,
            meshMessageDeliveriesWeight: 0,
            meshFailurePenaltyWeight: 0
          })]))
        }),
        scoreThresholds: createPeerScoreThresholds({
          gossipThreshold: -50,
          publishThreshold: -100,
          graylistThreshold: -200
        })
      })
    }
  })
}
