import { createServer, type Server } from 'node:http'
import { Registry, Counter, Gauge, Histogram, collectDefaultMetrics } from 'prom-client'
import type { Logger } from './logger.js'

/**
 * Every BitFlow metric is declared here, in one place, on a registry owned by one daemon. libp2p's
 * own metrics are registered on the same registry.
 */
export class BitflowMetrics {
  readonly registry = new Registry()

  readonly info = new Gauge({ name: 'bitflow_info', help: 'constant 1, labelled with the daemon identity', labelNames: ['version', 'network', 'roles', 'peer_id'] as const, registers: [this.registry] })
  readonly peers = new Gauge({ name: 'bitflow_peers', help: 'connected libp2p peers', registers: [this.registry] })
  readonly peerEvents = new Counter({ name: 'bitflow_peer_events_total', help: 'peer connect and disconnect events', labelNames: ['event'] as const, registers: [this.registry] })
  readonly gossipMessages = new Counter({ name: 'bitflow_gossip_messages_total', help: 'gossip messages by topic kind and validation verdict', labelNames: ['topic', 'verdict'] as const, registers: [this.registry] })
  readonly gossipBytes = new Counter({ name: 'bitflow_gossip_bytes_total', help: 'gossip payload bytes this daemon received (validated) and published, by topic kind', labelNames: ['topic', 'direction'] as const, registers: [this.registry] })
  readonly gossipPublished = new Counter({ name: 'bitflow_gossip_published_total', help: 'gossip messages this daemon published', labelNames: ['topic'] as const, registers: [this.registry] })
  readonly probeLatency = new Histogram({ name: 'bitflow_gossip_probe_latency_seconds', help: 'latency of swarm probes from their origin to this daemon', buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5], registers: [this.registry] })
  readonly rpcRequests = new Counter({ name: 'bitflow_rpc_requests_total', help: 'JSON-RPC requests by method and outcome', labelNames: ['method', 'outcome'] as const, registers: [this.registry] })
  readonly rpcDuration = new Histogram({ name: 'bitflow_rpc_request_duration_seconds', help: 'JSON-RPC handling time by method', labelNames: ['method'] as const, buckets: [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5], registers: [this.registry] })
  readonly rpcRefused = new Counter({ name: 'bitflow_rpc_refused_total', help: 'HTTP/WebSocket requests refused before JSON-RPC handling', labelNames: ['reason'] as const, registers: [this.registry] })
  readonly subscriptions = new Gauge({ name: 'bitflow_rpc_subscriptions', help: 'open WebSocket subscriptions', registers: [this.registry] })

  readonly livenessNodes = new Gauge({ name: 'bitflow_liveness_nodes', help: 'nodes in this daemon\'s liveness table by status', labelNames: ['status'] as const, registers: [this.registry] })
  readonly committeeRounds = new Counter({ name: 'bitflow_committee_rounds_total', help: 'committee rounds by outcome as seen by this daemon', labelNames: ['outcome'] as const, registers: [this.registry] })
  readonly committeeLastCertified = new Gauge({ name: 'bitflow_committee_last_certified_round', help: 'latest certified committee round', registers: [this.registry] })
  readonly committeeEquivocations = new Counter({ name: 'bitflow_committee_equivocations_total', help: 'committee members caught signing two different views or votes in one round', labelNames: ['oracle'] as const, registers: [this.registry] })
  readonly committeePublished = new Counter({ name: 'bitflow_committee_published_total', help: 'views and votes this oracle published', labelNames: ['type'] as const, registers: [this.registry] })
  readonly dhtProvides = new Counter({ name: 'bitflow_dht_provides_total', help: 'specialization provider records published, by outcome', labelNames: ['outcome'] as const, registers: [this.registry] })

  // content layer (daemon/content)
  readonly contentTransferBytes = new Counter({ name: 'bitflow_content_transfer_bytes_total', help: 'verified block bytes moved, by source (blocks protocol, bitswap) and direction', labelNames: ['source', 'direction'] as const, registers: [this.registry] })
  readonly contentSendBuffers = new Counter({ name: 'bitflow_content_send_buffers_total', help: 'buffers the block protocol read raw leaves into to serve them: reused once the connection encrypter had read them, or new', labelNames: ['kind'] as const, registers: [this.registry] })
  readonly contentFetches = new Counter({ name: 'bitflow_content_fetches_total', help: 'DAG fetches by the source that completed them and outcome', labelNames: ['source', 'outcome'] as const, registers: [this.registry] })
  readonly contentFetchDuration = new Histogram({ name: 'bitflow_content_fetch_duration_seconds', help: 'time to fetch a DAG from the network', buckets: [0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120], registers: [this.registry] })
  readonly contentBlocksRejected = new Counter({ name: 'bitflow_content_blocks_rejected_total', help: 'blocks from peers refused before storage, by reason', labelNames: ['reason'] as const, registers: [this.registry] })
  readonly contentPeersPenalized = new Counter({ name: 'bitflow_content_peers_penalized_total', help: 'peers dropped for sending content that does not match its CID or was not asked for', labelNames: ['reason'] as const, registers: [this.registry] })
  readonly registryRecords = new Counter({ name: 'bitflow_registry_records_total', help: 'taskpack registry DHT records checked by the validator, by verdict', labelNames: ['verdict'] as const, registers: [this.registry] })

  // agent scoring (daemon/services/agents.ts)
  readonly agentSubmissions = new Counter({ name: 'bitflow_agent_submissions_total', help: 'agent submissions by outcome (accepted, rejected)', labelNames: ['outcome'] as const, registers: [this.registry] })
  readonly agentRuns = new Counter({ name: 'bitflow_agent_runs_total', help: 'sandboxed agent runs (one agent on one task) by outcome', labelNames: ['outcome'] as const, registers: [this.registry] })
  readonly agentRounds = new Counter({ name: 'bitflow_agent_scoring_rounds_total', help: 'agent scoring rounds completed by this validator', registers: [this.registry] })

  constructor () {
    collectDefaultMetrics({ register: this.registry, prefix: 'bitflow_' })
  }
}

/** Serves `/metrics` in the Prometheus text format. */
export class MetricsServer {
  readonly #metrics: BitflowMetrics
  readonly #host: string
  readonly #port: number
  readonly #log: Logger
  #server: Server | undefined

  constructor (metrics: BitflowMetrics, host: string, port: number, log: Logger) {
    this.#metrics = metrics
    this.#host = host
    this.#port = port
    this.#log = log
  }

  get url (): string {
    const address = this.#server?.address()
    if (address == null || typeof address === 'string') throw new Error('metrics server is not listening')
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address
    return `http://${host}:${address.port}/metrics`
  }

  async start (): Promise<void> {
    const server = createServer((req, res) => {
      if (req.method !== 'GET' || (req.url !== '/metrics' && req.url?.startsWith('/metrics?') !== true)) {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found; metrics are at /metrics\n')
        return
      }
      this.#metrics.registry.metrics().then(text => {
        res.writeHead(200, { 'content-type': this.#metrics.registry.contentType }).end(text)
      }, (err: Error) => {
        this.#log.error({ err }, 'metrics collection failed')
        res.writeHead(500).end()
      })
    })
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(this.#port, this.#host, () => { server.off('error', reject); resolve() })
    })
    this.#server = server
    this.#log.info({ url: this.url }, 'metrics listening')
  }

  async stop (): Promise<void> {
    const server = this.#server
    this.#server = undefined
    if (server === undefined) return
    server.closeAllConnections()
    await new Promise<void>(resolve => server.close(() => resolve()))
  }
}
