import { createHash } from 'node:crypto'
import { createReadStream, constants as fsc } from 'node:fs'
import { lstat, mkdir, open, readdir, readFile, realpath, rename, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { BitflowError } from '../errors.js'
import { datasetId, datasetUri, DATASET_ID_PATTERN, DATASET_NAME_PATTERN, type DatasetFile } from '../../protocols/content/dataset.js'

/**
 * Node-local datasets, registered under a content-derived id and stored as records in
 * <dataDir>/datasets/<id>.json. The daemon advertises the ids it holds (heartbeat, DHT) but never
 * serves the data: dataset files never enter the content store.
 */

export const DATASET_RECORD_FORMAT = 'bitflow-dataset-record/1'

export interface DatasetRecord {
  format: typeof DATASET_RECORD_FORMAT
  id: string
  uri: string
  name: string
  /** absolute real path of the dataset (a directory or one file) */
  path: string
  files: number
  bytes: number
  addedAt: string
}

export function datasetsDir (dataDir: string): string {
  return join(dataDir, 'datasets')
}

async function hashFile (path: string): Promise<{ size: number, sha256: string }> {
  const fh = await open(path, fsc.O_RDONLY | fsc.O_NOFOLLOW)
  try {
    const h = createHash('sha256')
    let size = 0
    for await (const chunk of createReadStream('', { fd: fh.fd, autoClose: false, highWaterMark: 1024 * 1024 }) as AsyncIterable<Buffer>) {
      h.update(chunk)
      size += chunk.length
    }
    return { size, sha256: h.digest('hex') }
  } finally {
    await fh.close()
  }
}

/** Hashes a dataset directory (or single file). Symlinks and special files are refused. */
export async function scanDataset (path: string, options: { signal?: AbortSignal } = {}): Promise<{ root: string, files: DatasetFile[] }> {
  let root: string
  try {
    root = await realpath(path)
  } catch (err) {
    throw new BitflowError('ERR_DATASET_PATH', `cannot open dataset ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
  }
  const st = await stat(root)
  if (st.isFile()) {
    const { size, sha256 } = await hashFile(root)
    return { root, files: [{ path: root.split('/').pop()!, size, sha256 }] }
  }
  if (!st.isDirectory()) throw new BitflowError('ERR_DATASET_PATH', `${path} is neither a file nor a directory`)
  const files: DatasetFile[] = []
  const walk = async (abs: string, rel: string): Promise<void> => {
    for (const name of (await readdir(abs)).sort()) {
      options.signal?.throwIfAborted()
      const childRel = rel === '' ? name : `${rel}/${name}`
      const child = join(abs, name)
      const l = await lstat(child)
      if (l.isSymbolicLink()) throw new BitflowError('ERR_DATASET_LINK', `${childRel} is a symlink; a dataset holds only files and directories (copy the target in)`)
      if (l.isDirectory()) await walk(child, childRel)
      else if (l.isFile()) files.push({ path: childRel, ...(await hashFile(child)) })
      else throw new BitflowError('ERR_DATASET_SPECIAL_FILE', `${childRel} is not a regular file`)
    }
  }
  await walk(root, '')
  if (files.length === 0) throw new BitflowError('ERR_DATASET_EMPTY', `${path} holds no files`)
  return { root, files }
}

/** Registers a dataset in the data dir; the same files always get the same id. */
export async function addDataset (dataDir: string, name: string, path: string, options: { signal?: AbortSignal } = {}): Promise<{ record: DatasetRecord, existing: boolean }> {
  if (!DATASET_NAME_PATTERN.test(name)) throw new BitflowError('ERR_DATASET_NAME', `'${name}' cannot name a dataset: letters, digits, '.', '_' and '-' (at most 128)`)
  const { root, files } = await scanDataset(path, options)
  const id = datasetId(files)
  const dir = datasetsDir(dataDir)
  await mkdir(dir, { recursive: true, mode: 0o700 })
  const file = join(dir, `${id}.json`)
  try {
    const existing = JSON.parse(await readFile(file, 'utf8')) as DatasetRecord
    if (existing.id === id) return { record: existing, existing: true }
  } catch { /* new */ }
  const record: DatasetRecord = { format: DATASET_RECORD_FORMAT, id, uri: datasetUri(id), name, path: root, files: files.length, bytes: files.reduce((s, f) => s + f.size, 0), addedAt: new Date().toISOString() }
  const tmp = `${file}.tmp-${process.pid}`
  await writeFile(tmp, JSON.stringify(record, null, 2) + '\n', { mode: 0o600, flag: 'w' })
  await rename(tmp, file)
  return { record, existing: false }
}

/** Every dataset record in the data dir (malformed files are skipped). */
export async function listDatasets (dataDir: string): Promise<DatasetRecord[]> {
  const dir = datasetsDir(dataDir)
  let names: string[]
  try { names = await readdir(dir) } catch { return [] }
  const out: DatasetRecord[] = []
  for (const n of names.sort()) {
    if (!n.endsWith('.json')) continue
    try {
      const r = JSON.parse(await readFile(join(dir, n), 'utf8')) as DatasetRecord
      if (r.format === DATASET_RECORD_FORMAT && DATASET_ID_PATTERN.test(r.id) && n === `${r.id}.json`) out.push(r)
    } catch { /* skipped */ }
  }
  return out
}

/** Cached view of the data dir's datasets, reloaded when the directory changes. */
export class DatasetIndex {
  readonly #dataDir: string
  #mtimeMs = -1
  #records: DatasetRecord[] = []

  constructor (dataDir: string) {
    this.#dataDir = dataDir
  }

  async refresh (): Promise<DatasetRecord[]> {
    let mtimeMs = 0
    try { mtimeMs = (await stat(datasetsDir(this.#dataDir))).mtimeMs } catch { /* none yet */ }
    if (mtimeMs !== this.#mtimeMs) {
      this.#records = await listDatasets(this.#dataDir)
      this.#mtimeMs = mtimeMs
    }
    return this.#records
  }

  /** the last loaded records (synchronous, for heartbeats) */
  get records (): DatasetRecord[] { return this.#records }
}
