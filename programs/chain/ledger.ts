/**
 * The local chain's durable state, in its directory:
 *
 * - `genesis.json`: the chain's identity (genesis hash, program id, faucet address, epoch schedule).
 * - `faucet.json`: the faucet keypair (Solana CLI format, mode 0600).
 * - `program.so`: the settlement program as deployed at genesis (a later rebuild does not change a
 *   running chain, as on a real cluster).
 * - `ledger.log`: append-only frames, one per slot that carried transactions:
 *   `[u32 length][u32 crc32][JSON SlotFrame]`, fdatasync'ed before any of its transactions is
 *   reported confirmed. A frame holds the slot's transactions (wire bytes, status, logs) and the
 *   post-slot state of every account those transactions could write. Restoring = genesis + the
 *   account states of every frame in order; no transaction is re-executed, so a restored chain
 *   has exactly the confirmed bytes even if the program file changed meanwhile.
 * - `head.bin`: the last closed slot, its Clock time and blockhash, overwritten every slot (no
 *   fsync: it survives a SIGKILL through the page cache; after a power loss the chain resumes at
 *   the last frame). Empty slots need nothing else: their blockhashes are recomputed.
 *
 * A torn last frame (a crash mid-write, never confirmed) is cut off at the next start.
 */
import { closeSync, existsSync, fsyncSync, ftruncateSync, openSync, readFileSync, readSync, renameSync, writeFileSync, fstatSync, unlinkSync } from 'node:fs'
import { open, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { crc32 } from 'node:zlib'
import { LedgerError, ChainDirLockedError } from './errors.js'
import { base58Decode, base58Encode } from './codec.js'

export const LEDGER_FORMAT = 1

export interface GenesisFile {
  format: number
  /** base58 of 32 random bytes; also the blockhash of slot 0 */
  genesisHash: string
  programId: string
  faucet: string
  createdAt: string
  /** unix seconds of slot 0 */
  startUnix: number
  slotsPerEpoch: number
}

/** An account's full state after a slot, or its deletion (zero lamports). JSON-friendly. */
export type AccountState =
  | { k: string, l: string, o: string, e: boolean, r: string, d: string }
  | { k: string, x: true }

/** A transaction as recorded in a slot; the source of getTransaction and getSignatureStatuses. */
export interface TxRecord {
  signature: string
  slot: number
  /** Clock unix time of the slot */
  blockTime: number
  /** base64 wire transaction */
  wire: string
  /** Solana's JSON TransactionError, or null */
  err: unknown
  logs: string[]
  unitsConsumed: number
  fee: number
  preBalances: number[]
  postBalances: number[]
  returnData: { programId: string, data: string } | null
  loadedAddresses: { writable: string[], readonly: string[] }
}

export interface SlotFrame {
  slot: number
  /** base58 blockhash of this slot */
  blockhash: string
  /** Clock unix time of this slot */
  unixTime: number
  txs: TxRecord[]
  accounts: AccountState[]
}

export interface Head { slot: number, unixTime: number, blockhash: string }

const HEAD_MAGIC = Buffer.from('BFCHEAD1')
const HEAD_SIZE = 64

export class Ledger {
  readonly dir: string
  private log: FileHandle | undefined
  private head: FileHandle | undefined
  private queue: Promise<void> = Promise.resolve()
  private failed: Error | undefined
  private lockHeld = false

  constructor (dir: string) { this.dir = dir }

  get genesisPath (): string { return join(this.dir, 'genesis.json') }
  get faucetPath (): string { return join(this.dir, 'faucet.json') }
  get programPath (): string { return join(this.dir, 'program.so') }
  get logPath (): string { return join(this.dir, 'ledger.log') }
  get headPath (): string { return join(this.dir, 'head.bin') }
  get lockPath (): string { return join(this.dir, 'chain.lock') }

  /** Takes the directory's lock file (pid inside); a stale lock of a dead process is taken over. */
  lock (): void {
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const fd = openSync(this.lockPath, 'wx', 0o644)
        writeFileSync(fd, `${process.pid}\n`)
        closeSync(fd)
        this.lockHeld = true
        return
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
        const pid = Number(readFileSync(this.lockPath, 'utf8').trim())
        if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && processAlive(pid)) throw new ChainDirLockedError(this.dir, pid)
        unlinkSync(this.lockPath)
      }
    }
    throw new LedgerError(`could not take the lock ${this.lockPath}`)
  }

  unlock (): void {
    if (!this.lockHeld) return
    try { unlinkSync(this.lockPath) } catch { /* gone */ }
    this.lockHeld = false
  }

  hasGenesis (): boolean { return existsSync(this.genesisPath) }

  readGenesis (): GenesisFile {
    let g: GenesisFile
    try {
      g = JSON.parse(readFileSync(this.genesisPath, 'utf8')) as GenesisFile
    } catch (err) {
      throw new LedgerError(`cannot read ${this.genesisPath}: ${(err as Error).message}; remove the chain dir to start a new chain`, { cause: err })
    }
    if (g.format !== LEDGER_FORMAT) throw new LedgerError(`${this.genesisPath} has format ${String(g.format)}, this server reads format ${LEDGER_FORMAT}; remove the chain dir to start a new chain`)
    return g
  }

  /** Writes the genesis files durably (file and directory fsync), genesis.json last. */
  writeGenesis (genesis: GenesisFile, faucetSecret: Uint8Array, program: Uint8Array): void {
    writeDurable(this.faucetPath, JSON.stringify(Array.from(faucetSecret)), 0o600)
    writeDurable(this.programPath, program, 0o644)
    writeDurable(this.genesisPath, JSON.stringify(genesis, null, 2) + '\n', 0o644)
    fsyncDir(this.dir)
  }

  readFaucetSecret (): Uint8Array {
    const raw = JSON.parse(readFileSync(this.faucetPath, 'utf8')) as number[]
    if (!Array.isArray(raw) || raw.length !== 64) throw new LedgerError(`${this.faucetPath} is not a 64-byte Solana keypair`)
    return Uint8Array.from(raw)
  }

  /**
   * Reads every complete frame in order and cuts a torn tail off. Throws LedgerError when a frame
   * in the middle is damaged (that is not a crash artefact: the ledger was altered).
   */
  readFrames (onFrame: (frame: SlotFrame) => void, onTornTail?: (offset: number, size: number) => void): void {
    if (!existsSync(this.logPath)) return
    const fd = openSync(this.logPath, 'r+')
    try {
      const size = fstatSync(fd).size
      const header = Buffer.alloc(8)
      let offset = 0
      while (offset < size) {
        if (size - offset < 8) break
        readSync(fd, header, 0, 8, offset)
        const length = header.readUInt32LE(0)
        const sum = header.readUInt32LE(4)
        if (length === 0 || offset + 8 + length > size) break
        const body = Buffer.alloc(length)
        readSync(fd, body, 0, length, offset + 8)
        if (crc32(body) !== sum) {
          if (offset + 8 + length === size) break // torn last frame
          throw new LedgerError(`${this.logPath}: frame at byte ${offset} fails its checksum and is not the last one; the ledger was damaged`)
        }
        let frame: SlotFrame
        try {
          frame = JSON.parse(body.toString('utf8')) as SlotFrame
        } catch (err) {
          throw new LedgerError(`${this.logPath}: frame at byte ${offset} is not JSON`, { cause: err })
        }
        onFrame(frame)
        offset += 8 + length
      }
      if (offset < size) {
        onTornTail?.(offset, size)
        ftruncateSync(fd, offset)
        fsyncSync(fd)
      }
    } finally {
      closeSync(fd)
    }
  }

  readHead (): Head | undefined {
    if (!existsSync(this.headPath)) return undefined
    const buf = readFileSync(this.headPath)
    if (buf.length < HEAD_SIZE || !buf.subarray(0, 8).equals(HEAD_MAGIC)) return undefined
    if (crc32(buf.subarray(0, 56)) !== buf.readUInt32LE(56)) return undefined
    return {
      slot: Number(buf.readBigUInt64LE(8)),
      unixTime: Number(buf.readBigInt64LE(16)),
      blockhash: base58Encode(buf.subarray(24, 56))
    }
  }

  async openForAppend (): Promise<void> {
    this.log = await open(this.logPath, 'a', 0o644)
    this.head = await open(this.headPath, existsSync(this.headPath) ? 'r+' : 'w+', 0o644)
    fsyncDir(this.dir)
  }

  /** Appends a frame and fdatasyncs it; resolves once it is durable. Writes run in order. */
  async append (frame: SlotFrame): Promise<void> {
    const body = Buffer.from(JSON.stringify(frame), 'utf8')
    const header = Buffer.alloc(8)
    header.writeUInt32LE(body.length, 0)
    header.writeUInt32LE(crc32(body), 4)
    await this.enqueue(async log => {
      await log.writev([header, body])
      await log.datasync()
    })
  }

  /** Records the last closed slot (page cache only; see the module comment). Runs after earlier appends. */
  async writeHead (head: Head): Promise<void> {
    const buf = Buffer.alloc(HEAD_SIZE)
    HEAD_MAGIC.copy(buf, 0)
    buf.writeBigUInt64LE(BigInt(head.slot), 8)
    buf.writeBigInt64LE(BigInt(head.unixTime), 16)
    Buffer.from(base58Decode(head.blockhash)).copy(buf, 24)
    buf.writeUInt32LE(crc32(buf.subarray(0, 56)), 56)
    await this.enqueue(async (_log, headFile) => { await headFile.write(buf, 0, HEAD_SIZE, 0) })
  }

  private async enqueue (op: (log: FileHandle, head: FileHandle) => Promise<void>): Promise<void> {
    const run = async (): Promise<void> => {
      if (this.failed !== undefined) throw this.failed
      if (this.log === undefined || this.head === undefined) throw new LedgerError('ledger is not open for writing')
      try {
        await op(this.log, this.head)
      } catch (err) {
        // after a failed write nothing later may be reported durable
        this.failed = new LedgerError(`writing ${this.logPath} failed: ${(err as Error).message}`, { cause: err })
        throw this.failed
      }
    }
    const p = this.queue.then(run)
    this.queue = p.catch(() => {})
    await p
  }

  /** Waits for queued writes, then closes the files (the head is fsynced on a clean stop). */
  async close (): Promise<void> {
    await this.queue
    if (this.head !== undefined) {
      try { await this.head.sync() } catch { /* closing anyway */ }
      await this.head.close()
      this.head = undefined
    }
    if (this.log !== undefined) {
      await this.log.close()
      this.log = undefined
    }
  }
}

function writeDurable (path: string, data: string | Uint8Array, mode: number): void {
  const tmp = `${path}.tmp`
  const fd = openSync(tmp, 'w', mode)
  try {
    writeFileSync(fd, data)
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
  renameSync(tmp, path)
}

function fsyncDir (dir: string): void {
  const fd = openSync(dir, 'r')
  try { fsyncSync(fd) } finally { closeSync(fd) }
}

export function processAlive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** Writes a small JSON file atomically (temp file + rename). */
export function writeJsonAtomic (path: string, value: unknown): void {
  writeDurable(path, JSON.stringify(value, null, 2) + '\n', 0o644)
}
