/**
 * `bitflowd exec run|status|cancel`: request an execution of a registered model through the running
 * daemon, follow it, and fetch its outputs.
 */
import { existsSync, statSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { InvalidArgumentError, type Command } from 'commander'
import { CID } from 'multiformats/cid'
import { DATASET_URI_PREFIX, parseDatasetUri } from '../../protocols/content/dataset.js'
import { BitflowError, OptionError } from '../errors.js'
import { RpcCallError, type BitflowClient, type Subscription } from '../rpc/client.js'
import type { GetTensorResult, PutTensorResult } from '../content/types.js'
import { addDaemonOptions, daemonCall, daemonClient, type DaemonFlags } from './daemon-client.js'
import {
  describeStatus, describeTransition, newExecutionId, requestExecution, taskNumber, waitForExecution, watchExecution,
  type ExecutionStatus, type ExecutionTransition
} from './execution-client.js'

interface RunFlags extends DaemonFlags {
  input?: string[]
  maxFee?: string
  wait?: boolean
  out?: string
  timeout?: number
  executionId?: string
}

interface ModelShape { inputs: Array<{ name: string }>, outputs: Array<{ name: string }>, tasks: unknown[] }

const DEFAULT_WAIT_SECONDS = 600

const collect = (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), value]

function feeArg (v: string): string {
  if (!/^(0|[1-9][0-9]{0,19})$/.test(v)) throw new InvalidArgumentError('must be a whole number of stake-mint base units, e.g. 50000')
  return v
}

function secondsArg (v: string): number {
  const n = Number(v)
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('must be a positive number of seconds')
  return n
}

/**
 * `--input name=path` pairs: names unique, every file a readable regular file; or `name=URI` for a
 * tensor already stored (`ipfs://<cid>`) or a node-local dataset (`dataset://<id>`), passed as is.
 * Checked before any daemon call.
 */
export function parseExecInputs (pairs: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {}
  for (const pair of pairs) {
    const i = pair.indexOf('=')
    if (i <= 0 || i === pair.length - 1) throw new OptionError(`--input '${pair}' must be name=path, e.g. --input x=./x.safetensors`)
    const name = pair.slice(0, i)
    const value = pair.slice(i + 1)
    if (out[name] !== undefined) throw new OptionError(`--input ${name} is given twice`)
    if (value.startsWith(DATASET_URI_PREFIX)) {
      try { parseDatasetUri(value) } catch (err) { throw new OptionError(`--input ${name}: ${(err as Error).message}`) }
      out[name] = value
      continue
    }
    if (value.startsWith('ipfs://')) {
      try { CID.parse(value.slice('ipfs://'.length)) } catch { throw new OptionError(`--input ${name}: ${value} is not ipfs://<CID>`) }
      out[name] = value
      continue
    }
    const path = resolve(value)
    const st = statSync(path, { throwIfNoEntry: false })
    if (st === undefined) throw new OptionError(`--input ${name}: ${path} does not exist`)
    if (!st.isFile()) throw new OptionError(`--input ${name}: ${path} is not a file`)
    out[name] = path
  }
  return out
}

const isInputUri = (v: string): boolean => v.startsWith(DATASET_URI_PREFIX) || v.startsWith('ipfs://')

async function loadModel (client: BitflowClient, modelId: string): Promise<ModelShape> {
  try {
    return (await client.call<{ model: ModelShape }>('bitflow_getModel', [modelId])).model
  } catch (err) {
    if (err instanceof RpcCallError && (err.code === -32004 || err.code === -32602 || err.code === -32010)) {
      throw new BitflowError('ERR_EXEC_UNKNOWN_MODEL', `unknown model ${modelId}: ${err.message.replace(/^bitflow_\w+: /, '')}; register it first (bitflowd model register FILE)`)
    }
    return await daemonCall(async () => { throw err })
  }
}

function checkInputNames (modelId: string, model: ModelShape, inputs: Record<string, string>): void {
  const want = model.inputs.map(i => i.name)
  const unknown = Object.keys(inputs).filter(n => !want.includes(n))
  const missing = want.filter(n => inputs[n] === undefined)
  const list = want.join(', ') || 'none'
  if (unknown.length > 0) throw new OptionError(`model ${modelId} has no input ${unknown.map(n => `'${n}'`).join(', ')} (its inputs: ${list})`)
  if (missing.length > 0) throw new OptionError(`model ${modelId} needs --input for ${missing.map(n => `'${n}'`).join(', ')} (its inputs: ${list})`)
}

/** Tracks task states from transitions, for the `k/n tasks verified` progress. */
function progressLine (total: number): (e: ExecutionTransition) => string {
  const states = new Map<string, string>()
  const started = performance.now()
  return e => {
    if (e.scope === 'task' && e.taskId !== undefined) states.set(e.taskId, e.to)
    const done = [...states.values()].filter(s => s === 'VERIFIED').length
    const t = ((performance.now() - started) / 1000).toFixed(1).padStart(6)
    return `[${t} s] ${describeTransition(e)}${e.scope === 'task' ? `  [${done}/${total} tasks verified]` : ''}`
  }
}

async function fetchOutputs (client: BitflowClient, status: ExecutionStatus, outDir: string): Promise<Record<string, string>> {
  const written: Record<string, string> = {}
  for (const [name, uri] of Object.entries(status.outputUris)) {
    if (uri === null) throw new BitflowError('ERR_EXECUTION_OUTPUT', `execution ${status.id} completed but output '${name}' has no URI`)
    const target = join(outDir, `${name}.safetensors`)
    await daemonCall(async () => await client.call<GetTensorResult>('bitflow_getTensor', [uri, { out: target }]))
    written[name] = target
  }
  return written
}

async function runExecution (modelId: string, flags: RunFlags): Promise<void> {
  const json = flags.json === true
  const wait = flags.wait === true || flags.out !== undefined
  const files = parseExecInputs(flags.input ?? [])
  if (flags.executionId !== undefined && !/^[A-Za-z0-9._:/@-]{1,128}$/.test(flags.executionId)) throw new OptionError('--execution-id must be 1..128 characters of [A-Za-z0-9._:/@-]')
  const client = daemonClient(flags)
  const model = await loadModel(client, modelId)
  checkInputNames(modelId, model, files)
  const outDir = resolve(flags.out ?? '.')
  if (wait) {
    for (const o of model.outputs) {
      const target = join(outDir, `${o.name}.safetensors`)
      if (existsSync(target)) throw new BitflowError('ERR_OUT_EXISTS', `${target} exists; refusing to overwrite it (pass another --out)`)
    }
  }

  const inputs: Record<string, string> = {}
  for (const [name, path] of Object.entries(files)) {
    if (isInputUri(path)) { inputs[name] = path; continue }
    const put = await daemonCall(async () => await client.call<PutTensorResult>('bitflow_putTensor', [{ path }]))
    inputs[name] = put.uri
    if (!json) process.stderr.write(`input ${name}: ${put.uri} (${put.tensors.map(t => `${t.name} ${t.dtype} [${t.shape.join(', ')}]`).join(', ')})\n`)
  }

  const executionId = flags.executionId ?? newExecutionId()
  const line = progressLine(model.tasks.length)
  let sub: Subscription | undefined
  if (wait) {
    sub = await watchExecution(client, executionId, e => { process.stderr.write(`${line(e)}\n`) }).catch((err: Error) => {
      process.stderr.write(`warning: cannot follow transitions over WebSocket (${err.message}); polling the status instead\n`)
      return undefined
    })
  }
  try {
    const req = await daemonCall(async () => await requestExecution(client, { modelId, inputs, executionId, ...(flags.maxFee !== undefined ? { maxFee: flags.maxFee } : {}) }))
    if (!wait) {
      if (json) { console.log(JSON.stringify({ ...req, inputs }, null, 2)); return }
      console.log(req.executionId)
      process.stderr.write(`requested: escrowed ${req.escrowed} (max fee ${req.maxFee}, ${req.pricePerTask} per task) at slot ${req.requestSlot}, account ${req.account}\nfollow it with: bitflowd exec status ${req.executionId}\n`)
      return
    }
    if (!json) {
      console.log(req.executionId)
      process.stderr.write(`requested: escrowed ${req.escrowed} (max fee ${req.maxFee}); waiting up to ${flags.timeout ?? DEFAULT_WAIT_SECONDS} s\n`)
    }
    const { status, timedOut } = await daemonCall(async () => await waitForExecution(client, executionId, { timeoutMs: (flags.timeout ?? DEFAULT_WAIT_SECONDS) * 1000 }))
    if (timedOut) throw new BitflowError('ERR_EXECUTION_TIMEOUT', `execution ${executionId} is still ${status.overallStatus} after ${flags.timeout ?? DEFAULT_WAIT_SECONDS} s; it goes on: bitflowd exec status ${executionId}`)
    if (status.overallStatus !== 'completed') {
      const failedTask = status.taskStatuses.find(t => t.status === 'FAILED' || t.failures.length > 0)
      const detail = failedTask?.failures.at(-1)
      throw new BitflowError(status.overallStatus === 'cancelled' ? 'ERR_EXECUTION_CANCELLED' : 'ERR_EXECUTION_FAILED',
        `execution ${executionId} ${status.overallStatus}: ${status.reason ?? 'no reason given'}${detail !== undefined ? ` (task ${taskNumber(failedTask!.taskId)}: ${detail.reason})` : ''}`)
    }
    await mkdir(outDir, { recursive: true })
    const written = await fetchOutputs(client, status, outDir)
    if (json) { console.log(JSON.stringify({ execution: status, outputs: written }, null, 2)); return }
    for (const path of Object.values(written)) console.log(path)
    process.stderr.write(`completed: ${Object.keys(written).length} output(s) written to ${outDir}\n`)
  } finally {
    await sub?.close().catch(() => {})
  }
}

/** `bitflowd exec run|status|cancel`. */
export function registerExecCommands (program: Command): Command {
  const exec = program.command('exec').description('request executions of registered models through the running daemon, follow them and fetch their outputs')

  addDaemonOptions(exec.command('run')
    .description('store the inputs, request an execution of <modelId> (escrowing the fee on chain) and print its id; with --wait, follow it and write the outputs')
    .argument('<modelId>', 'a registered model id (bitflowd model register)'))
    .option('--input <name=path>', 'a model input: a safetensors file, ipfs://<cid> of a stored tensor, or dataset://<id> of a node-local dataset (repeatable, one per model input)', collect)
    .option('--max-fee <units>', 'most stake-mint base units to escrow (default: the minimum fee the daemon quotes for the model)', feeArg)
    .option('--wait', 'follow the execution: print each state transition, then write every model output to --out')
    .option('--out <dir>', 'with --wait (implied): directory for <output name>.safetensors (default: the current directory; existing files are never overwritten)')
    .option('--timeout <seconds>', `with --wait: give up waiting after this long (default ${DEFAULT_WAIT_SECONDS}); the execution goes on`, secondsArg)
    .option('--execution-id <id>', 'choose the execution id (default: random)')
    .option('--json', 'print the result as JSON (transitions still go to stderr)')
    .action(async (modelId: string, flags: RunFlags) => { await runExecution(modelId, flags) })

  addDaemonOptions(exec.command('status')
    .description('an execution\'s state, each task\'s state, node and outputs')
    .argument('<executionId>', 'execution id'))
    .option('--json', 'print as JSON')
    .action(async (executionId: string, flags: DaemonFlags) => {
      const s = await daemonCall(async () => await daemonClient(flags).call<ExecutionStatus>('bitflow_getExecutionStatus', [executionId]))
      console.log(flags.json === true ? JSON.stringify(s, null, 2) : describeStatus(s))
    })

  addDaemonOptions(exec.command('cancel')
    .description('cancel an execution this daemon requested: tasks not yet assigned are refunded on chain')
    .argument('<executionId>', 'execution id'))
    .option('--reason <text>', 'recorded with the cancellation')
    .option('--json', 'print as JSON')
    .action(async (executionId: string, flags: DaemonFlags & { reason?: string }) => {
      const r = await daemonCall(async () => await daemonClient(flags).call<{ executionId: string, refundedTasks: number, signature: string | null, status: string }>('bitflow_cancelExecution', [executionId, ...(flags.reason !== undefined ? [flags.reason] : [])]))
      if (flags.json === true) { console.log(JSON.stringify(r, null, 2)); return }
      console.log(`${r.executionId}: ${r.status}; refunded ${r.refundedTasks} unassigned task(s)${r.signature !== null ? ` (${r.signature})` : ''}`)
    })
  return exec
}
