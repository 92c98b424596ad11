import { createServer, type IncomingMessage, type ServerResponse, type Server } from 'node:http'
import { timingSafeEqual, randomUUID } from 'node:crypto'
import type { Duplex } from 'node:stream'
import { WebSocketServer, type WebSocket } from 'ws'
import { JSONRPCServer, createJSONRPCErrorResponse, type JSONRPCRequest, type JSONRPCResponse, type JSONRPCErrorResponse } from 'json-rpc-2.0'
import type { Logger } from '../logger.js'
import type { BitflowMetrics } from '../metrics.js'
import { BitflowError } from '../errors.js'
import { RpcError, RpcErrorCode } from './errors.js'
import type { RpcRegistry, CallContext, RpcSession } from './registry.js'

export interface RpcServerConfig {
  host: string
  port: number
  allowedHosts: string[]
  allowedOrigins: string[]
  maxRequestBytes: number
  maxBatchSize: number
  /** token for state-changing methods */
  token: string
}

const LOOPBACK_NAMES = ['127.0.0.1', 'localhost', '[::1]']

/**
 * JSON-RPC 2.0 over HTTP POST and WebSocket on one port. Defends the loopback API against web
 * pages in the user's browser: JSON content type only, Host and Origin checked (DNS rebinding,
 * cross-origin requests), size and batch caps, and a token for state-changing methods.
 */
export class RpcServer {
  readonly #registry: RpcRegistry
  readonly #config: RpcServerConfig
  readonly #log: Logger
  readonly #metrics: BitflowMetrics
  readonly #jsonrpc: JSONRPCServer<CallContext>
  readonly #controller = new AbortController()
  #server: Server | undefined
  #wss: WebSocketServer | undefined
  #allowedHosts = new Set<string>()

  constructor (registry: RpcRegistry, config: RpcServerConfig, log: Logger, metrics: BitflowMetrics) {
    this.#registry = registry
    this.#config = config
    this.#log = log
    this.#metrics = metrics
    // errors are mapped and logged by #mapError; the library's own console.warn is not wanted
    this.#jsonrpc = new JSONRPCServer<CallContext>({ errorListener: () => {} })
    this.#jsonrpc.mapErrorToJSONRPCErrorResponse = (id, error: unknown) => this.#mapError(id, error)
    this.#jsonrpc.applyMiddleware(async (next, request, ctx) => {
      const started = performance.now()
      const method = registry.has(request.method) ? request.method : 'unknown'
      const response = await next(request, ctx)
      this.#metrics.rpcDuration.observe({ method }, (performance.now() - started) / 1000)
      this.#metrics.rpcRequests.inc({ method, outcome: response?.error !== undefined ? `error_${response.error.code}` : 'ok' })
      return response
    })
  }

  get port (): number {
    const address = this.#server?.address()
    if (address == null || typeof address === 'string') throw new Error('RPC server is not listening')
    return address.port
  }

  get url (): string {
    const host = this.#config.host.includes(':') ? `[${this.#config.host}]` : this.#config.host
    return `http://${host}:${this.port}`
  }

  /** Registers every method of the registry with the framing library. Call after all methods are added. */
  #bindMethods (): void {
    for (const name of this.#registry.names()) {
      const spec = this.#registry.get(name)!
      this.#jsonrpc.addMethod(name, async (rawParams: unknown, ctx: CallContext) => {
        if (spec.mutating && !ctx.authorized) {
          throw new RpcError(RpcErrorCode.Unauthorized, `${name} changes state and needs the RPC token: send 'Authorization: Bearer <token>' with the token from <data-dir>/rpc.cookie`)
        }
        if (spec.websocketOnly === true && ctx.session === undefined) {
          throw new RpcError(RpcErrorCode.InvalidRequest, `${name} works only over a WebSocket connection to this same port`)
        }
        const params = this.#registry.normalizeParams(name, rawParams)
        return await spec.handler(params, ctx)
      })
    }
  }

  async start (): Promise<void> {
    this.#bindMethods()
    const server = createServer((req, res) => { this.#onHttp(req, res) })
    server.headersTimeout = 10_000
    server.requestTimeout = 60_000
    this.#wss = new WebSocketServer({ noServer: true, maxPayload: this.#config.maxRequestBytes })
    server.on('upgrade', (req, socket, head) => { this.#onUpgrade(req, socket, head) })
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(this.#config.port, this.#config.host, () => { server.off('error', reject); resolve() })
    })
    this.#server = server
    const port = this.port
    for (const name of [...LOOPBACK_NAMES, this.#config.host.includes(':') ? `[${this.#config.host}]` : this.#config.host]) this.#allowedHosts.add(`${name}:${port}`)
    for (const h of this.#config.allowedHosts) this.#allowedHosts.add((/:\d+$/.test(h) ? h : `${h}:${port}`).toLowerCase())
    this.#log.info({ url: this.url }, 'JSON-RPC listening')
  }

  async stop (): Promise<void> {
    this.#controller.abort()
    for (const ws of this.#wss?.clients ?? []) ws.terminate()
    this.#wss?.close()
    const server = this.#server
    this.#server = undefined
    if (server === undefined) return
    server.closeAllConnections()
    await new Promise<void>(resolve => server.close(() => resolve()))
  }

  #refuse (res: ServerResponse, status: number, reason: string, message: string): void {
    this.#metrics.rpcRefused.inc({ reason })
    res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' }).end(message + '\n')
  }

  /** Host and Origin checks shared by HTTP and WebSocket. Returns a refusal reason or undefined. */
  #checkBrowserDefences (req: IncomingMessage): { reason: string, message: string } | undefined {
    const host = req.headers.host
    if (host === undefined || !this.#allowedHosts.has(host.toLowerCase())) {
      return { reason: 'host', message: `forbidden Host header '${host ?? ''}': the API answers only to ${[...this.#allowedHosts].join(', ')} (add names with rpc.allowedHosts)` }
    }
    const origin = req.headers.origin
    if (origin !== undefined && !this.#config.allowedOrigins.includes(origin)) {
      return { reason: 'origin', message: `forbidden Origin '${origin}': browser pages may call the API only from origins in rpc.allowedOrigins` }
    }
    return undefined
  }

  #authorized (req: IncomingMessage): boolean {
    let presented: string | undefined
    const auth = req.headers.authorization
    if (auth?.startsWith('Bearer ') === true) presented = auth.slice(7).trim()
    if (presented === undefined && req.url !== undefined) {
      presented = new URL(req.url, 'http://x').searchParams.get('token') ?? undefined
    }
    if (presented === undefined) return false
    const a = Buffer.from(presented)
    const b = Buffer.from(this.#config.token)
    return a.length === b.length && timingSafeEqual(a, b)
  }

  #onHttp (req: IncomingMessage, res: ServerResponse): void {
    const path = new URL(req.url ?? '/', 'http://x').pathname
    if (path !== '/' && path !== '/rpc') { this.#refuse(res, 404, 'path', 'not found; JSON-RPC is served at / (HTTP POST and WebSocket)'); return }
    const refusal = this.#checkBrowserDefences(req)
    if (refusal !== undefined) { this.#refuse(res, 403, refusal.reason, refusal.message); return }
    if (req.method !== 'POST') { res.setHeader('allow', 'POST'); this.#refuse(res, 405, 'method', 'use HTTP POST with a JSON-RPC 2.0 body, or a WebSocket'); return }
    const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase()
    if (type !== 'application/json') { this.#refuse(res, 415, 'content_type', "Content-Type must be 'application/json'"); return }
    const declared = Number(req.headers['content-length'] ?? 0)
    if (declared > this.#config.maxRequestBytes) { this.#refuse(res, 413, 'size', `request body over ${this.#config.maxRequestBytes} bytes`); return }
    const authorized = this.#authorized(req)
    const chunks: Buffer[] = []
    let size = 0
    let tooLarge = false
    req.on('data', (chunk: Buffer) => {
      size += chunk.length
      if (size > this.#config.maxRequestBytes) {
        if (!tooLarge) { tooLarge = true; this.#refuse(res, 413, 'size', `request body over ${this.#config.maxRequestBytes} bytes`); req.destroy() }
        return
      }
      chunks.push(chunk)
    })
    req.on('end', () => {
      if (tooLarge) return
      const body = Buffer.concat(chunks).toString('utf8')
      this.#handleText(body, { authorized, signal: this.#controller.signal }).then(reply => {
        if (reply === undefined) { res.writeHead(204).end(); return }
        res.writeHead(200, { 'content-type': 'application/json' }).end(reply)
      }, (err: unknown) => {
        this.#log.error({ err }, 'RPC handling failed')
        res.writeHead(500).end()
      })
    })
  }

  /** One HTTP body or WebSocket frame: parse, cap the batch, dispatch. Returns the reply text. */
  async #handleText (text: string, ctx: CallContext): Promise<string | undefined> {
    let parsed: unknown
    try {
      parsed = JSON.parse(text)
    } catch (err) {
      this.#metrics.rpcRequests.inc({ method: 'unknown', outcome: `error_${RpcErrorCode.ParseError}` })
      return JSON.stringify(createJSONRPCErrorResponse(null, RpcErrorCode.ParseError, `parse error: the request is not valid JSON (${(err as Error).message})`))
    }
    if (Array.isArray(parsed)) {
      if (parsed.length === 0) return JSON.stringify(createJSONRPCErrorResponse(null, RpcErrorCode.InvalidRequest, 'invalid request: empty batch'))
      if (parsed.length > this.#config.maxBatchSize) {
        return JSON.stringify(createJSONRPCErrorResponse(null, RpcErrorCode.InvalidRequest, `invalid request: batch of ${parsed.length} exceeds the limit of ${this.#config.maxBatchSize}`))
      }
      const replies = await Promise.all(parsed.map(async item => await this.#handleOne(item, ctx)))
      const present = replies.filter((r): r is JSONRPCResponse => r !== null)
      return present.length > 0 ? JSON.stringify(present) : undefined
    }
    const reply = await this.#handleOne(parsed, ctx)
    return reply !== null ? JSON.stringify(reply) : undefined
  }

  async #handleOne (item: unknown, ctx: CallContext): Promise<JSONRPCResponse | null> {
    if (typeof item !== 'object' || item === null || (item as { jsonrpc?: unknown }).jsonrpc !== '2.0' || typeof (item as { method?: unknown }).method !== 'string') {
      const id = (item as { id?: unknown } | null)?.id
      return createJSONRPCErrorResponse(typeof id === 'string' || typeof id === 'number' ? id : null, RpcErrorCode.InvalidRequest, 'invalid request: expected {"jsonrpc":"2.0","method":string,"params"?,"id"?}')
    }
    // an id that is not a string, number or null cannot be echoed in a valid response: refuse the
    // request before its method runs (the framing library would run it and echo the id as is)
    const id = (item as { id?: unknown }).id
    if ('id' in item && id !== null && typeof id !== 'string' && typeof id !== 'number') {
      return createJSONRPCErrorResponse(null, RpcErrorCode.InvalidRequest, 'invalid request: id must be a string, a number or null')
    }
    const request = item as JSONRPCRequest
    if (!this.#registry.has(request.method)) {
      if (request.id === undefined) return null
      return createJSONRPCErrorResponse(request.id, RpcErrorCode.MethodNotFound, `method not found: '${request.method}'; rpc.discover lists every method`)
    }
    return await this.#jsonrpc.receive(request, ctx)
  }

  #mapError (id: JSONRPCRequest['id'], error: unknown): JSONRPCErrorResponse {
    if (error instanceof RpcError) return createJSONRPCErrorResponse(id ?? null, error.code, error.message, error.data)
    if (error instanceof BitflowError) return createJSONRPCErrorResponse(id ?? null, RpcErrorCode.InternalError, error.message, { code: error.code })
    this.#log.error({ err: error }, 'RPC method failed')
    return createJSONRPCErrorResponse(id ?? null, RpcErrorCode.InternalError, `internal error: ${(error as Error)?.message ?? String(error)}`)
  }

  #onUpgrade (req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const reject = (status: number, reason: string, message: string): void => {
      this.#metrics.rpcRefused.inc({ reason })
      socket.end(`HTTP/1.1 ${status} ${status === 403 ? 'Forbidden' : 'Not Found'}\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\n${message}\n`)
    }
    const path = new URL(req.url ?? '/', 'http://x').pathname
    if (path !== '/' && path !== '/rpc') { reject(404, 'path', 'not found'); return }
    const refusal = this.#checkBrowserDefences(req)
    if (refusal !== undefined) { reject(403, refusal.reason, refusal.message); return }
    const authorized = this.#authorized(req)
    this.#wss!.handleUpgrade(req, socket, head, ws => { this.#onWebSocket(ws, authorized) })
  }

  #onWebSocket (ws: WebSocket, authorized: boolean): void {
    const closers: Array<() => void> = []
    const session: RpcSession = {
      id: randomUUID(),
      notify: (method, params) => {
        if (ws.readyState !== ws.OPEN) return
        // a client that does not read its notifications is cut off rather than buffered forever
        if (ws.bufferedAmount > 16 * 1024 * 1024) { ws.terminate(); return }
        ws.send(JSON.stringify({ jsonrpc: '2.0', method, params }))
      },
      onClose: fn => { closers.push(fn) }
    }
    ws.on('message', (data, isBinary) => {
      if (isBinary) { ws.send(JSON.stringify(createJSONRPCErrorResponse(null, RpcErrorCode.InvalidRequest, 'invalid request: send JSON text frames'))); return }
      this.#handleText(data.toString(), { authorized, session, signal: this.#controller.signal }).then(reply => {
        if (reply !== undefined && ws.readyState === ws.OPEN) ws.send(reply)
      }, (err: unknown) => { this.#log.error({ err }, 'WebSocket RPC handling failed') })
    })
    ws.on('close', () => { for (const fn of closers.splice(0)) fn() })
    ws.on('error', err => { this.#log.debug({ err }, 'WebSocket error') })
  }
}
