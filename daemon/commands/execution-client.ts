/**
 * Client side of executions, shared by `bitflowd exec` and scripts/demo.ts: request with a default
 * fee, follow the `execution` WebSocket topic, wait (bounded) for a terminal state, and describe
 * transitions as one line each.
 */
import { randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Static } from '@sinclair/typebox'
import { BitflowClient, RpcCallError, type Subscription } from '../rpc/client.js'
import type { ExecutionTransitionEventSchema, ModelExecutionStatusSchema, RequestExecutionResultSchema } from '../rpc/types.js'

export type ExecutionStatus = Static<typeof ModelExecutionStatusSchema>
export type ExecutionTransition = Static<typeof ExecutionTransitionEventSchema>
export type RequestExecutionResult = Static<typeof RequestExecutionResultSchema>

export const TERMINAL_STATES: readonly string[] = ['completed', 'failed', 'cancelled']
export const isTerminal = (overallStatus: string): boolean => TERMINAL_STATES.includes(overallStatus)

/** A fresh execution id, chosen here so a subscription can start before the request. */
export function newExecutionId (prefix = 'x'): string {
  return `${prefix}-${randomBytes(16).toString('hex')}`
}

export interface ExecutionRequest {
  modelId: string
  /** model input name -> ipfs:// URI */
  inputs: Record<string, string>
  /** most stake-mint base units to escrow; default: the minimum fee the daemon quotes for the model */
  maxFee?: string
  executionId?: string
}

/**
 * bitflow_requestExecution. Without a maxFee it asks for 0 first: the daemon refuses a fee below the
 * model's minimum before it escrows anything and names that minimum, which is then requested.
 */
export async function requestExecution (client: BitflowClient, r: ExecutionRequest): Promise<RequestExecutionResult & { maxFee: string }> {
  const call = async (maxFee: string): Promise<RequestExecutionResult & { maxFee: string }> => ({
    ...await client.call<RequestExecutionResult>('bitflow_requestExecution', [{ modelId: r.modelId, inputs: r.inputs, maxFee, ...(r.executionId !== undefined ? { executionId: r.executionId } : {}) }]),
    maxFee
  })
  if (r.maxFee !== undefined) return await call(r.maxFee)
  try {
    return await call('0')
  } catch (err) {
    const data = err instanceof RpcCallError ? err.data as { code?: string, minimum?: string } | undefined : undefined
    if (data?.code !== 'ERR_EXECUTION_FEE_TOO_LOW' || typeof data.minimum !== 'string') throw err
    return await call(data.minimum)
  }
}

/** Subscribes to one execution's transitions (start it before the request so none is missed). */
export async function watchExecution (client: BitflowClient, executionId: string, onTransition: (e: ExecutionTransition) => void): Promise<Subscription> {
  return await client.subscribe<ExecutionTransition>('execution', { executionId }, onTransition)
}

export interface WaitResult {
  status: ExecutionStatus
  /** the deadline passed before a terminal state */
  timedOut: boolean
}

/** Polls bitflow_getExecutionStatus until the execution is completed, failed or cancelled, or the time is up. */
export async function waitForExecution (client: BitflowClient, executionId: string, options: { timeoutMs: number, pollMs?: number, signal?: AbortSignal }): Promise<WaitResult> {
  const deadline = Date.now() + options.timeoutMs
  for (;;) {
    const status = await client.call<ExecutionStatus>('bitflow_getExecutionStatus', [executionId], options.signal)
    if (isTerminal(status.overallStatus)) return { status, timedOut: false }
    const left = deadline - Date.now()
    if (left <= 0) return { status, timedOut: true }
    await sleep(Math.min(options.pollMs ?? 500, left), undefined, options.signal !== undefined ? { signal: options.signal } : {})
  }
}

/** Task number of `<modelId>/<n>`. */
export function taskNumber (taskId: string | undefined): string {
  return /\/(\d+)$/.exec(taskId ?? '')?.[1] ?? String(taskId)
}

const shortPeer = (p: string): string => p.length > 16 ? `…${p.slice(-8)}` : p

/** One line for a transition: `task 2 UNASSIGNED -> ASSIGNED (attempt 0, node …Ab12Cd34)`. */
export function describeTransition (e: ExecutionTransition, nodeName?: (peerId: string) => string | undefined): string {
  const what = e.scope === 'task' ? `task ${taskNumber(e.taskId)}` : 'execution'
  const extra: string[] = []
  if (e.attempt !== undefined && e.attempt !== null) extra.push(`attempt ${e.attempt}`)
  if (e.node !== undefined && e.node !== null) extra.push(`node ${nodeName?.(e.node) ?? shortPeer(e.node)}`)
  if (e.reason !== undefined && e.reason !== '') extra.push(e.reason)
  const change = e.from === e.to ? e.to : `${e.from} -> ${e.to}`
  return `${what} ${change}${extra.length > 0 ? ` (${extra.join(', ')})` : ''}`
}

/** Multi-line summary of a status: overall state, each task, the outputs. */
export function describeStatus (s: ExecutionStatus): string {
  const lines = [`execution ${s.id}: ${s.overallStatus}${s.reason !== null ? ` (${s.reason})` : ''}`, `  model ${s.modelId}, fee ${s.fee}, requested at slot ${s.requestSlot}${s.account !== null ? `, account ${s.account}` : ''}`]
  for (const t of s.taskStatuses) {
    const outs = Object.entries(t.outputUris).map(([k, v]) => `${k}=${v}`).join(' ')
    lines.push(`  task ${t.task}  ${t.status.padEnd(20)} ${t.attempt !== null ? `attempt ${t.attempt}` : ''}${t.assignedNode !== null ? ` node ${t.assignedNode}` : ''}${t.unverifiable ? ' (unverifiable: no second node holds its dataset; not sampled, paid less)' : ''}${outs !== '' ? `  ${outs}` : ''}`)
    for (const f of t.failures) lines.push(`      attempt ${f.attempt} failed on ${f.node}: ${f.reason}`)
  }
  for (const [name, uri] of Object.entries(s.outputUris)) lines.push(`  output ${name}: ${uri ?? '(not yet)'}`)
  return lines.join('\n')
}
