/**
 * Staging a taskpack run for the sandbox: a fresh private directory holding the task dir the runner
 * mounts read-only at /task (job.json, inputs/, pack/ — the layout `python3 -m bitflow_sdk.run` reads)
 * and the host directory the outputs are copied to. The pack is written from the snapshot that was
 * checked, not re-read from the author's directory, so what ran is what was checked.
 */
import { constants as C, createWriteStream } from 'node:fs'
import { chmod, copyFile, mkdir, mkdtemp, open, stat, writeFile } from 'node:fs/promises'
import { pipeline } from 'node:stream/promises'
import { tmpdir } from 'node:os'
import { basename, dirname, join } from 'node:path'
import { checkRelativePath, type CollectedTaskpack } from '../protocols/taskpack/pack.js'
import { SandboxJobError } from './errors.js'
import type { SandboxJob, ResourceRequest } from './policy.js'
import { wipeDir, type WipeResult } from './wipe.js'

/** The runner entry of the runtime image's SDK. */
export const SDK_COMMAND = ['python3', '-m', 'bitflow_sdk.run'] as const

export interface StageJob {
  /**
   * input name -> a host file to copy, named bytes (e.g. a sample input from the snapshot), or a
   * directory tree (a node-local dataset): its listed regular files, copied under the input's directory
   */
  inputs: Record<string, string | { file: string, bytes: Uint8Array } | { tree: string, files: readonly string[] }>
  params?: Record<string, unknown>
  /** 0 .. 2^32-1: the task's only randomness */
  seed: number
  taskId: string
  round?: number
  entrypoint?: string
}

export interface StagedRun {
  /** private root of everything staged; wipe() removes it */
  root: string
  /** mounted at /task */
  taskDir: string
  /** where the runner copies /out (does not exist until the run) */
  outputDir: string
  /** the job.json written */
  job: Record<string, unknown>
  /** a SandboxJob for this staging */
  sandboxJob: (id: string, resources: ResourceRequest) => SandboxJob
  /** overwrite and remove everything staged (and the copied outputs) */
  wipe: () => Promise<WipeResult>
}

const INPUT_NAME = /^[a-z][a-z0-9_]{0,63}$/

/** Writes the pack snapshot, the inputs and job.json into a new directory under `parent`. */
export async function stageRun (collected: Pick<CollectedTaskpack, 'entries' | 'contents'>, job: StageJob, options: { parent?: string } = {}): Promise<StagedRun> {
  if (!Number.isSafeInteger(job.seed) || job.seed < 0 || job.seed >= 2 ** 32) throw new SandboxJobError(`seed must be an integer from 0 to 2^32-1, got ${job.seed}`)
  const parent = options.parent ?? tmpdir()
  await mkdir(parent, { recursive: true, mode: 0o700 })
  const root = await mkdtemp(join(parent, 'bitflow-stage-'))
  const staged = {
    root,
    taskDir: join(root, 'task'),
    outputDir: join(root, 'out'),
    wipe: async () => await wipeDir(root)
  }
  try {
    await mkdir(staged.taskDir, { mode: 0o755 })
    await chmod(staged.taskDir, 0o755) // the task's uid 65534 reads it (umask-proof)
    const packDir = join(staged.taskDir, 'pack')
    await mkdir(packDir, { mode: 0o755 })
    for (const e of collected.entries) {
      const segs = checkRelativePath(e.path)
      const target = join(packDir, ...segs)
      if (e.kind === 'dir') {
        await mkdir(target, { recursive: true, mode: 0o755 })
      } else {
        await mkdir(dirname(target), { recursive: true, mode: 0o755 })
        await writeExclusive(target, collected.contents.get(e.path) ?? new Uint8Array())
      }
    }
    const inputsDir = join(staged.taskDir, 'inputs')
    await mkdir(inputsDir, { mode: 0o755 })
    const jobInputs: Record<string, string> = {}
    for (const [name, source] of Object.entries(job.inputs).sort(([a], [b]) => a < b ? -1 : 1)) {
      if (!INPUT_NAME.test(name)) throw new SandboxJobError(`input name '${name}' is not a manifest input name (lower-case letters, digits and _)`)
      await mkdir(join(inputsDir, name), { mode: 0o755 })
      if (typeof source === 'string') {
        const st = await stat(source).catch(() => undefined)
        if (st === undefined || !st.isFile()) throw new SandboxJobError(`input ${name}: ${source} is not a readable file`)
        const file = safeFileName(basename(source))
        await copyFile(source, join(inputsDir, name, file), C.COPYFILE_EXCL)
        await chmod(join(inputsDir, name, file), 0o644)
        jobInputs[name] = `${name}/${file}`
      } else if ('tree' in source) {
        const top = join(inputsDir, name, 'data')
        await mkdir(top, { mode: 0o755 })
        for (const rel of source.files) {
          const segs = checkRelativePath(rel)
          const target = join(top, ...segs)
          await mkdir(dirname(target), { recursive: true, mode: 0o755 })
          await copyRegularFile(join(source.tree, ...segs), target)
        }
        jobInputs[name] = `${name}/data`
      } else {
        const file = safeFileName(basename(source.file))
        await writeExclusive(join(inputsDir, name, file), source.bytes)
        jobInputs[name] = `${name}/${file}`
      }
    }
    const jobJson: Record<string, unknown> = {
      inputs: jobInputs,
      params: job.params ?? {},
      seed: job.seed,
      task_id: job.taskId,
      round: job.round ?? 0,
      ...(job.entrypoint !== undefined ? { entrypoint: job.entrypoint } : {})
    }
    await writeExclusive(join(staged.taskDir, 'job.json'), new TextEncoder().encode(JSON.stringify(jobJson, null, 2) + '\n'))
    return {
      ...staged,
      job: jobJson,
      sandboxJob: (id, resources) => ({ id, taskDir: staged.taskDir, command: [...SDK_COMMAND], seed: String(job.seed), outputDir: staged.outputDir, resources })
    }
  } catch (err) {
    await wipeDir(root).catch(() => {})
    throw err
  }
}

/** Staged inputs keep their file name (tasks may look at the extension) when it is a plain one. */
function safeFileName (name: string): string {
  return /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/.test(name) ? name : `input${/\.[A-Za-z0-9]{1,16}$/.exec(name)?.[0] ?? ''}`
}

/** Copies a regular file without following a link at its last component (a dataset holds none). */
async function copyRegularFile (from: string, to: string): Promise<void> {
  const fh = await open(from, C.O_RDONLY | C.O_NOFOLLOW).catch((err: NodeJS.ErrnoException) => {
    throw new SandboxJobError(`input file ${from} cannot be read (${err.code ?? err.message}); a dataset holds only regular files`)
  })
  try {
    if (!(await fh.stat()).isFile()) throw new SandboxJobError(`input file ${from} is not a regular file`)
    await pipeline(fh.createReadStream({ autoClose: false }), createWriteStream(to, { flags: 'wx', mode: 0o644 }))
    await chmod(to, 0o644)
  } finally {
    await fh.close()
  }
}

async function writeExclusive (path: string, bytes: Uint8Array): Promise<void> {
  await writeFile(path, bytes, { flag: 'wx', mode: 0o644 })
  await chmod(path, 0o644)
}
