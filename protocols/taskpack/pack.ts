import { createHash } from 'node:crypto'
import { constants as fsc } from 'node:fs'
import { lstat, open, readdir, readlink, realpath, stat } from 'node:fs/promises'
import { join, relative, sep, isAbsolute } from 'node:path'
import { MemoryBlockstore } from 'blockstore-core/memory'
import { importer, type ImportCandidate, type WritableStorage } from 'ipfs-unixfs-importer'
import { fixedSize } from 'ipfs-unixfs-importer/chunker'
import { balanced } from 'ipfs-unixfs-importer/layout'
import type { CID } from 'multiformats/cid'
import { PackError } from './errors.js'

export type { WritableStorage } from 'ipfs-unixfs-importer'

export interface PackLimits {
  /** total bytes of all files */
  maxTotalBytes: number
  maxFileBytes: number
  /** files plus directories */
  maxEntries: number
  /** directory nesting below the taskpack root */
  maxDepth: number
}

export const DEFAULT_PACK_LIMITS: PackLimits = {
  maxTotalBytes: 128 * 1024 * 1024,
  maxFileBytes: 64 * 1024 * 1024,
  maxEntries: 10_000,
  maxDepth: 32
}

/**
 * Left out of every pack: caches that running the task or its tests creates, and VCS metadata.
 * Without this, running `tests/` once would change the CID.
 */
export const PACK_IGNORED_DIRS: readonly string[] = ['__pycache__', '.git', '.hg', '.svn', '.pytest_cache', '.mypy_cache', '.ruff_cache']
export const PACK_IGNORED_FILES: readonly string[] = ['.DS_Store']
export const PACK_IGNORED_SUFFIXES: readonly string[] = ['.pyc', '.pyo']

/**
 * The UnixFS layout every pack uses, pinned field by field (not by library defaults, which change
 * between releases) so a directory gives the same CID on every machine and every version.
 */
export const UNIXFS_CHUNK_SIZE = 1024 * 1024
const importerOptions = {
  cidVersion: 1 as const,
  rawLeaves: true,
  reduceSingleLeafToSelf: true,
  chunker: fixedSize({ chunkSize: UNIXFS_CHUNK_SIZE }),
  layout: balanced({ maxChildrenPerNode: 1024 }),
  shardSplitThresholdBytes: 256 * 1024,
  shardSplitStrategy: 'block-bytes' as const,
  shardFanoutBits: 8,
  fieldOrder: 'links-first' as const,
  wrapWithDirectory: true,
  fileImportConcurrency: 1
}

export interface PackEntry {
  /** POSIX path relative to the taskpack root */
  path: string
  kind: 'file' | 'dir'
  size: number
  /** hex sha256 of the content (files only) */
  sha256?: string
  /** for a file that was a symlink inside the pack: the target it was resolved to (content is stored) */
  resolvedFrom?: string
}

export interface PackResult {
  cid: CID
  /** CIDv1, base32 ("bafy...") */
  cidString: string
  /** `sha256:<hex>` over the canonical listing (see {@link listingText}) */
  checksum: string
  entries: PackEntry[]
  totalBytes: number
}

export interface PackOptions {
  /** where blocks go; a fresh MemoryBlockstore when omitted (e.g. to compute the CID only) */
  blockstore?: WritableStorage
  limits?: Partial<PackLimits>
  signal?: AbortSignal
}

interface Collected { entry: PackEntry, content?: Uint8Array }

export interface CollectedTaskpack {
  /** real path of the directory */
  root: string
  entries: PackEntry[]
  /** file path -> content */
  contents: Map<string, Uint8Array>
  totalBytes: number
}

const byBytes = (a: string, b: string): number => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'))

/** A single path segment that is safe on every platform that unpacks it. */
export function checkEntryName (name: string, where: string): void {
  if (name === '' || name === '.' || name === '..') throw new PackError('ERR_PACK_PATH', `${where}: '${name}' is not an allowed file name`)
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f\\/]/.test(name) || name.includes('\ufffd')) throw new PackError('ERR_PACK_PATH', `${where}: file name ${JSON.stringify(name)} contains a control character, a slash, a backslash or invalid UTF-8`)
  if (Buffer.byteLength(name, 'utf8') > 255) throw new PackError('ERR_PACK_PATH', `${where}: file name is longer than 255 bytes`)
}

/**
 * Checks a relative POSIX path from an untrusted listing (a tar, a UnixFS directory being unpacked):
 * no absolute paths, no `..`, no empty or odd segments. Returns the segments.
 */
export function checkRelativePath (path: string): string[] {
  if (path.startsWith('/') || isAbsolute(path) || /^[A-Za-z]:/.test(path)) throw new PackError('ERR_PACK_PATH', `'${path}' is an absolute path; only paths inside the taskpack are allowed`)
  const segs = path.split('/')
  for (const s of segs) {
    if (s === '..') throw new PackError('ERR_PACK_PATH', `'${path}' climbs out of the taskpack with '..'`)
    checkEntryName(s, `'${path}'`)
  }
  return segs
}

function within (root: string, p: string): boolean {
  const rel = relative(root, p)
  return rel === '' || (!rel.startsWith('..' + sep) && rel !== '..' && !isAbsolute(rel))
}

function ignored (name: string, isDir: boolean): boolean {
  if (isDir) return PACK_IGNORED_DIRS.includes(name)
  return PACK_IGNORED_FILES.includes(name) || PACK_IGNORED_SUFFIXES.some(s => name.endsWith(s))
}

function kindOf (st: { isFIFO: () => boolean, isSocket: () => boolean, isBlockDevice: () => boolean, isCharacterDevice: () => boolean }): string {
  if (st.isFIFO()) return 'a FIFO'
  if (st.isSocket()) return 'a socket'
  if (st.isBlockDevice()) return 'a block device'
  if (st.isCharacterDevice()) return 'a character device'
  return 'a special file'
}

/**
 * Reads a taskpack directory into a sorted, checked listing with file contents. Refuses what could
 * smuggle in data from outside the directory or behave differently when unpacked: symlinks that
 * escape or point at directories, hard links shared with files outside, devices, FIFOs and sockets,
 * odd names, and anything over the limits. Symlinks to files inside the directory are stored as the
 * file they point to.
 */
export async function collectTaskpack (dir: string, options: Pick<PackOptions, 'limits' | 'signal'> = {}): Promise<CollectedTaskpack> {
  const limits = { ...DEFAULT_PACK_LIMITS, ...options.limits }
  let root: string
  try {
    root = await realpath(dir)
  } catch (err) {
    throw new PackError('ERR_PACK_NOT_DIRECTORY', `cannot open taskpack directory ${dir}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
  }
  if (!(await stat(root)).isDirectory()) throw new PackError('ERR_PACK_NOT_DIRECTORY', `${dir} is not a directory`)

  const out: Collected[] = []
  const inodes = new Map<string, { nlink: number, paths: string[] }>()
  let totalBytes = 0

  const readFileChecked = async (abs: string, rel: string, expect: { dev: number, ino: number, size: number }): Promise<Uint8Array> => {
    const fh = await open(abs, fsc.O_RDONLY | fsc.O_NOFOLLOW | (fsc.O_NONBLOCK ?? 0))
    try {
      const st = await fh.stat()
      // the path was swapped between lstat and open
      if (st.ino !== expect.ino || st.dev !== expect.dev || !st.isFile()) throw new PackError('ERR_PACK_CHANGED', `${rel} changed while it was being packed`)
      const buf = Buffer.alloc(st.size)
      let off = 0
      while (off < buf.length) {
        const { bytesRead } = await fh.read(buf, off, buf.length - off, off)
        if (bytesRead === 0) break
        off += bytesRead
      }
      const extra = await fh.read(Buffer.alloc(1), 0, 1, off)
      if (off !== expect.size || extra.bytesRead !== 0) throw new PackError('ERR_PACK_CHANGED', `${rel} changed size while it was being packed`)
      return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength)
    } finally {
      await fh.close()
    }
  }

  const addFile = async (abs: string, rel: string, st: { dev: number, ino: number, size: number, nlink: number }, resolvedFrom?: string): Promise<void> => {
    if (st.size > limits.maxFileBytes) throw new PackError('ERR_PACK_TOO_LARGE', `${rel} is ${st.size} bytes; the limit per file is ${limits.maxFileBytes}`)
    totalBytes += st.size
    if (totalBytes > limits.maxTotalBytes) throw new PackError('ERR_PACK_TOO_LARGE', `taskpack is over ${limits.maxTotalBytes} bytes (at ${rel})`)
    if (resolvedFrom === undefined && st.nlink > 1) {
      const key = `${st.dev}:${st.ino}`
      const seen = inodes.get(key) ?? { nlink: st.nlink, paths: [] }
      seen.paths.push(rel)
      inodes.set(key, seen)
    }
    const content = await readFileChecked(abs, rel, st)
    const entry: PackEntry = { path: rel, kind: 'file', size: content.length, sha256: createHash('sha256').update(content).digest('hex') }
    if (resolvedFrom !== undefined) entry.resolvedFrom = resolvedFrom
    out.push({ entry, content })
  }

  const walk = async (absDir: string, relDir: string, depth: number): Promise<void> => {
    if (depth > limits.maxDepth) throw new PackError('ERR_PACK_TOO_LARGE', `${relDir} is nested deeper than ${limits.maxDepth} directories`)
    const names = (await readdir(absDir)).sort(byBytes)
    for (const name of names) {
      if (options.signal?.aborted === true) throw options.signal.reason ?? new Error('aborted')
      const rel = relDir === '' ? name : `${relDir}/${name}`
      checkEntryName(name, rel)
      const abs = join(absDir, name)
      const lst = await lstat(abs)
      if (ignored(name, lst.isDirectory())) continue
      if (out.length >= limits.maxEntries) throw new PackError('ERR_PACK_TOO_LARGE', `taskpack has more than ${limits.maxEntries} files and directories`)
      if (lst.isSymbolicLink()) {
        const target = await readlink(abs)
        let resolved: string
        try {
          resolved = await realpath(abs)
        } catch {
          throw new PackError('ERR_PACK_LINK', `${rel} is a symlink to '${target}', which does not exist`)
        }
        if (!within(root, resolved)) throw new PackError('ERR_PACK_LINK', `${rel} is a symlink to '${target}', outside the taskpack`)
        const tst = await stat(resolved)
        if (tst.isDirectory()) throw new PackError('ERR_PACK_LINK', `${rel} is a symlink to the directory '${target}'; only links to files inside the taskpack are allowed`)
        if (!tst.isFile()) throw new PackError('ERR_PACK_SPECIAL_FILE', `${rel} is a symlink to ${kindOf(tst)}`)
        const relTarget = relative(root, resolved).split(sep).join('/')
        const tl = await lstat(resolved)
        await addFile(resolved, rel, { dev: tl.dev, ino: tl.ino, size: tl.size, nlink: tl.nlink }, relTarget)
      } else if (lst.isDirectory()) {
        out.push({ entry: { path: rel, kind: 'dir', size: 0 } })
        await walk(abs, rel, depth + 1)
      } else if (lst.isFile()) {
        await addFile(abs, rel, lst)
      } else {
        throw new PackError('ERR_PACK_SPECIAL_FILE', `${rel} is ${kindOf(lst)}; a taskpack holds only files and directories`)
      }
    }
  }
  await walk(root, '', 0)

  for (const { nlink, paths } of inodes.values()) {
    if (paths.length < nlink) {
      throw new PackError('ERR_PACK_LINK', `${paths[0]!} is a hard link shared with ${nlink - paths.length} file(s) outside the taskpack; copy it instead of linking`)
    }
  }
  if (!out.some(c => c.entry.kind === 'file')) throw new PackError('ERR_PACK_NOT_DIRECTORY', `${dir} holds no files`)

  out.sort((a, b) => byBytes(a.entry.path, b.entry.path))
  const contents = new Map<string, Uint8Array>()
  for (const c of out) if (c.content !== undefined) contents.set(c.entry.path, c.content)
  return { root, entries: out.map(c => c.entry), contents, totalBytes }
}

/** The canonical listing the checksum covers: one line per entry, sorted by path bytes. */
export function listingText (entries: readonly PackEntry[]): string {
  const lines = [...entries].sort((a, b) => byBytes(a.path, b.path)).map(e => e.kind === 'dir' ? `d ${e.path}` : `f ${e.path} ${e.size} ${e.sha256 ?? ''}`)
  return `bitflow-taskpack-listing/1\n${lines.join('\n')}\n`
}

export function listingChecksum (entries: readonly PackEntry[]): string {
  return `sha256:${createHash('sha256').update(listingText(entries), 'utf8').digest('hex')}`
}

/**
 * Packs a directory into UnixFS (CIDv1, raw leaves, no mtimes or modes) and writes the blocks to
 * `options.blockstore` — pass Helia's blockstore to store it, or nothing to compute the CID only.
 * The same directory content always gives the same CID.
 */
export async function packDirectory (dir: string, options: PackOptions = {}): Promise<PackResult> {
  return await packCollected(await collectTaskpack(dir, options), options)
}

/** Packs a listing {@link collectTaskpack} made, so a check and a pack can share one snapshot. */
export async function packCollected (collected: CollectedTaskpack, options: Omit<PackOptions, 'limits'> = {}): Promise<PackResult> {
  const { entries, contents, totalBytes } = collected
  const candidates: ImportCandidate[] = entries.map(e => e.kind === 'dir' ? { path: e.path } : { path: e.path, content: contents.get(e.path)! })
  const blockstore = options.blockstore ?? new MemoryBlockstore()
  let root: CID | undefined
  for await (const result of importer(candidates, blockstore, importerOptions)) {
    if (options.signal?.aborted === true) throw options.signal.reason ?? new Error('aborted')
    root = result.cid
  }
  if (root === undefined) throw new PackError('ERR_PACK_NOT_DIRECTORY', `${collected.root} holds no files`)
  return { cid: root, cidString: root.toString(), checksum: listingChecksum(entries), entries, totalBytes }
}
