/**
 * Secure cleanup of working directories (staged task code, inputs, outputs): every regular file is
 * overwritten with zeros and synced before it is unlinked, so its data does not linger in free
 * blocks of a plain file system. Symlinks are removed, never followed; other mounts below the tree
 * are not descended into (they are the runner's business). On copy-on-write or journaling file
 * systems and on SSDs an overwrite cannot guarantee the old blocks are gone; put work dirs on tmpfs
 * or an encrypted volume where that matters.
 */
import { constants as C } from 'node:fs'
import { lstat, open, readdir, rmdir, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import { SandboxError } from './errors.js'

export interface WipeResult {
  files: number
  /** bytes overwritten */
  bytes: number
  /** entries that could not be wiped (reported, not fatal) */
  failures: Array<{ path: string, message: string }>
}

/** Wiping a directory failed for some entries; `result.failures` names them. */
export class WipeError extends SandboxError {
  readonly result: WipeResult
  constructor (dir: string, result: WipeResult) {
    super('ERR_SANDBOX_WIPE', `could not wipe ${result.failures.length} entr${result.failures.length === 1 ? 'y' : 'ies'} under ${dir}: ${result.failures.slice(0, 3).map(f => `${f.path} (${f.message})`).join('; ')}; remove them by hand`)
    this.result = result
  }
}

const ZEROS = Buffer.alloc(1024 * 1024)

async function overwrite (path: string, size: number): Promise<void> {
  const fh = await open(path, C.O_WRONLY | C.O_NOFOLLOW | (C.O_NONBLOCK ?? 0))
  try {
    const st = await fh.stat()
    if (!st.isFile()) return
    const total = Math.max(size, st.size)
    let off = 0
    while (off < total) {
      const n = Math.min(ZEROS.length, total - off)
      await fh.write(ZEROS, 0, n, off)
      off += n
    }
    await fh.datasync()
    await fh.truncate(0)
  } finally {
    await fh.close()
  }
}

/**
 * Overwrites then unlinks every file under `dir`, then removes the directories and `dir` itself.
 * A missing `dir` is not an error. Throws WipeError listing what it could not remove.
 */
export async function wipeDir (dir: string): Promise<WipeResult> {
  const result: WipeResult = { files: 0, bytes: 0, failures: [] }
  let root
  try {
    root = await lstat(dir)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return result
    throw err
  }
  const fail = (path: string, err: unknown): void => { result.failures.push({ path, message: (err as NodeJS.ErrnoException).code ?? (err as Error).message }) }
  const walk = async (path: string): Promise<void> => {
    let st
    try { st = await lstat(path) } catch (err) { if ((err as NodeJS.ErrnoException).code !== 'ENOENT') fail(path, err); return }
    if (st.isDirectory()) {
      if (st.dev !== root.dev) { fail(path, new Error('a mount point; unmount it first')); return }
      let names: string[] = []
      try { names = await readdir(path) } catch (err) { fail(path, err) }
      for (const name of names) await walk(join(path, name))
      try { await rmdir(path) } catch (err) { fail(path, err) }
      return
    }
    try {
      // a file hard-linked elsewhere is only unlinked: overwriting it would destroy the other name's data
      if (st.isFile() && st.nlink === 1) {
        await overwrite(path, st.size)
        result.files++
        result.bytes += st.size
      }
      await unlink(path)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') fail(path, err)
    }
  }
  await walk(dir)
  if (result.failures.length > 0) throw new WipeError(dir, result)
  return result
}
