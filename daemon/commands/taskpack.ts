import { mkdir, readdir, readFile, writeFile, stat } from 'node:fs/promises'
import { basename, dirname, join, resolve } from 'node:path'
import { Command, Option } from 'commander'
import { BitflowError } from '../errors.js'
import { projectRoot } from '../paths.js'
import { TASK_TYPES, type TaskType } from '../../protocols/taskpack/manifest.js'
import { validateTaskpackDir, packTaskpack, type TaskpackCheck } from '../../protocols/taskpack/validate.js'
import { TaskpackError } from '../../protocols/taskpack/errors.js'
import { createTensor, encodeSafetensors, type Tensor } from '../../protocols/tensor/safetensors.js'
import { addDaemonOptions, daemonCall, daemonClient, type DaemonFlags } from './daemon-client.js'
import type { PublishTaskpackResult, ResolveTaskpackResult, RegistryEntryResult } from '../content/types.js'
import { registerTaskpackRunCommand } from './taskpack-run.js'
import { prng } from '../../protocols/prng.js' // a scaffold's sample inputs are the same bytes every time

/**
 * `bitflowd taskpack init|validate|pack`: offline commands that work on a directory and never touch
 * the data dir (so they run beside a running daemon).
 */

const NAME_PATTERN = /^[a-z0-9]([a-z0-9._-]{0,62}[a-z0-9])?$/

export function templatesDir (): string {
  return join(projectRoot(), 'sandbox', 'templates', 'taskpack')
}

/** Protocol errors carry a `code` but are not BitflowErrors (protocols/ cannot import daemon/). */
function asBitflowError (err: unknown): unknown {
  if (err instanceof BitflowError) return err
  const code = (err as { code?: unknown } | null)?.code
  if (err instanceof TaskpackError || (err instanceof Error && typeof code === 'string' && code.startsWith('ERR_'))) {
    return new BitflowError(code as string, err.message, { cause: err })
  }
  return err
}

async function guard<T> (fn: () => Promise<T>): Promise<T> {
  try {
    return await fn()
  } catch (err) {
    throw asBitflowError(err)
  }
}

// ---- scaffold ----


function matrix (rows: number, cols: number, rand: () => number, scale: number[], offset: number[]): number[] {
  const out: number[] = []
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out.push((rand() * 2 - 1) * scale[c]! + offset[c]!)
  return out
}

/** Sample input files (tests/samples/*.safetensors) for each scaffold type. */
export function sampleInputs (type: TaskType): Record<string, Uint8Array> {
  const rand = prng(0xb17f10)
  const rows = 64
  const cols = 4
  const file = (tensors: Record<string, Tensor>): Uint8Array => encodeSafetensors(tensors, { 'bitflow.sample': 'true' })
  switch (type) {
    case 'training': {
      const x = matrix(rows, cols, rand, [1, 1, 1, 1], [0, 0, 0, 0])
      const w = [1.5, -2, 0.5, 3]
      const y = Array.from({ length: rows }, (_, r) => w.reduce((s, wi, c) => s + wi * x[r * cols + c]!, 0.25) + (rand() - 0.5) * 0.1)
      return { 'dataset.safetensors': file({ x: createTensor('float32', [rows, cols], x), y: createTensor('float32', [rows], y) }) }
    }
    case 'analysis':
    case 'preprocessing': {
      const data = matrix(rows, cols, rand, [1, 10, 0.5, 100], [0, 5, -1, 1000])
      return { 'data.safetensors': file({ data: createTensor('float32', [rows, cols], data) }) }
    }
    case 'inference': {
      const x = matrix(40, cols, rand, [1, 1, 1, 1], [0, 0, 0, 0])
      return {
        'features.safetensors': file({ x: createTensor('float32', [40, cols], x) }),
        'weights.safetensors': file({ w: createTensor('float32', [cols], [1.5, -2, 0.5, 3]), b: createTensor('float32', [1], [0.25]) })
      }
    }
  }
}

async function listTemplate (dir: string, prefix = ''): Promise<string[]> {
  const out: string[] = []
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const rel = prefix === '' ? e.name : `${prefix}/${e.name}`
    if (e.isDirectory()) out.push(...await listTemplate(join(dir, e.name), rel))
    else if (e.isFile()) out.push(rel)
  }
  return out
}

export interface ScaffoldOptions {
  type: TaskType
  /** taskpack name; defaults to the directory name */
  name?: string
  author?: string
}

/**
 * Creates a working taskpack in `dir` (which must not exist or be empty): the seed layout with a
 * small numpy task of the chosen type, its config schema and defaults, sample inputs and a test.
 * Returns the files written, relative to `dir`.
 */
export async function scaffoldTaskpack (dir: string, options: ScaffoldOptions): Promise<string[]> {
  if (!(TASK_TYPES as readonly string[]).includes(options.type)) {
    throw new BitflowError('ERR_TASKPACK_TYPE', `unknown taskpack type '${options.type}': expected one of ${TASK_TYPES.join(', ')}`)
  }
  const target = resolve(dir)
  const name = options.name ?? basename(target).toLowerCase().replace(/[^a-z0-9._-]+/g, '-').replace(/^[^a-z0-9]+|[^a-z0-9]+$/g, '')
  if (!NAME_PATTERN.test(name)) {
    throw new BitflowError('ERR_TASKPACK_NAME', `'${name}' cannot name a taskpack: use lower-case letters, digits, '.', '_' and '-' (at most 64); pass --name`)
  }
  if (options.author !== undefined && !/^[^\n\r"\\]{1,256}$/.test(options.author)) {
    throw new BitflowError('ERR_TASKPACK_AUTHOR', 'the author must be one line of at most 256 characters without quotes or backslashes')
  }
  try {
    const st = await stat(target)
    if (!st.isDirectory()) throw new BitflowError('ERR_TASKPACK_EXISTS', `${target} exists and is not a directory`)
    if ((await readdir(target)).length > 0) throw new BitflowError('ERR_TASKPACK_EXISTS', `${target} is not empty; init creates a taskpack in a new or empty directory`)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
  const files = new Map<string, Uint8Array>()
  const fill = (text: string): string => text
    .replaceAll('{{name}}', name)
    .replaceAll('{{type}}', options.type)
    .replace(/^(\s*)author: \{\{author\}\}\n/m, options.author !== undefined ? `$1author: "${options.author}"\n` : '')
  for (const layer of ['common', options.type]) {
    const base = join(templatesDir(), layer)
    for (const rel of await listTemplate(base)) {
      const raw = await readFile(join(base, rel))
      const textual = /\.(md|ya?ml|py|txt|json)$/.test(rel)
      files.set(rel, textual ? new TextEncoder().encode(fill(raw.toString('utf8'))) : new Uint8Array(raw))
    }
  }
  for (const [file, bytes] of Object.entries(sampleInputs(options.type))) files.set(`tests/samples/${file}`, bytes)
  await mkdir(target, { recursive: true })
  const written = [...files.keys()].sort()
  for (const rel of written) {
    await mkdir(dirname(join(target, rel)), { recursive: true })
    // 'wx': never overwrite or follow something that appeared meanwhile
    await writeFile(join(target, rel), files.get(rel)!, { flag: 'wx', mode: 0o644 })
  }
  return written
}

// ---- commands ----

function summary (check: TaskpackCheck): Record<string, unknown> {
  const m = check.parsed.manifest
  return {
    name: m.metadata.name,
    version: m.metadata.version,
    type: m.spec.type,
    framework: m.spec.framework,
    precision: check.parsed.precision,
    memoryBytes: check.parsed.resources.memoryBytes,
    gpu: check.parsed.resources.gpu,
    files: check.entries.filter(e => e.kind === 'file').length,
    bytes: check.totalBytes,
    warnings: check.warnings
  }
}

export function registerTaskpackCommands (program: Command): Command {
  const taskpack = program.command('taskpack').description('create, check and pack taskpacks (offline), and publish, resolve and list them through the running daemon')

  taskpack.command('init')
    .description('create a working taskpack scaffold in <dir>')
    .argument('<dir>', 'directory to create (must be new or empty)')
    .addOption(new Option('--type <type>', 'kind of task').choices([...TASK_TYPES]).makeOptionMandatory())
    .option('--name <name>', 'taskpack name (default: the directory name)')
    .option('--author <author>', 'author recorded in manifest.yaml')
    .option('--json', 'print the result as JSON')
    .action(async (dir: string, flags: { type: TaskType, name?: string, author?: string, json?: boolean }) => {
      await guard(async () => {
        const files = await scaffoldTaskpack(dir, { type: flags.type, ...(flags.name !== undefined ? { name: flags.name } : {}), ...(flags.author !== undefined ? { author: flags.author } : {}) })
        const check = await validateTaskpackDir(dir)
        if (flags.json === true) { console.log(JSON.stringify({ dir: resolve(dir), files, ...summary(check) }, null, 2)); return }
        console.log(`created ${flags.type} taskpack '${check.parsed.manifest.metadata.name}' in ${resolve(dir)} (${files.length} files)`)
        console.log(`next: edit src/task.py, then\n  bitflowd taskpack validate ${dir}\n  PYTHONPATH=${join(projectRoot(), 'sandbox', 'python')} python3 -m unittest discover -s ${join(dir, 'tests')}\n  bitflowd taskpack pack ${dir}`)
      })
    })

  taskpack.command('validate')
    .description('check manifest.yaml, configs/ and the layout of the taskpack in <dir>')
    .argument('<dir>', 'taskpack directory')
    .option('--json', 'print the result as JSON')
    .action(async (dir: string, flags: { json?: boolean }) => {
      await guard(async () => {
        const check = await validateTaskpackDir(dir)
        const s = summary(check)
        if (flags.json === true) { console.log(JSON.stringify({ valid: true, ...s }, null, 2)); return }
        console.log(`ok: ${String(s.name)}@${String(s.version)} (${String(s.type)}, ${String(s.framework)}), ${String(s.files)} files, ${String(s.bytes)} bytes`)
        for (const w of check.warnings) console.log(`warning: ${w}`)
      })
    })

  taskpack.command('pack')
    .description('validate and pack <dir> into UnixFS; print its CID (CIDv1, base32)')
    .argument('<dir>', 'taskpack directory')
    .option('--json', 'print the CID, checksum and summary as JSON')
    .action(async (dir: string, flags: { json?: boolean }) => {
      await guard(async () => {
        const { check, packed } = await packTaskpack(dir)
        if (flags.json === true) {
          console.log(JSON.stringify({ cid: packed.cidString, checksum: packed.checksum, ...summary(check), files: packed.entries.filter(e => e.kind === 'file').length, bytes: packed.totalBytes }, null, 2))
          return
        }
        for (const w of check.warnings) process.stderr.write(`warning: ${w}\n`)
        console.log(packed.cidString)
      })
    })

  addDaemonOptions(taskpack.command('publish')
    .description('pack <dir> into the running daemon\'s store, pin it and publish a signed registry record name@version -> CID')
    .argument('<dir>', 'taskpack directory'))
    .option('--json', 'print the result as JSON')
    .action(async (dir: string, flags: DaemonFlags) => {
      await guard(async () => {
        const res = await daemonCall(async () => await daemonClient(flags).call<PublishTaskpackResult>('bitflow_publishTaskpack', [resolve(dir)]))
        if (flags.json === true) { console.log(JSON.stringify(res, null, 2)); return }
        for (const w of res.warnings) process.stderr.write(`warning: ${w}\n`)
        console.log(`${res.existing ? 'already published' : 'published'} ${res.record.name}@${res.record.version} -> ${res.record.cid}`)
        console.log(`  publisher: ${res.record.publisher}\n  checksum:  ${res.record.sha256}\n  files:     ${res.files} (${res.bytes} bytes)`)
      })
    })

  addDaemonOptions(taskpack.command('resolve')
    .description('find the publishers of <name>@<version> in the swarm (allow-listed publishers preferred)')
    .argument('<ref>', 'name@version'))
    .option('--fetch', 'also fetch, verify and pin the chosen taskpack')
    .option('--publisher <peerId>', 'choose this publisher')
    .option('--json', 'print the result as JSON')
    .action(async (ref: string, flags: DaemonFlags & { fetch?: boolean, publisher?: string }) => {
      await guard(async () => {
        const res = await daemonCall(async () => await daemonClient(flags).call<ResolveTaskpackResult>('bitflow_resolveTaskpack', [ref, { ...(flags.fetch === true ? { fetch: true } : {}), ...(flags.publisher !== undefined ? { publisher: flags.publisher } : {}) }]))
        if (flags.json === true) { console.log(JSON.stringify(res, null, 2)); return }
        if (res.chosen === null) throw new BitflowError('ERR_TASKPACK_NOT_FOUND', res.note)
        console.log(res.chosen.cid)
        process.stderr.write(`${res.note}\n`)
        if (res.ambiguous) for (const p of res.publishers) process.stderr.write(`  ${p.publisher === res.chosen.publisher ? '*' : ' '} ${p.publisher} ${p.cid} ${p.publishedAt}${p.allowListed ? ' (allow-listed)' : ''}\n`)
        if (res.fetched !== undefined) process.stderr.write(`fetched ${res.fetched.bytes} bytes (${res.fetched.source}), verified and pinned\n`)
      })
    })

  addDaemonOptions(taskpack.command('list')
    .description('taskpack registry records the running daemon knows (its own and those it resolved)'))
    .option('--publisher <peerId>', 'only this publisher')
    .option('--json', 'print as JSON')
    .action(async (flags: DaemonFlags & { publisher?: string }) => {
      await guard(async () => {
        const list = await daemonCall(async () => await daemonClient(flags).call<RegistryEntryResult[]>('bitflow_listTaskpacks', [flags.publisher !== undefined ? { publisher: flags.publisher } : {}]))
        if (flags.json === true) { console.log(JSON.stringify(list, null, 2)); return }
        if (list.length === 0) { console.log('no taskpacks'); return }
        for (const e of list) console.log(`${e.name}@${e.version}\t${e.cid}\t${e.publisher}${e.allowListed ? '\tallow-listed' : ''}`)
      })
    })

  registerTaskpackRunCommand(taskpack)
  return taskpack
}
