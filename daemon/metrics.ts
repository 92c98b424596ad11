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
  readonly gossipPublished = new Counter({ name: 'bitflow_gossip_published_total', help: 'gossip messages this daemon published', labelNames: ['topic'] as const, registers: [this.registry] })
  readonly probeLatency = new Histogram({ name: 'bitflow_gossip_probe_latency_seconds', help: 'latency of swarm probes from their origin to this daemon', buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5], registers: [this.registry] })
  readonly rpcRequests = new Counter({ name: 'bitflow_rpc_requests_total', help: 'JSON-RPC requests by method and outcome', labelNames: ['method', 'outcome'] as const, registers: [this.registry] })
  readonly rpcDuration = new Histogram({ name: 'bitflow_rpc_request_duration_seconds', help: 'JSON-RPC handling time by method', labelNames: ['method'] as const, buckets: [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5], registers: [this.registry] })
  readonly rpcRefused = new Counter({ name: 'bitflow_rpc_refused_total', help: 'HTTP/WebSocket requests refused before JSON-RPC handling', labelNames: ['reason'] as const, registers: [this.registry] })
  readonly subscriptions = new Gauge({ name: 'bitflow_rpc_subscriptions', help: 'open WebSocket subscriptions', registers: [this.registry] })

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
