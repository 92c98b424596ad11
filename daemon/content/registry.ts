import { createHash } from 'node:crypto'
import { Key, type Datastore } from 'interface-datastore'
import { peerIdFromString } from '@libp2p/peer-id'
import { CID } from 'multiformats/cid'
import type { BitflowLibp2p } from '../network/libp2p.js'
import type { BitflowMetrics } from '../metrics.js'
import type { Logger } from '../logger.js'
import type { Identity } from '../identity.js'
import type { ContentStore } from './store.js'
import type { BlockTransfer, FetchOptions } from './transfer.js'
import {
  REGISTRY_NAMESPACE, REGISTRY_RECORD_FORMAT, RegistryRecordError, decodeRecord, encodeRecord, registryKey, signRecord,
  selectRecord, nameIndexCid, parseRegistryKey, checkName, checkVersion, type RegistryRecord
} from '../../protocols/content/registry.js'
import * as dagPb from '@ipld/dag-pb'
import { unixfsType, CODEC_RAW } from '../../protocols/content/blocks.js'
import { packTaskpack } from '../../protocols/taskpack/validate.js'
import { listingChecksum, type PackEntry } from '../../protocols/taskpack/pack.js'

/** What kad-dht calls to validate and choose records (see Libp2pConfig.dhtValidators/dhtSelectors). */
export type DhtValidateFn = (key: Uint8Array, value: Uint8Array) => Promise<void>
export type DhtSelectFn = (key: Uint8Array, records: Uint8Array[]) => number

export function publisherPublicKey (publisher: string): Uint8Array {
  const id = peerIdFromString(publisher)
  if (id.type !== 'Ed25519' || id.publicKey === undefined) throw new Error(`${publisher} is not an Ed25519 peer id`)
  return id.publicKey.raw
}

const SEEN_PREFIX = '/bitflow/registry/seen'
const RECORD_PREFIX = '/bitflow/registry/records'

/**
 * The DHT side of the registry, usable before libp2p exists: validates `/bitflow-registry/...`
 * records (shape, key match, publisher signature, and versions are immutable — a record whose CID
 * differs from the first one this node accepted for that key is rejected) and selects among
 * records (earliest publishedAt, then smallest CID).
 */
export class RegistryRecords {
  readonly #genesisHash: string
  readonly #datastore: Datastore
  #metrics: BitflowMetrics | undefined

  constructor (genesisHash: string, datastore: Datastore, metrics?: BitflowMetrics) {
    this.#genesisHash = genesisHash
    this.#datastore = datastore
    this.#metrics = metrics
  }

  set metrics (m: BitflowMetrics) { this.#metrics = m }

  decode (key: string, value: Uint8Array): RegistryRecord {
    return decodeRecord(value, this.#genesisHash, publisherPublicKey, key)
  }

  readonly validate: DhtValidateFn = async (keyBytes, value) => {
    const key = new TextDecoder().decode(keyBytes)
    try {
      const record = this.decode(key, value)
      const seenKey = new Key(`${SEEN_PREFIX}/${record.publisher}/${record.name}/${record.version}`)
      let first: string | undefined
      try {
        first = new TextDecoder().decode(await this.#datastore.get(seenKey))
      } catch { /* not seen yet */ }
      if (first !== undefined && first !== record.cid) {
        throw new RegistryRecordError('ERR_REGISTRY_IMMUTABLE', `${record.publisher}/${record.name}@${record.version} is already ${first}; versions are immutable`)
      }
      if (first === undefined) await this.#datastore.put(seenKey, new TextEncoder().encode(record.cid))
      this.#metrics?.registryRecords.inc({ verdict: 'accept' })
    } catch (err) {
      this.#metrics?.registryRecords.inc({ verdict: 'reject' })
      throw err
    }
  }

  readonly select: DhtSelectFn = (keyBytes, values) => {
    const key = new TextDecoder().decode(keyBytes)
    const decoded: Array<{ i: number, r: RegistryRecord }> = []
    values.forEach((v, i) => {
      try { decoded.push({ i, r: this.decode(key, v) }) } catch { /* invalid records lose */ }
    })
    if (decoded.length === 0) return 0
    return decoded[selectRecord(decoded.map(d => d.r))]!.i
  }

  /** The validators/selectors maps to hand to kad-dht. */
  dhtOptions (): { validators: Record<string, DhtValidateFn>, selectors: Record<string, DhtSelectFn> } {
    return { validators: { [REGISTRY_NAMESPACE]: this.validate }, selectors: { [REGISTRY_NAMESPACE]: this.select } }
  }
}

export interface RegistryEntry {
  publisher: string
  name: string
  version: string
  cid: string
  sha256: string
  publishedAt: string
  /** the publisher is on this node's publishers.allow list (or is this node) */
  allowListed: boolean
  signature: string
}

export interface ResolveResult {
  name: string
  version: string
  /** the entry this node would use, or null when nobody publishes the name */
  chosen: RegistryEntry | null
  publishers: RegistryEntry[]
  /** several publishers use this name@version */
  ambiguous: boolean
  note: string
}

export interface PublishResult {
  record: RegistryEntry
  key: string
  files: number
  bytes: number
  /** the same record was already published (nothing changed) */
  existing: boolean
  warnings: string[]
}

export class RegistryError extends Error {
  readonly code: string
  constructor (code: string, message: string) {
    super(message)
    this.name = 'RegistryError'
    this.code = code
  }
}

export interface TaskpackRegistryInit {
  libp2p: BitflowLibp2p
  store: ContentStore
  transfer: BlockTransfer
  datastore: Datastore
  records: RegistryRecords
  identity: Identity
  genesisHash: string
  allow: string[]
  metrics: BitflowMetrics
  log: Logger
}

const QUERY_MS = 6000

export class TaskpackRegistry {
  readonly #i: TaskpackRegistryInit
  readonly #self: string

  constructor (init: TaskpackRegistryInit) {
    this.#i = init
    this.#self = init.identity.peerId.toString()
  }

  #allowed (publisher: string): boolean {
    return publisher === this.#self || this.#i.allow.includes(publisher)
  }

  #entry (r: RegistryRecord): RegistryEntry {
    return { publisher: r.publisher, name: r.name, version: r.version, cid: r.cid, sha256: r.sha256, publishedAt: r.publishedAt, signature: r.signature, allowListed: this.#allowed(r.publisher) }
  }

  async #localRecord (publisher: string, name: string, version: string): Promise<RegistryRecord | undefined> {
    const key = registryKey(publisher, name, version)
    try {
      return this.#i.records.decode(key, await this.#i.datastore.get(new Key(`${RECORD_PREFIX}/${publisher}/${name}/${version}`)))
    } catch {
      return undefined
    }
  }

  async #keep (record: RegistryRecord): Promise<void> {
    await this.#i.datastore.put(new Key(`${RECORD_PREFIX}/${record.publisher}/${record.name}/${record.version}`), encodeRecord(record))
  }

  async #dhtGet (key: string, signal?: AbortSignal): Promise<RegistryRecord | undefined> {
    try {
      const value = await this.#i.libp2p.contentRouting.get(new TextEncoder().encode(key), { signal: AbortSignal.any([AbortSignal.timeout(QUERY_MS), ...(signal !== undefined ? [signal] : [])]) })
      return this.#i.records.decode(key, value)
    } catch {
      return undefined
    }
  }

  async #announce (record: RegistryRecord, signal?: AbortSignal): Promise<void> {
    const key = registryKey(record.publisher, record.name, record.version)
    const timeout = AbortSignal.any([AbortSignal.timeout(15_000), ...(signal !== undefined ? [signal] : [])])
    try {
      await this.#i.libp2p.contentRouting.put(new TextEncoder().encode(key), encodeRecord(record), { signal: timeout })
    } catch (err) {
      this.#i.log.warn({ err, key }, 'registry record put did not reach the DHT (kept locally; republished later)')
    }
    await this.#i.store.provide(nameIndexCid(this.#i.genesisHash, record.name, record.version), signal)
    await this.#i.store.provide(CID.parse(record.cid), signal)
  }

  /** Packs `dir` into the store, pins it, signs and announces the registry record. */
  async publish (dir: string, signal?: AbortSignal): Promise<PublishResult> {
    const { check, packed } = await this.#i.store.gate.shared(async () => {
      const result = await packTaskpack(dir, { blockstore: this.#i.store.helia.blockstore, ...(signal !== undefined ? { signal } : {}) })
      await this.#i.store.pin(result.packed.cid, { type: 'taskpack', name: result.check.parsed.manifest.metadata.name, version: result.check.parsed.manifest.metadata.version })
      return result
    })
    const { name, version } = check.parsed.manifest.metadata
    const cid = packed.cidString
    const key = registryKey(this.#self, name, version)
    let existing = await this.#localRecord(this.#self, name, version)
    existing ??= await this.#dhtGet(key, signal)
    if (existing !== undefined && existing.cid !== cid) {
      // the new pack stays pinned only if something else needs it
      throw new RegistryError('ERR_VERSION_EXISTS', `${name}@${version} is already published by this node as ${existing.cid} (${existing.publishedAt}); versions are immutable: bump metadata.version in manifest.yaml`)
    }
    const record = existing ?? signRecord(this.#i.genesisHash, {
      format: REGISTRY_RECORD_FORMAT, publisher: this.#self, name, version, cid, sha256: packed.checksum, publishedAt: new Date().toISOString()
    }, bytes => this.#i.identity.sign(bytes))
    await this.#keep(record)
    // the validator remembers the first CID for the key
    await this.#i.records.validate(new TextEncoder().encode(key), encodeRecord(record))
    await this.#announce(record, signal)
    this.#i.log.info({ name, version, cid }, existing !== undefined ? 'taskpack already published' : 'taskpack published')
    return { record: this.#entry(record), key, files: packed.entries.filter(e => e.kind === 'file').length, bytes: packed.totalBytes, existing: existing !== undefined, warnings: check.warnings }
  }

  /** Every publisher of name@version this node can find, the allow-listed one preferred. */
  async resolve (name: string, version: string, signal?: AbortSignal): Promise<ResolveResult> {
    checkName(name)
    checkVersion(version)
    const publishers = new Set<string>()
    for await (const key of this.#i.datastore.queryKeys({ prefix: RECORD_PREFIX })) {
      const parts = key.toString().split('/')
      if (parts.at(-2) === name && parts.at(-1) === version) publishers.add(parts.at(-3)!)
    }
    try {
      const query = AbortSignal.any([AbortSignal.timeout(QUERY_MS), ...(signal !== undefined ? [signal] : [])])
      for await (const p of this.#i.libp2p.contentRouting.findProviders(nameIndexCid(this.#i.genesisHash, name, version), { signal: query })) {
        publishers.add(p.id.toString())
        if (publishers.size >= 64) break
      }
    } catch (err) {
      signal?.throwIfAborted()
      this.#i.log.debug({ err }, 'name index lookup ended')
    }
    const entries: RegistryEntry[] = []
    await Promise.all([...publishers].map(async publisher => {
      let record = await this.#localRecord(publisher, name, version)
      if (record === undefined) {
        record = await this.#dhtGet(registryKey(publisher, name, version), signal)
        if (record !== undefined) await this.#keep(record)
      }
      if (record !== undefined) entries.push(this.#entry(record))
    }))
    entries.sort((a, b) => Number(b.allowListed) - Number(a.allowListed) || Date.parse(a.publishedAt) - Date.parse(b.publishedAt) || a.publisher.localeCompare(b.publisher))
    const chosen = entries[0] ?? null
    let note: string
    if (chosen === null) note = `no publisher of ${name}@${version} found`
    else if (entries.length === 1) note = chosen.allowListed ? `published by ${chosen.publisher} (allow-listed)` : `published by ${chosen.publisher}, which is not on this node's publishers.allow list`
    else {
      const allowed = entries.filter(e => e.allowListed).length
      note = `${entries.length} publishers use ${name}@${version}; ` + (allowed > 0
        ? `chose ${chosen.publisher}, on this node's publishers.allow list${allowed > 1 ? ` (${allowed} allow-listed: the earliest record wins)` : ''}`
        : `none is on this node's publishers.allow list; chose the earliest record, by ${chosen.publisher} — name the publisher to be sure`)
    }
    return { name, version, chosen, publishers: entries, ambiguous: entries.length > 1, note }
  }

  /** Fetches a resolved taskpack's DAG, checks its listing checksum against the record, pins it. */
  async fetch (entry: RegistryEntry, options: { signal?: AbortSignal, id?: string, onProgress?: FetchOptions['onProgress'] } = {}): Promise<{ source: string, bytes: number }> {
    const cid = CID.parse(entry.cid)
    const result = await this.#i.transfer.fetch(cid, { providers: [entry.publisher], ...options })
    const checksum = await this.taskpackChecksum(cid)
    if (checksum !== entry.sha256) throw new RegistryError('ERR_REGISTRY_CHECKSUM', `taskpack ${entry.cid} has listing checksum ${checksum}, but the record of ${entry.publisher} says ${entry.sha256}`)
    await this.#i.store.gate.shared(async () => await this.#i.store.pin(cid, { type: 'taskpack', name: entry.name, version: entry.version, publisher: entry.publisher }))
    return { source: result.source, bytes: result.bytes }
  }

  /** The canonical listing checksum of a local UnixFS directory (as protocols/taskpack computes it). */
  async taskpackChecksum (root: CID): Promise<string> {
    const entries: PackEntry[] = []
    const walk = async (cid: CID, prefix: string): Promise<void> => {
      const bytes = await this.#i.store.getLocal(cid)
      if (cid.code === CODEC_RAW || unixfsType(bytes) !== 1) throw new RegistryError('ERR_REGISTRY_NOT_TASKPACK', `${cid.toString()}${prefix !== '' ? ` at ${prefix}` : ''} is not a UnixFS directory`)
      for (const link of dagPb.decode(bytes).Links) {
        const name = link.Name ?? ''
        const path = prefix === '' ? name : `${prefix}/${name}`
        const child = link.Hash as CID
        const isDir = child.code !== CODEC_RAW && unixfsType(await this.#i.store.getLocal(child)) === 1
        if (isDir) {
          entries.push({ path, kind: 'dir', size: 0 })
          await walk(child, path)
        } else {
          const h = createHash('sha256')
          let size = 0
          for await (const chunk of this.#i.store.cat(child)) { h.update(chunk); size += chunk.length }
          entries.push({ path, kind: 'file', size, sha256: h.digest('hex') })
        }
      }
    }
    await walk(root, '')
    return listingChecksum(entries)
  }

  /** Taskpack records this node knows: its own and those it resolved. */
  async list (filter: { publisher?: string, name?: string } = {}): Promise<RegistryEntry[]> {
    const out: RegistryEntry[] = []
    for await (const { key, value } of this.#i.datastore.query({ prefix: RECORD_PREFIX })) {
      const [publisher, name, version] = key.toString().slice(RECORD_PREFIX.length + 1).split('/') as [string, string, string]
      if (filter.publisher !== undefined && filter.publisher !== publisher) continue
      if (filter.name !== undefined && filter.name !== name) continue
      try {
        out.push(this.#entry(this.#i.records.decode(registryKey(publisher, name, version), value)))
      } catch { /* a record that no longer verifies is skipped */ }
    }
    return out.sort((a, b) => a.name.localeCompare(b.name) || a.version.localeCompare(b.version) || a.publisher.localeCompare(b.publisher))
  }

  /** Re-announces this node's own records (DHT records and provider records expire). */
  async republish (signal?: AbortSignal): Promise<number> {
    let n = 0
    for (const e of await this.list({ publisher: this.#self })) {
      const record = await this.#localRecord(e.publisher, e.name, e.version)
      if (record === undefined) continue
      await this.#announce(record, signal)
      n++
    }
    return n
  }
}

export { parseRegistryKey }
