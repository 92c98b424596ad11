/** Standard JSON-RPC 2.0 codes plus BitFlow's documented application codes. */
export const RpcErrorCode = {
  ParseError: -32700,
  InvalidRequest: -32600,
  MethodNotFound: -32601,
  InvalidParams: -32602,
  InternalError: -32603,
  /** a state-changing method was called without the token from the data dir's rpc.cookie */
  Unauthorized: -32001,
  /** the method needs a role or service this daemon does not run */
  Unavailable: -32002,
  /** the named object (peer, subscription, ...) does not exist */
  NotFound: -32004,
  /** a libp2p dial or network operation failed */
  NetworkError: -32010
} as const

export const APPLICATION_ERRORS = [
  { code: RpcErrorCode.Unauthorized, message: 'Unauthorized', description: 'state-changing method called without the token from <data-dir>/rpc.cookie (Authorization: Bearer <token>)' },
  { code: RpcErrorCode.Unavailable, message: 'Unavailable', description: 'the method needs a role or service that this daemon does not run' },
  { code: RpcErrorCode.NotFound, message: 'Not found', description: 'the named object does not exist' },
  { code: RpcErrorCode.NetworkError, message: 'Network error', description: 'a libp2p dial or network operation failed' }
]

/** An error a method reports to the caller as a JSON-RPC error object. */
export class RpcError extends Error {
  readonly code: number
  readonly data: unknown
  constructor (code: number, message: string, data?: unknown) {
    super(message)
    this.name = 'RpcError'
    this.code = code
    this.data = data
  }
}

export const invalidParams = (message: string): RpcError => new RpcError(RpcErrorCode.InvalidParams, `invalid params: ${message}`)
