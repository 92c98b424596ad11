import { mkdirSync, readFileSync, writeFileSync, openSync, closeSync, writeSync, unlinkSync, existsSync, renameSync, chmodSync } from 'node:fs'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { DataDirLockedError, DataDirFormatError } from './errors.js'
import { Identity, loadIdentity, writeIdentity } from './identity.js'

export const DATA_DIR_FORMAT = 1

export interface DataDirInfo { format: number, network: string, createdAt: string }

/**
 * The daemon's data directory: format marker, identity, lock, RPC cookie and runtime info.
 * Offline commands use `DataDir.open` (never locks); the daemon calls `lock()` before anything else.
 */
export class DataDir {
  readonly path: string
  #locked = false

  private constructor (path: string) {
    this.path = path
  }

  get identityPath (): string { return join(this.path, 'identity.json') }
  get formatPath (): string { return join(this.path, 'DATADIR.json') }
  get lockPath (): string { return join(this.path, 'bitflowd.lock') }
  get cookiePath (): string { return join(this.path, 'rpc.cookie') }
  get runtimePath (): string { return join(this.path, 'runtime.json') }
  get configPath (): string { return join(this.path, 'config.yaml') }
  sub (name: string): string { return join(this.path, name) }

  /** Creates the directory, its format marker and identity if missing. Returns what it created. */
  static init (path: string, network: string, identity?: Identity): { dataDir: DataDir, createdIdentity: boolean } {
    mkdirSync(path, { recursive: true, mode: 0o700 })
    const dataDir = new DataDir(path)
    if (!existsSync(dataDir.formatPath)) {
      const info: DataDirInfo = { format: DATA_DIR_FORMAT, network, createdAt: new Date().toISOString() }
      writeFileSync(dataDir.formatPath, JSON.stringify(info, null, 2) + '\n')
    }
    dataDir.info(network)
    let createdIdentity = false
    if (!existsSync(dataDir.identityPath)) {
      writeIdentity(dataDir.identityPath, identity ?? Identity.generate())
      createdIdentity = true
    }
    return { dataDir, createdIdentity }
  }

  /** Opens an existing data dir without locking it. */
  static open (path: string, network?: string): DataDir {
    if (!existsSync(join(path, 'DATADIR.json'))) {
      throw new DataDirFormatError(`${path} is not a BitFlow data dir; run \`bitflowd init --data-dir ${path}\``)
    }
    const dataDir = new DataDir(path)
    dataDir.info(network)
    return dataDir
  }

  info (expectedNetwork?: string): DataDirInfo {
    let info: DataDirInfo
    try {
      info = JSON.parse(readFileSync(this.formatPath, 'utf8')) as DataDirInfo
    } catch (err) {
      throw new DataDirFormatError(`cannot read ${this.formatPath}: ${(err as Error).message}`)
    }
    if (info.format !== DATA_DIR_FORMAT) {
      throw new DataDirFormatError(`${this.path} has data dir format ${info.format}; this bitflowd understands format ${DATA_DIR_FORMAT}`)
    }
    if (expectedNetwork !== undefined && info.network !== expectedNetwork) {
      throw new DataDirFormatError(`${this.path} belongs to network '${info.network}', not '${expectedNetwork}'; pass --network ${info.network} or another --data-dir`)
    }
    return info
  }

  loadIdentity (): Identity {
    return loadIdentity(this.identityPath)
  }

  /** Takes the exclusive lock, or throws DataDirLockedError naming the holder. Stale locks are taken over. */
  lock (): void {
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        const fd = openSync(this.lockPath, 'wx', 0o600)
        writeSync(fd, String(process.pid))
        closeSync(fd)
        this.#locked = true
        return
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      }
      const holder = Number.parseInt(readFileSync(this.lockPath, 'utf8').trim(), 10)
      if (Number.isInteger(holder) && holder > 0 && holder !== process.pid && processAlive(holder)) {
        throw new DataDirLockedError(this.path, holder)
      }
      // stale: the holder is gone
      try { unlinkSync(this.lockPath) } catch { /* another process took it over first */ }
    }
    throw new DataDirLockedError(this.path, -1)
  }

  get locked (): boolean { return this.#locked }

  unlock (): void {
    if (!this.#locked) return
    try { unlinkSync(this.lockPath) } catch { /* already gone */ }
    this.#locked = false
  }

  /** A fresh random token for state-changing RPC calls, readable only by the owner. */
  writeCookie (): string {
    const token = randomBytes(32).toString('hex')
    writeAtomic(this.cookiePath, token, 0o600)
    return token
  }

  readCookie (): string | undefined {
    try { return readFileSync(this.cookiePath, 'utf8').trim() } catch { return undefined }
  }

  writeRuntime (info: unknown): void {
    writeAtomic(this.runtimePath, JSON.stringify(info, null, 2) + '\n', 0o644)
  }

  removeRuntimeFiles (): void {
    for (const p of [this.runtimePath, this.cookiePath]) {
      try { unlinkSync(p) } catch { /* not there */ }
    }
  }
}

export function processAlive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

export function writeAtomic (path: string, content: string, mode: number): void {
  const tmp = `${path}.tmp-${process.pid}`
  writeFileSync(tmp, content, { mode })
  chmodSync(tmp, mode)
  renameSync(tmp, path)
}
