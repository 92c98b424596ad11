/** Errors of the execution protocol. Each carries a stable code that callers and RPC errors can map. */

export type ExecutionErrorCode =
  | 'ERR_EXECUTION_BAD_ID'
  | 'ERR_EXECUTION_BAD_MODEL'
  | 'ERR_EXECUTION_BAD_EVENT'
  | 'ERR_EXECUTION_NOT_REQUESTED'
  | 'ERR_EXECUTION_BAD_TIMING'
  | 'ERR_EXECUTION_BAD_VOTE'
  | 'ERR_EXECUTION_BAD_TENSOR'
  | 'ERR_EXECUTION_BAD_PARAMS'
  | 'ERR_EXECUTION_UNSAFE_PARAMS'

export class ExecutionError extends Error {
  readonly code: ExecutionErrorCode
  constructor (code: ExecutionErrorCode, message: string) {
    super(message)
    this.name = 'ExecutionError'
    this.code = code
  }
}
