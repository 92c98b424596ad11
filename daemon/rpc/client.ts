import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import WebSocket from 'ws'
import { JSONRPCClient, JSONRPCErrorException, type JSONRPCResponse } from 'json-rpc-2.0'
import type { NodeInfo, PeerInfo, ConnectResult, ProbePublishResult, ProbeRecord, PeerEvent } from './types.js'
import { SUBSCRIPTION_NOTIFICATION } from './subscriptions.js'

/** A JSON-RPC error returned by a daemon, with its code (see daemon/rpc/errors.ts). */
export class RpcCallError extends Error {
  readonly code: number
  readonly data: unknown
  constructor (method: string, code: number, message: string, data?: unknown) {
    super(`${method}: ${message} (code ${code})`)
    this.name = 'RpcCallError'
    this.code = code
    this.data = data
  }
}

export interface ClientOptions {
  /** token from <data-dir>/rpc.cookie, needed for state-changing methods */
  token?: string
  timeoutMs?: number
}

export interface Subscription {
  id: string
  close: () => Promise<void>
}

/**
 * Typed client for the bitflowd JSON-RPC API over HTTP, with WebSocket subscriptions. Used by the
 * CLI tools, scripts and tests.
 */
export class BitflowClient {
  readonly url: string
  readonly #token: string | undefined
  readonly #timeoutMs: number
  readonly #http: JSONRPCClient<{ signal?: AbortSignal }>

  constructor (url: string, options: ClientOptions = {}) {
    this.url = url.replace(/\/$/, '')
    this.#token = options.token
    this.#timeoutMs = options.timeoutMs ?? 30_000
    this.#http = new JSONRPCClient(async (request, params) => {
      const signal = AbortSignal.any([AbortSignal.timeout(this.#timeoutMs), ...(params?.signal !== undefined ? [params.signal] : [])])
      const res = await fetch(this.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(this.#token !== undefined ? { authorization: `Bearer ${this.#token}` } : {}) },
        body: JSON.stringify(request),
        signal
      })
      if (res.status === 200) {
        this.#http.receive(await res.json() as JSONRPCResponse)
      } else if (res.status !== 204) {
        throw new Error(`HTTP ${res.status} from ${this.url}: ${(await res.text()).trim()}`)
      }
    })
  }

  /** A client for the daemon running on a data dir: its URL from runtime.json, its token from rpc.cookie. */
  static fromDataDir (dataDir: string, options: Omit<ClientOptions, 'token'> = {}): BitflowClient {
    const runtime = JSON.parse(readFileSync(join(dataDir, 'runtime.json'), 'utf8')) as { rpcUrl: string }
    const token = readFileSync(join(dataDir, 'rpc.cookie'), 'utf8').trim()
    return new BitflowClient(runtime.rpcUrl, { ...options, token })
  }

  async call<T = unknown> (method: string, params?: unknown, signal?: AbortSignal): Promise<T> {
    try {
      return await this.#http.request(method, params, signal !== undefined ? { signal } : {}) as T
    } catch (err) {
      if (err instanceof JSONRPCErrorException) throw new RpcCallError(method, err.code, err.message, err.data)
      throw err
    }
  }

  async nodeInfo (): Promise<NodeInfo> { return await this.call('bitflow_nodeInfo') }
  async peers (): Promise<PeerInfo[]> { return await this.call('bitflow_peers') }
  async connect (multiaddr: string): Promise<ConnectResult> { return await this.call('bitflow_connect', [multiaddr]) }
  async publishProbe (options: { count?: number, ratePerSecond?: number, payloadBytes?: number } = {}): Promise<ProbePublishResult> {
    return await this.call('bitflow_publishProbe', options)
  }

  async probes (filter: { ids?: string[], origin?: string, sinceMs?: number } = {}): Promise<ProbeRecord[]> {
    return await this.call('bitflow_probes', [filter])
  }

  async discover (): Promise<{ openrpc: string, methods: Array<{ name: string }> }> { return await this.call('rpc.discover') }

  /** Opens a WebSocket for subscriptions and calls. */
  async socket (): Promise<BitflowSocket> {
    return await BitflowSocket.open(this.url.replace(/^http/, 'ws'), this.#token, this.#timeoutMs)
  }

  /** Subscribes on a dedicated WebSocket; close() ends both. */
  async subscribe<E = unknown> (topic: string, params: Record<string, unknown>, onEvent: (event: E) => void): Promise<Subscription> {
    const socket = await this.socket()
    try {
      const id = await socket.subscribe(topic, params, onEvent)
      return { id, close: async () => { await socket.close() } }
    } catch (err) {
      await socket.close()
      throw err
    }
  }

  async subscribePeers (onEvent: (event: PeerEvent) => void): Promise<Subscription> {
    return await this.subscribe('peers', {}, onEvent)
  }
}

/** One WebSocket connection: JSON-RPC calls plus subscription notifications. */
export class BitflowSocket {
  readonly #ws: WebSocket
  readonly #pending = new Map<number, { method: string, resolve: (v: unknown) => void, reject: (e: Error) => void }>()
  readonly #handlers = new Map<string, (event: unknown) => void>()
  readonly #timeoutMs: number
  #nextId = 1

  private constructor (ws: WebSocket, timeoutMs: number) {
    this.#ws = ws
    this.#timeoutMs = timeoutMs
    ws.on('message', data => { this.#onMessage(data.toString()) })
    ws.on('close', () => {
      for (const p of this.#pending.values()) p.reject(new Error(`WebSocket closed before ${p.method} answered`))
      this.#pending.clear()
    })
  }

  static async open (url: string, token: string | undefined, timeoutMs: number): Promise<BitflowSocket> {
    const ws = new WebSocket(url, { headers: token !== undefined ? { authorization: `Bearer ${token}` } : {}, handshakeTimeout: timeoutMs })
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => { resolve() })
      ws.once('error', reject)
      ws.once('unexpected-response', (_req, res) => { reject(new Error(`WebSocket refused with HTTP ${res.statusCode}`)) })
    })
    return new BitflowSocket(ws, timeoutMs)
  }

  #onMessage (text: string): void {
    let msg: { id?: number, result?: unknown, error?: { code: number, message: string, data?: unknown }, method?: string, params?: { subscription: string, result: unknown } }
    try { msg = JSON.parse(text) } catch { return }
    if (msg.method === SUBSCRIPTION_NOTIFICATION && msg.params !== undefined) {
      this.#handlers.get(msg.params.subscription)?.(msg.params.result)
      return
    }
    if (typeof msg.id !== 'number') return
    const pending = this.#pending.get(msg.id)
    if (pending === undefined) return
    this.#pending.delete(msg.id)
    if (msg.error !== undefined) pending.reject(new RpcCallError(pending.method, msg.error.code, msg.error.message, msg.error.data))
    else pending.resolve(msg.result)
  }

  async call<T = unknown> (method: string, params?: unknown): Promise<T> {
    const id = this.#nextId++
    return await new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id)
        reject(new Error(`${method} timed out after ${this.#timeoutMs} ms`))
      }, this.#timeoutMs)
      this.#pending.set(id, {
        method,
        resolve: v => { clearTimeout(timer); resolve(v as T) },
        reject: e => { clearTimeout(timer); reject(e) }
      })
      this.#ws.send(JSON.stringify({ jsonrpc: '2.0', id, method, ...(params !== undefined ? { params } : {}) }))
    })
  }

  async subscribe<E = unknown> (topic: string, params: Record<string, unknown>, onEvent: (event: E) => void): Promise<string> {
    const id = await this.call<string>('bitflow_subscribe', [topic, params])
    this.#handlers.set(id, onEvent as (e: unknown) => void)
    return id
  }

  async unsubscribe (id: string): Promise<void> {
    await this.call('bitflow_unsubscribe', [id])
    this.#handlers.delete(id)
  }

  async close (): Promise<void> {
    if (this.#ws.readyState === WebSocket.CLOSED) return
    await new Promise<void>(resolve => {
      this.#ws.once('close', () => { resolve() })
      this.#ws.close()
    })
  }
}
