/**
 * The task's /out: a host tmpfs of a fixed size, bind-mounted read-write into the container, so a
 * task that writes too much gets ENOSPC while writing. After the container is gone (no process of the
 * task is left) the files are copied out from the host side: regular files only, never following a
 * symlink, skipping hard-linked files and anything special, within a byte and file-count cap.
 */
import { execFile } from 'node:child_process'
import { constants as C } from 'node:fs'
import { lstat, mkdir, open, readdir, readFile, rm, statfs, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { SandboxOutputError } from './errors.js'
import { TASK_UID } from './policy.js'

const run = promisify(execFile)

export interface OutputFile { path: string, bytes: number }
export interface SkippedOutput { path: string, reason: 'symlink' | 'hardlink' | 'special' | 'over-cap' | 'too-many-files' | 'too-deep' }
export interface CollectedOutputs {
  files: OutputFile[]
  skipped: SkippedOutput[]
  totalBytes: number
  /** the task filled /out (its writes beyond the cap failed) */
  full: boolean
}

/** mount(8) a size-limited tmpfs owned by the task's uid at `dir`. */
export async function mountOutputTmpfs (dir: string, bytes: number, files: number, signal?: AbortSignal): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o755 })
  const opts = `size=${bytes},nr_inodes=${files + 1},mode=0755,uid=${TASK_UID},gid=${TASK_UID},nosuid,nodev,noexec`
  try {
    await run('mount', ['-t', 'tmpfs', '-o', opts, 'bitflow-out', dir], signal !== undefined ? { signal } : {})
  } catch (err) {
    signal?.throwIfAborted()
    const msg = (err as { stderr?: string }).stderr?.trim() ?? (err as Error).message
    throw new SandboxOutputError(`cannot mount the task's size-limited /out at ${dir} (${msg}); the sandbox runner must run as root`, err)
  }
}

/** Mount points at or below `prefix`, deepest first. */
export async function mountsUnder (prefix: string): Promise<string[]> {
  const text = await readFile('/proc/self/mountinfo', 'utf8')
  const out: string[] = []
  for (const line of text.split('\n')) {
    const mp = line.split(' ')[4]
    if (mp === undefined) continue
    const path = mp.replace(/\\(\d{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)))
    if (path === prefix || path.startsWith(prefix.endsWith('/') ? prefix : `${prefix}/`)) out.push(path)
  }
  return out.sort((a, b) => b.length - a.length)
}

/** Unmounts everything at or below `dir` and deletes it. */
export async function removeRunDir (dir: string): Promise<void> {
  for (const mp of await mountsUnder(dir)) {
    try {
      await run('umount', [mp])
    } catch {
      await run('umount', ['-l', mp]).catch(() => {}) // busy: detach now, freed when unused
    }
  }
  await rm(dir, { recursive: true, force: true })
}

/** Fixed /etc/hosts, /etc/hostname, /etc/resolv.conf: no node names, no DNS servers. */
export async function writeEtcFiles (dir: string, hostname: string): Promise<{ hosts: string, hostname: string, resolvConf: string }> {
  await mkdir(dir, { recursive: true, mode: 0o755 })
  const files = { hosts: join(dir, 'hosts'), hostname: join(dir, 'hostname'), resolvConf: join(dir, 'resolv.conf') }
  await writeFile(files.hosts, `127.0.0.1\tlocalhost ${hostname}\n::1\tlocalhost ip6-localhost ip6-loopback\n`, { mode: 0o644 })
  await writeFile(files.hostname, `${hostname}\n`, { mode: 0o644 })
  await writeFile(files.resolvConf, '# no network in the sandbox\n', { mode: 0o644 })
  return files
}

export interface CollectLimits { maxBytes: number, maxFiles: number, maxDepth?: number }

/**
 * Walks `src` (the /out tmpfs, with no task process left) and copies regular, singly-linked files to
 * `dest` (if given) within the limits. Symlinks are never followed, files are opened O_NOFOLLOW and
 * re-checked on the open descriptor.
 */
export async function collectOutputs (src: string, dest: string | undefined, limits: CollectLimits): Promise<CollectedOutputs> {
  const result: CollectedOutputs = { files: [], skipped: [], totalBytes: 0, full: false }
  const maxDepth = limits.maxDepth ?? 32
  let entries = 0
  if (dest !== undefined) await mkdir(dest, { recursive: true, mode: 0o755 })

  const walk = async (rel: string, depth: number): Promise<void> => {
    const names = (await readdir(join(src, rel))).sort()
    for (const name of names) {
      const relPath = rel === '' ? name : `${rel}/${name}`
      if (++entries > limits.maxFiles) { result.skipped.push({ path: relPath, reason: 'too-many-files' }); continue }
      const st = await lstat(join(src, relPath))
      if (st.isSymbolicLink()) { result.skipped.push({ path: relPath, reason: 'symlink' }); continue }
      if (st.isDirectory()) {
        if (depth >= maxDepth) { result.skipped.push({ path: relPath, reason: 'too-deep' }); continue }
        if (dest !== undefined) await mkdir(join(dest, relPath), { mode: 0o755 })
        await walk(relPath, depth + 1)
        continue
      }
      if (!st.isFile()) { result.skipped.push({ path: relPath, reason: 'special' }); continue }
      if (st.nlink > 1) { result.skipped.push({ path: relPath, reason: 'hardlink' }); continue }
      if (result.totalBytes + st.size > limits.maxBytes) { result.skipped.push({ path: relPath, reason: 'over-cap' }); continue }
      const copied = await copyOne(join(src, relPath), dest === undefined ? undefined : join(dest, relPath), limits.maxBytes - result.totalBytes)
      if (typeof copied === 'string') { result.skipped.push({ path: relPath, reason: copied }); continue }
      result.files.push({ path: relPath, bytes: copied })
      result.totalBytes += copied
    }
  }
  await walk('', 0)
  const fs = await statfs(src)
  // less than one page left: the task hit the cap (its writes beyond it failed with ENOSPC)
  result.full = fs.bavail * fs.bsize < 4096 || fs.ffree === 0
  return result
}

async function copyOne (from: string, to: string | undefined, room: number): Promise<number | SkippedOutput['reason']> {
  const fh = await open(from, C.O_RDONLY | C.O_NOFOLLOW | C.O_NONBLOCK)
  try {
    const st = await fh.stat()
    if (!st.isFile()) return 'special'
    if (st.nlink > 1) return 'hardlink'
    if (st.size > room) return 'over-cap'
    if (to === undefined) return st.size
    const out = await open(to, C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, 0o644)
    try {
      const buf = Buffer.allocUnsafe(Math.min(1024 * 1024, Math.max(st.size, 1)))
      let copied = 0
      while (copied < st.size) {
        const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, st.size - copied), copied)
        if (bytesRead === 0) break
        await out.write(buf, 0, bytesRead)
        copied += bytesRead
      }
      return copied
    } finally {
      await out.close()
    }
  } finally {
    await fh.close()
  }
}
