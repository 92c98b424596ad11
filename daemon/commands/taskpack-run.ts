/**
 * `bitflowd taskpack run <dir>`: the author's local loop. Runs a taskpack in the sandbox on this
 * machine (bitflow's Docker engine, the full containment policy), streams the task's own stdout and
 * stderr as it runs, then prints its outputs (sizes, tensor shapes and dtypes), metrics and any
 * containment event. The authentication checks a node enforces are reported as warnings here.
 */
import { mkdtemp, readdir, readFile, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import type { Command } from 'commander'
import { BitflowError } from '../errors.js'
import { resolveParams, type JsonValue } from '../../protocols/taskpack/config.js'
import { collectTaskpack, listingChecksum } from '../../protocols/taskpack/pack.js'
import { formatSize } from '../../protocols/taskpack/manifest.js'
import { parseYamlLocated } from '../../protocols/taskpack/yaml.js'
import { decodeSafetensors } from '../../protocols/tensor/safetensors.js'
import { AUTH_CHECKS, authenticateTaskpack, defaultAuthPolicy, formatFinding, sandboxCapabilities, type AuthReport } from '../../sandbox/authenticate.js'
import { SandboxError } from '../../sandbox/errors.js'
import { SandboxRunner, type SandboxEvent, type SandboxResult } from '../../sandbox/runner.js'
import { stageRun } from '../../sandbox/stage.js'

export interface TaskpackRunFlags {
  input?: string[]
  config?: string
  timeout?: number
  out?: string
  seed?: number
  json?: boolean
}

export interface OutputSummary {
  path: string
  bytes: number
  tensors?: Array<{ name: string, dtype: string, shape: number[] }>
}

export interface TaskpackRunSummary {
  taskpack: { name: string, version: string, type: string, dir: string, cid?: string }
  status: SandboxResult['status']
  exitCode: number
  durationMs: number
  outDir: string
  outputs: OutputSummary[]
  skippedOutputs: SandboxResult['skippedOutputs']
  metrics?: unknown
  error?: unknown
  events: SandboxEvent[]
  resources: { memoryBytes: number, timeoutMs: number, cpus: number }
  checks: Record<string, { status: string, findings: string[], note?: string }>
}

const collect = (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), value]

function positiveNumber (what: string) {
  return (v: string): number => {
    const n = Number(v)
    if (!Number.isFinite(n) || n <= 0) throw new BitflowError('ERR_OPTION', `${what} must be a positive number, got '${v}'`)
    return n
  }
}

function seedArg (v: string): number {
  const n = Number(v)
  if (!Number.isSafeInteger(n) || n < 0 || n >= 2 ** 32) throw new BitflowError('ERR_OPTION', `--seed must be an integer from 0 to 4294967295, got '${v}'`)
  return n
}

/** `name=path` pairs, checked against the manifest's inputs. */
function parseInputs (pairs: string[], known: Set<string>): Record<string, string> {
  const out: Record<string, string> = {}
  for (const pair of pairs) {
    const i = pair.indexOf('=')
    const name = pair.slice(0, i)
    if (i <= 0 || i === pair.length - 1) throw new BitflowError('ERR_TASKPACK_INPUT', `--input '${pair}' must be name=path, e.g. --input dataset=./data.safetensors`)
    if (!known.has(name)) throw new BitflowError('ERR_TASKPACK_INPUT', `--input ${name}: the manifest has no input '${name}' (inputs: ${[...known].join(', ') || 'none'})`)
    out[name] = resolve(pair.slice(i + 1))
  }
  return out
}

/** Describes one event the way an author reads it. */
export function describeEvent (e: SandboxEvent): string {
  switch (e.type) {
    case 'started': return `started container ${e.containerId.slice(0, 12)}`
    case 'timeout': return `timeout: the task ran past its ${e.timeoutMs / 1000} s wall-clock limit and was killed (raise it with --timeout)`
    case 'oom': return `out of memory: the task exceeded ${formatSize(e.memoryBytes)} and was killed (spec.requirements.memory, at most the node's cap)`
    case 'stdout-cap': return `stdout over ${formatSize(e.capBytes)}: the rest was discarded`
    case 'stderr-cap': return `stderr over ${formatSize(e.capBytes)}: the rest was discarded`
    case 'output-full': return `output cap: /out is full at ${formatSize(e.capBytes)}; writes beyond it failed with ENOSPC`
    case 'output-skipped': return `output ${e.path} not copied (${e.reason})`
  }
}

async function describeOutputs (outDir: string, files: SandboxResult['outputs']): Promise<OutputSummary[]> {
  const out: OutputSummary[] = []
  for (const f of files) {
    const s: OutputSummary = { path: f.path, bytes: f.bytes }
    if (f.path.endsWith('.safetensors')) {
      try {
        const decoded = decodeSafetensors(await readFile(join(outDir, f.path)))
        s.tensors = [...decoded.tensors].map(([name, t]) => ({ name, dtype: t.dtype, shape: [...t.shape] }))
      } catch {
        // not valid safetensors: listed without tensors
      }
    }
    out.push(s)
  }
  return out
}

async function readJson (path: string): Promise<unknown> {
  try {
    const st = await stat(path)
    if (!st.isFile() || st.size > 1024 * 1024) return undefined
    return JSON.parse(await readFile(path, 'utf8'))
  } catch {
    return undefined
  }
}

async function loadParams (file: string | undefined): Promise<unknown> {
  if (file === undefined) return {}
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    throw new BitflowError('ERR_TASKPACK_CONFIG', `cannot read --config ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
  }
  const parsed = parseYamlLocated(text)
  if (!parsed.ok) throw new BitflowError('ERR_TASKPACK_CONFIG', parsed.issues.map(i => `${file}${i.line !== undefined ? ` line ${i.line}` : ''}: ${i.message}`).join('\n'))
  return parsed.doc.value ?? {}
}

function checkSummary (report: AuthReport): TaskpackRunSummary['checks'] {
  return Object.fromEntries(AUTH_CHECKS.map(c => [c, {
    status: report.checks[c].status,
    findings: report.checks[c].findings.map(formatFinding),
    ...(report.checks[c].note !== undefined ? { note: report.checks[c].note } : {})
  }]))
}

function asBitflow (err: unknown): unknown {
  if (err instanceof BitflowError) return err
  const code = (err as { code?: unknown } | null)?.code
  if (err instanceof SandboxError || (err instanceof Error && typeof code === 'string' && code.startsWith('ERR_'))) return new BitflowError(code as string, (err as Error).message, { cause: err })
  return err
}

/**
 * Runs the taskpack in `dir` once in the local sandbox. Task output is streamed to `io`; the summary
 * is returned (the caller prints it). Containment outcomes are results, not errors.
 */
export async function runTaskpackLocally (dir: string, flags: TaskpackRunFlags, io: { stdout: (b: Buffer | string) => void, stderr: (b: Buffer | string) => void, signal?: AbortSignal }): Promise<TaskpackRunSummary> {
  const root = resolve(dir)
  const runner = new SandboxRunner({ config: { owner: `cli-${process.pid}`, slots: 1 } })
  // the checks read the directory first; the run stages the same snapshot (compared by checksum)
  const report = await authenticateTaskpack(root, defaultAuthPolicy({
    mode: 'warn',
    capabilities: sandboxCapabilities(runner.config),
    skipDryRun: 'this local run is itself a run on the inputs'
  }), io.signal !== undefined ? { signal: io.signal } : {})
  const check = report.taskpack
  if (check === undefined || !report.ok) {
    const f = report.findings.find(x => x.severity === 'refuse') ?? report.findings[0]
    throw new BitflowError('ERR_TASKPACK_INVALID', `${root} cannot run: ${f !== undefined ? formatFinding(f) : 'not a taskpack'}; fix it (bitflowd taskpack validate ${dir})`)
  }
  const spec = check.parsed.manifest.spec
  const collected = await collectTaskpack(root)
  if (listingChecksum(collected.entries) !== listingChecksum(check.entries)) throw new BitflowError('ERR_PACK_CHANGED', `${root} changed while it was being checked; run again`)

  const given = parseInputs(flags.input ?? [], new Set(spec.inputs.map(i => i.name)))
  const inputs: Record<string, string | { file: string, bytes: Uint8Array }> = {}
  for (const i of spec.inputs) {
    const sample = spec.sample_inputs?.[i.name]
    if (given[i.name] !== undefined) inputs[i.name] = given[i.name]!
    else if (sample !== undefined) inputs[i.name] = { file: sample, bytes: collected.contents.get(sample) ?? new Uint8Array() }
    else if (i.optional !== true) throw new BitflowError('ERR_TASKPACK_INPUT', `input '${i.name}' has no sample (spec.sample_inputs) and was not given; pass --input ${i.name}=PATH`)
  }
  const rawParams = await loadParams(flags.config)
  try {
    resolveParams(check.config, check.defaults, rawParams, flags.config ?? 'parameters')
  } catch (err) { throw asBitflow(err) }

  const outDir = flags.out !== undefined ? resolve(flags.out) : await mkdtemp(join(tmpdir(), 'bitflow-run-'))
  if (flags.out !== undefined) {
    const existing = await readdir(outDir).catch(() => [] as string[])
    if (existing.length > 0) throw new BitflowError('ERR_OUTPUT_DIR_NOT_EMPTY', `--out ${outDir} is not empty; pass a new or empty directory`)
  }

  const staged = await stageRun(collected, { inputs, params: rawParams as Record<string, JsonValue>, seed: flags.seed ?? 0, taskId: 'local', ...(spec.entrypoint !== undefined ? { entrypoint: spec.entrypoint } : {}) })
  let result: SandboxResult
  try {
    await runner.start(io.signal !== undefined ? { signal: io.signal } : {})
    const job = { ...staged.sandboxJob(`local-${check.parsed.manifest.metadata.name}`.slice(0, 128), {
      memoryBytes: check.parsed.resources.memoryBytes,
      gpu: check.parsed.resources.gpu,
      ...(flags.timeout !== undefined ? { timeoutMs: Math.round(flags.timeout * 1000) } : {})
    }), outputDir: outDir }
    result = await runner.run(job, {
      ...(io.signal !== undefined ? { signal: io.signal } : {}),
      onStdout: c => { io.stdout(c) },
      onStderr: c => { io.stderr(c) },
      onEvent: e => { if (e.type !== 'started') io.stderr(`\n[sandbox] ${describeEvent(e)}\n`) }
    })
  } catch (err) {
    throw asBitflow(err)
  } finally {
    await runner.stop()
    try {
      const wiped = await staged.wipe()
      report.checks.cleanup = { status: 'passed', findings: [], note: `staged copy overwritten and removed: ${wiped.files} files, ${wiped.bytes} bytes` }
    } catch (err) {
      const finding = { check: 'cleanup' as const, code: 'AUTH_CLEANUP_FAILED', severity: 'warn' as const, message: (err as Error).message }
      report.checks.cleanup = { status: 'warned', findings: [finding] }
    }
  }
  return {
    taskpack: { name: check.parsed.manifest.metadata.name, version: check.parsed.manifest.metadata.version, type: spec.type, dir: root, ...(report.cid !== undefined ? { cid: report.cid } : {}) },
    status: result.status,
    exitCode: result.exitCode,
    durationMs: result.durationMs,
    outDir,
    outputs: await describeOutputs(outDir, result.outputs),
    skippedOutputs: result.skippedOutputs,
    metrics: await readJson(join(outDir, 'metrics.json')),
    error: await readJson(join(outDir, 'error.json')),
    events: result.events,
    resources: { memoryBytes: result.resources.memoryBytes, timeoutMs: result.resources.timeoutMs, cpus: result.resources.nanoCpus / 1e9 },
    checks: checkSummary(report)
  }
}

function human (bytes: number): string {
  if (bytes < 1024) return `${bytes} B`
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`
}

export function formatRunSummary (s: TaskpackRunSummary): string {
  const lines: string[] = []
  lines.push(`taskpack: ${s.taskpack.name}@${s.taskpack.version} (${s.taskpack.type})${s.taskpack.cid !== undefined ? `, CID ${s.taskpack.cid}` : ''}`)
  lines.push(`status: ${s.status} (exit ${s.exitCode}) in ${(s.durationMs / 1000).toFixed(2)} s; memory ${formatSize(s.resources.memoryBytes)}, ${s.resources.cpus} CPU, limit ${s.resources.timeoutMs / 1000} s`)
  const containment = s.events.filter(e => e.type !== 'started')
  lines.push(`containment events: ${containment.length === 0 ? 'none' : containment.length}`)
  for (const e of containment) lines.push(`  ${describeEvent(e)}`)
  lines.push(`outputs in ${s.outDir}:`)
  if (s.outputs.length === 0) lines.push('  (none)')
  for (const o of s.outputs) {
    lines.push(`  ${o.path}  ${human(o.bytes)}`)
    for (const t of o.tensors ?? []) lines.push(`    ${t.name}  ${t.dtype}  [${t.shape.join(', ')}]`)
  }
  for (const k of s.skippedOutputs) lines.push(`  ${k.path}  not copied (${k.reason})`)
  if (s.metrics !== undefined) lines.push(`metrics: ${JSON.stringify(s.metrics)}`)
  if (s.error !== undefined) lines.push(`task error: ${JSON.stringify(s.error)}`)
  lines.push('checks a node enforces (warnings in a local run):')
  for (const [name, c] of Object.entries(s.checks)) {
    lines.push(`  ${name.padEnd(13)} ${c.status}${c.note !== undefined ? ` (${c.note})` : ''}`)
    for (const f of c.findings) lines.push(`    warning ${f}`)
  }
  return lines.join('\n')
}

/** Adds `run` to the `taskpack` command. */
export function registerTaskpackRunCommand (taskpack: Command): Command {
  return taskpack.command('run')
    .description('run the taskpack in <dir> in the local sandbox: stream its output, then show outputs, metrics and containment events')
    .argument('<dir>', 'taskpack directory')
    .option('--input <name=path>', 'an input file (repeatable); inputs not given use spec.sample_inputs', collect)
    .option('--config <file>', 'parameters (YAML or JSON) over configs/default.yaml, checked against configs/schema.json')
    .option('--timeout <seconds>', 'wall-clock limit; the task is killed after it (default: the sandbox default, 60 s)', positiveNumber('--timeout'))
    .option('--out <dir>', 'where outputs are written (new or empty; default: a new temporary directory, printed)')
    .option('--seed <n>', 'the run\'s randomness seed (default 0)', seedArg)
    .option('--json', 'print the summary as JSON (task output goes to stderr)')
    .action(async (dir: string, flags: TaskpackRunFlags) => {
      const abort = new AbortController()
      const onSignal = (): void => { abort.abort(new Error('interrupted')) }
      process.once('SIGINT', onSignal)
      process.once('SIGTERM', onSignal)
      const json = flags.json === true
      try {
        if (!json) process.stderr.write(`running ${resolve(dir)} in the sandbox; task output follows\n`)
        const summary = await runTaskpackLocally(dir, flags, {
          stdout: b => { (json ? process.stderr : process.stdout).write(b) },
          stderr: b => { process.stderr.write(b) },
          signal: abort.signal
        })
        if (json) console.log(JSON.stringify(summary, null, 2))
        else console.log(`\n--- end of task output ---\n${formatRunSummary(summary)}`)
        if (summary.status === 'timeout') throw new BitflowError('ERR_TASK_TIMEOUT', `the task hit its ${summary.resources.timeoutMs / 1000} s limit and was killed; raise it with --timeout`)
        if (summary.status === 'oom') throw new BitflowError('ERR_TASK_OOM', `the task ran out of its ${formatSize(summary.resources.memoryBytes)} memory and was killed; lower its memory use or raise spec.requirements.memory (the node caps it)`)
        if (summary.status === 'failed') throw new BitflowError('ERR_TASK_FAILED', `the task exited with ${summary.exitCode}; see its stderr above${summary.error !== undefined ? ' and error.json' : ''}`)
      } finally {
        process.off('SIGINT', onSignal)
        process.off('SIGTERM', onSignal)
      }
    })
}
