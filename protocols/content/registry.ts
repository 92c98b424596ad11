import { createHash } from 'node:crypto'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import * as Digest from 'multiformats/hashes/digest'
import { canonicalBytes } from '../canonical.js'
import { signingBytes } from '../envelope.js'
import { ed25519Verify } from '../ed25519.js'

/**
 * The taskpack registry: records `(publisher, name, version) -> CID + checksum`, signed by the
 * publisher's Ed25519 key and stored in the DHT under `/bitflow-registry/<publisher>/<name>/<version>`.
 * Names live under their publisher, so nobody can squat another publisher's name; a per-name index
 * (provider records on {@link nameIndexCid}) finds every publisher that uses a name.
 */

export const REGISTRY_NAMESPACE = 'bitflow-registry'
export const REGISTRY_RECORD_FORMAT = 'bitflow-registry/1'
/** Signature domain of a registry record (see protocols/envelope.ts). */
export const REGISTRY_SIGNING_KIND = 'taskpack-registry-record'
export const MAX_REGISTRY_RECORD_BYTES = 4096

export const TASKPACK_NAME_PATTERN = /^[a-z0-9]([a-z0-9._-]{0,62}[a-z0-9])?$/
export const TASKPACK_VERSION_PATTERN = /^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]{1,64})?$/
/** a libp2p Ed25519 peer id in base58 (12D3KooW...) */
const PUBLISHER_PATTERN = /^12D3KooW[1-9A-HJ-NP-Za-km-z]{44}$/
const CID_PATTERN = /^b[a-z2-7]{20,200}$/
const CHECKSUM_PATTERN = /^sha256:[0-9a-f]{64}$/

export class RegistryRecordError extends Error {
  readonly code: string
  constructor (code: string, message: string) {
    super(message)
    this.name = 'RegistryRecordError'
    this.code = code
  }
}

export interface RegistryRecordBody {
  format: typeof REGISTRY_RECORD_FORMAT
  /** peer id of the publisher (its Ed25519 key signs the record) */
  publisher: string
  name: string
  version: string
  /** UnixFS root of the taskpack, CIDv1 base32 */
  cid: string
  /** `sha256:<hex>` over the canonical listing of the taskpack (protocols/taskpack/pack.ts) */
  sha256: string
  /** when the publisher first published it (ISO 8601); the earliest record wins a conflict */
  publishedAt: string
}

export interface RegistryRecord extends RegistryRecordBody {
  /** base64 Ed25519 signature over signingBytes(REGISTRY_SIGNING_KIND, genesisHash, body) */
  signature: string
}

export function checkName (name: string): void {
  if (!TASKPACK_NAME_PATTERN.test(name)) throw new RegistryRecordError('ERR_REGISTRY_NAME', `'${name}' is not a taskpack name: lower-case letters, digits, '.', '_' and '-' (at most 64)`)
}

export function checkVersion (version: string): void {
  if (!TASKPACK_VERSION_PATTERN.test(version)) throw new RegistryRecordError('ERR_REGISTRY_VERSION', `'${version}' is not a semantic version such as 1.0.0`)
}

/** Parses `name@version`. */
export function parseNameVersion (ref: string): { name: string, version: string } {
  const at = ref.lastIndexOf('@')
  if (at <= 0 || at === ref.length - 1) throw new RegistryRecordError('ERR_REGISTRY_REF', `'${ref}' is not <name>@<version>, e.g. linear-regression@1.0.0`)
  const name = ref.slice(0, at)
  const version = ref.slice(at + 1)
  checkName(name)
  checkVersion(version)
  return { name, version }
}

export function registryKey (publisher: string, name: string, version: string): string {
  return `/${REGISTRY_NAMESPACE}/${publisher}/${name}/${version}`
}

export function parseRegistryKey (key: string): { publisher: string, name: string, version: string } {
  const parts = key.split('/')
  if (parts.length !== 5 || parts[0] !== '' || parts[1] !== REGISTRY_NAMESPACE) throw new RegistryRecordError('ERR_REGISTRY_KEY', `'${key.slice(0, 200)}' is not a registry key /${REGISTRY_NAMESPACE}/<publisher>/<name>/<version>`)
  const [, , publisher, name, version] = parts as [string, string, string, string, string]
  if (!PUBLISHER_PATTERN.test(publisher)) throw new RegistryRecordError('ERR_REGISTRY_KEY', `registry key names '${publisher.slice(0, 80)}', which is not an Ed25519 peer id`)
  checkName(name)
  checkVersion(version)
  return { publisher, name, version }
}

function bodyOf (r: RegistryRecordBody): RegistryRecordBody {
  return { format: r.format, publisher: r.publisher, name: r.name, version: r.version, cid: r.cid, sha256: r.sha256, publishedAt: r.publishedAt }
}

export function recordSigningBytes (genesisHash: string, body: RegistryRecordBody): Uint8Array {
  return signingBytes(REGISTRY_SIGNING_KIND, genesisHash, bodyOf(body))
}

export function signRecord (genesisHash: string, body: RegistryRecordBody, sign: (bytes: Uint8Array) => Uint8Array): RegistryRecord {
  checkBody(body)
  return { ...bodyOf(body), signature: Buffer.from(sign(recordSigningBytes(genesisHash, body))).toString('base64') }
}

export function encodeRecord (record: RegistryRecord): Uint8Array {
  return canonicalBytes(record)
}

function checkBody (b: RegistryRecordBody): void {
  if (b.format !== REGISTRY_RECORD_FORMAT) throw new RegistryRecordError('ERR_REGISTRY_RECORD', `registry record format must be ${REGISTRY_RECORD_FORMAT}`)
  if (!PUBLISHER_PATTERN.test(b.publisher)) throw new RegistryRecordError('ERR_REGISTRY_RECORD', 'registry record publisher is not an Ed25519 peer id')
  checkName(b.name)
  checkVersion(b.version)
  if (!CID_PATTERN.test(b.cid)) throw new RegistryRecordError('ERR_REGISTRY_RECORD', 'registry record cid is not a CIDv1 in base32')
  try { CID.parse(b.cid) } catch { throw new RegistryRecordError('ERR_REGISTRY_RECORD', 'registry record cid does not parse') }
  if (!CHECKSUM_PATTERN.test(b.sha256)) throw new RegistryRecordError('ERR_REGISTRY_RECORD', 'registry record sha256 must be sha256:<64 hex>')
  if (typeof b.publishedAt !== 'string' || Number.isNaN(Date.parse(b.publishedAt)) || b.publishedAt.length > 40) throw new RegistryRecordError('ERR_REGISTRY_RECORD', 'registry record publishedAt must be an ISO 8601 time')
}

/**
 * Decodes and fully checks a record: size, canonical JSON, every field, that it is the record for
 * `key` (when given), and the publisher's signature. `publicKeyOf` maps a publisher peer id to its
 * raw 32-byte Ed25519 key.
 */
export function decodeRecord (bytes: Uint8Array, genesisHash: string, publicKeyOf: (publisher: string) => Uint8Array, key?: string): RegistryRecord {
  if (bytes.length > MAX_REGISTRY_RECORD_BYTES) throw new RegistryRecordError('ERR_REGISTRY_RECORD', `registry record is ${bytes.length} bytes; at most ${MAX_REGISTRY_RECORD_BYTES}`)
  let value: unknown
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes))
  } catch {
    throw new RegistryRecordError('ERR_REGISTRY_RECORD', 'registry record is not UTF-8 JSON')
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new RegistryRecordError('ERR_REGISTRY_RECORD', 'registry record is not a JSON object')
  const r = value as Record<string, unknown>
  const allowed = new Set(['format', 'publisher', 'name', 'version', 'cid', 'sha256', 'publishedAt', 'signature'])
  for (const k of Object.keys(r)) if (!allowed.has(k)) throw new RegistryRecordError('ERR_REGISTRY_RECORD', `registry record has an unknown field '${k.slice(0, 40)}'`)
  for (const k of allowed) if (typeof r[k] !== 'string') throw new RegistryRecordError('ERR_REGISTRY_RECORD', `registry record field '${k}' must be a string`)
  const record = r as unknown as RegistryRecord
  checkBody(record)
  if (Buffer.compare(Buffer.from(encodeRecord(record)), Buffer.from(bytes)) !== 0) throw new RegistryRecordError('ERR_REGISTRY_RECORD', 'registry record is not canonical JSON')
  if (key !== undefined) {
    const k = parseRegistryKey(key)
    if (k.publisher !== record.publisher || k.name !== record.name || k.version !== record.version) {
      throw new RegistryRecordError('ERR_REGISTRY_KEY_MISMATCH', `record for ${record.publisher}/${record.name}@${record.version} stored under ${key}`)
    }
  }
  // exactly the canonical base64 of 64 bytes: Buffer's decoder skips stray characters and ignores
  // the unused bits of the last one, which would let anyone make other byte strings of one record
  const signature = Buffer.from(record.signature, 'base64')
  if (signature.length !== 64 || signature.toString('base64') !== record.signature) {
    throw new RegistryRecordError('ERR_REGISTRY_SIGNATURE', `registry record ${record.name}@${record.version} has a signature that is not the base64 of 64 bytes`)
  }
  let publicKey: Uint8Array
  try {
    publicKey = publicKeyOf(record.publisher)
  } catch {
    throw new RegistryRecordError('ERR_REGISTRY_RECORD', 'registry record publisher has no Ed25519 public key')
  }
  if (!ed25519Verify(publicKey, recordSigningBytes(genesisHash, record), new Uint8Array(signature))) {
    throw new RegistryRecordError('ERR_REGISTRY_SIGNATURE', `registry record ${record.name}@${record.version} is not signed by its publisher ${record.publisher}`)
  }
  return record
}

/**
 * Deterministic choice among valid records for one key (a publisher who signed two different
 * contents for one version): the earliest publishedAt, then the smallest CID. Versions are
 * immutable, so a later conflicting record never replaces the first.
 */
export function selectRecord (records: readonly RegistryRecord[]): number {
  let best = 0
  for (let i = 1; i < records.length; i++) {
    const a = records[i]!
    const b = records[best]!
    const ta = Date.parse(a.publishedAt)
    const tb = Date.parse(b.publishedAt)
    if (ta < tb || (ta === tb && a.cid < b.cid)) best = i
  }
  return best
}

function rawSha256Cid (text: string): CID {
  const digest = createHash('sha256').update(text, 'utf8').digest()
  return CID.createV1(raw.code, Digest.create(0x12, new Uint8Array(digest)))
}

/** The CID whose DHT providers are the publishers of name@version on this network. */
export function nameIndexCid (genesisHash: string, name: string, version: string): CID {
  return rawSha256Cid(`bitflow-registry-name/1\n${genesisHash}\n${name}@${version}`)
}

/** The CID whose DHT providers are the nodes holding a dataset (they never serve it). */
export function datasetProviderCid (genesisHash: string, datasetId: string): CID {
  return rawSha256Cid(`bitflow-dataset/1\n${genesisHash}\n${datasetId}`)
}
