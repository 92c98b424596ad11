/**
 * Execution and task ids: strings everywhere people and messages see them, 32 bytes on chain.
 *
 * Rule (stable; the chain, the daemon and any independent checker must agree on it):
 *
 *   executionKey(id) = SHA-256( "bitflow/execution-id/v1" || 0x0a || UTF-8(id) )
 *   taskKey(id)      = SHA-256( "bitflow/task-id/v1"      || 0x0a || UTF-8(id) )
 *
 * The domain strings keep an execution id and a task id that happen to be equal from mapping to
 * the same 32 bytes. An id is 1..128 characters of [A-Za-z0-9._:/@-] (the alphabet heartbeats use
 * for specializations), so it needs no normalization: the bytes hashed are exactly the string.
 *
 * A task of a registered model is named `<model CID>/<task number>` (modelTaskId); this is the
 * string a node declares as its specialization and the chain stores as taskKey(...) in the node
 * registry. Execution ids are chosen by the requester (typically random); the requester cannot use
 * that choice to steer selection, because the seed also depends on a slot hash that does not exist
 * yet when the execution is opened.
 */
import { createHash } from 'node:crypto'
import { ExecutionError } from './errors.js'

export const DOMAIN_EXECUTION_ID = 'bitflow/execution-id/v1'
export const DOMAIN_TASK_ID = 'bitflow/task-id/v1'
export const ID_PATTERN = '^[A-Za-z0-9._:/@-]{1,128}$'
const ID_RE = new RegExp(ID_PATTERN)

export function isValidId (id: unknown): id is string {
  return typeof id === 'string' && ID_RE.test(id)
}

function key (domain: string, id: string, what: string): Uint8Array {
  if (!isValidId(id)) throw new ExecutionError('ERR_EXECUTION_BAD_ID', `${what} '${String(id).slice(0, 140)}' is not 1..128 characters of [A-Za-z0-9._:/@-]`)
  return new Uint8Array(createHash('sha256').update(`${domain}\n${id}`, 'utf8').digest())
}

/** The 32-byte execution id the settlement program uses for an execution id string. */
export function executionKey (executionId: string): Uint8Array {
  return key(DOMAIN_EXECUTION_ID, executionId, 'execution id')
}

/** The 32-byte task id the settlement program uses for a task id string. */
export function taskKey (taskId: string): Uint8Array {
  return key(DOMAIN_TASK_ID, taskId, 'task id')
}

/** The task id string of task number `task` of the model whose id (CID string) is `modelId`. */
export function modelTaskId (modelId: string, task: number): string {
  if (!Number.isSafeInteger(task) || task < 1) throw new ExecutionError('ERR_EXECUTION_BAD_ID', `task number ${task} is not a positive integer`)
  const id = `${modelId}/${task}`
  if (!isValidId(id)) throw new ExecutionError('ERR_EXECUTION_BAD_ID', `model id '${modelId.slice(0, 140)}' does not make a valid task id`)
  return id
}

/** Splits `<model CID>/<task number>` back into its parts, or undefined when it is not of that form. */
export function parseModelTaskId (taskId: string): { modelId: string, task: number } | undefined {
  const m = /^(.+)\/([1-9][0-9]{0,9})$/.exec(taskId)
  if (m === null || !isValidId(taskId)) return undefined
  return { modelId: m[1]!, task: Number(m[2]) }
}

export const toHex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex')
