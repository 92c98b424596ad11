import { BitflowError } from '../../daemon/errors.js'

/** Solana JSON-RPC error codes the local chain returns besides the JSON-RPC 2.0 standard ones. */
export const RpcErrorCode = {
  ParseError: -32700,
  InvalidRequest: -32600,
  MethodNotFound: -32601,
  InvalidParams: -32602,
  InternalError: -32603,
  /** sendTransaction preflight simulation failed (Solana's JSON_RPC_SERVER_ERROR_SEND_TRANSACTION_PREFLIGHT_FAILURE) */
  PreflightFailure: -32002,
  /** Solana's JSON_RPC_SERVER_ERROR_TRANSACTION_SIGNATURE_VERIFICATION_FAILURE */
  SignatureVerificationFailure: -32003,
  /** Solana's JSON_RPC_SERVER_ERROR_SLOT_SKIPPED / not available: used for getBlockTime of an unknown slot */
  SlotNotAvailable: -32004,
  /** Solana's JSON_RPC_SERVER_ERROR_TRANSACTION_PRECOMPILE_VERIFICATION_FAILURE / faucet refusals */
  FaucetRefused: -32010
} as const

/**
 * An error a JSON-RPC caller sees: a JSON-RPC code, an actionable message and optional data (for
 * preflight failures: `{ err, logs, accounts, unitsConsumed }` as a Solana validator sends them).
 */
export class ChainRpcError extends BitflowError {
  readonly rpcCode: number
  readonly data: unknown
  constructor (rpcCode: number, message: string, data?: unknown) {
    super('ERR_CHAIN_RPC', message)
    this.rpcCode = rpcCode
    this.data = data
  }
}

export const invalidParams = (message: string): ChainRpcError => new ChainRpcError(RpcErrorCode.InvalidParams, message)

/** The chain directory's ledger cannot be read (corrupt beyond a torn tail, or from another format). */
export class LedgerError extends BitflowError {
  constructor (message: string, options?: ErrorOptions) { super('ERR_CHAIN_LEDGER', message, options) }
}

/** Another local chain server holds the directory. */
export class ChainDirLockedError extends BitflowError {
  constructor (dir: string, pid: number) {
    super('ERR_CHAIN_DIR_LOCKED', `chain dir ${dir} is in use by another local chain server (pid ${pid}); stop it or pass a different --dir`)
  }
}

/** The program to preload is missing or unreadable. */
export class ProgramNotBuiltError extends BitflowError {
  constructor (path: string) {
    super('ERR_CHAIN_PROGRAM', `settlement program ${path} not found; run \`npm run build:program\` or pass --program <path.so>`)
  }
}

/** The local chain did not start (or a requested chain implementation is unavailable). */
export class ChainStartError extends BitflowError {
  constructor (message: string, options?: ErrorOptions) { super('ERR_CHAIN_START', message, options) }
}

/** A command-line option of the chain server is invalid. */
export class ChainOptionError extends BitflowError {
  constructor (message: string) { super('ERR_CHAIN_OPTION', message) }
}

/** A transaction sent by a helper (mint creation, funding) failed or was not confirmed. */
export class ChainTransactionError extends BitflowError {
  constructor (message: string, options?: ErrorOptions) { super('ERR_CHAIN_TRANSACTION', message, options) }
}
