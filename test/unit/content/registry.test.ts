import { describe, it, expect } from 'vitest'
import { MemoryDatastore } from 'datastore-core'
import { Identity } from '../../../daemon/identity.js'
import { RegistryRecords } from '../../../daemon/content/registry.js'
import {
  signRecord, encodeRecord, decodeRecord, registryKey, parseNameVersion, nameIndexCid, REGISTRY_RECORD_FORMAT, type RegistryRecordBody
} from '../../../protocols/content/registry.js'
import { datasetId, parseDatasetUri } from '../../../protocols/content/dataset.js'

const genesis = 'a'.repeat(64)
const publisher = Identity.generate()
const body = (cid: string, publishedAt = '2026-01-01T00:00:00.000Z'): RegistryRecordBody => ({
  format: REGISTRY_RECORD_FORMAT, publisher: publisher.peerId.toString(), name: 'stats', version: '1.0.0', cid, sha256: `sha256:${'0'.repeat(64)}`, publishedAt
})
const CID1 = 'bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi'
const CID2 = 'bafybeibwzifw52ttrkqlikfzext5akxu7lz4xiwjgwzmqcpdzmp3n5vnbe'
const key = (): Uint8Array => new TextEncoder().encode(registryKey(publisher.peerId.toString(), 'stats', '1.0.0'))
const sign = (b: RegistryRecordBody, who = publisher, g = genesis): Uint8Array => encodeRecord(signRecord(g, b, bytes => who.sign(bytes)))

describe('taskpack registry records', () => {
  it('parse name@version and reject bad refs', () => {
    expect(parseNameVersion('linear-regression@1.2.3')).toEqual({ name: 'linear-regression', version: '1.2.3' })
    expect(() => parseNameVersion('nover')).toThrow(/<name>@<version>/)
    expect(() => parseNameVersion('Bad@1.0.0')).toThrow(/not a taskpack name/)
    expect(() => parseNameVersion('ok@1.0')).toThrow(/semantic version/)
  })

  it('verify the publisher signature, the key, and the network', () => {
    const bytes = sign(body(CID1))
    const k = registryKey(publisher.peerId.toString(), 'stats', '1.0.0')
    const pk = (): Uint8Array => publisher.publicKey
    expect(decodeRecord(bytes, genesis, pk, k).cid).toBe(CID1)
    // another network's genesis: the signature is worthless
    expect(() => decodeRecord(bytes, 'b'.repeat(64), pk, k)).toThrow(/not signed by its publisher/)
    // someone else's key cannot sign for this publisher
    expect(() => decodeRecord(sign(body(CID1), Identity.generate()), genesis, pk, k)).toThrow(/not signed by its publisher/)
    // stored under another name
    expect(() => decodeRecord(bytes, genesis, pk, registryKey(publisher.peerId.toString(), 'other', '1.0.0'))).toThrow(/stored under/)
    // tampered
    const tampered = new TextEncoder().encode(new TextDecoder().decode(bytes).replace(CID1, CID2))
    expect(() => decodeRecord(tampered, genesis, pk, k)).toThrow(/not signed/)
    expect(() => decodeRecord(new TextEncoder().encode('{"x":1}'), genesis, pk, k)).toThrow(/unknown field/)
  })

  it('the DHT validator keeps versions immutable and the selector prefers the earliest record', async () => {
    const records = new RegistryRecords(genesis, new MemoryDatastore())
    const first = sign(body(CID1, '2026-01-01T00:00:00.000Z'))
    const conflicting = sign(body(CID2, '2025-12-31T00:00:00.000Z'))
    await records.validate(key(), first)
    await records.validate(key(), first)
    await expect(records.validate(key(), conflicting)).rejects.toThrow(/already .*versions are immutable/)
    await expect(records.validate(key(), sign(body(CID1), Identity.generate()))).rejects.toThrow(/not signed/)
    const later = sign(body(CID2, '2026-02-01T00:00:00.000Z'))
    expect(records.select(key(), [later, first])).toBe(1)
    expect(records.select(key(), [new Uint8Array([1, 2]), first])).toBe(1)
  })

  it('the name index CID depends on network, name and version only', () => {
    expect(nameIndexCid(genesis, 'a', '1.0.0').toString()).toBe(nameIndexCid(genesis, 'a', '1.0.0').toString())
    expect(nameIndexCid(genesis, 'a', '1.0.0').toString()).not.toBe(nameIndexCid(genesis, 'a', '1.0.1').toString())
    expect(nameIndexCid(genesis, 'a', '1.0.0').toString()).not.toBe(nameIndexCid('b'.repeat(64), 'a', '1.0.0').toString())
  })
})

describe('dataset ids', () => {
  it('are content-derived and order-independent', () => {
    const f = [{ path: 'b.csv', size: 3, sha256: '1'.repeat(64) }, { path: 'a/x.bin', size: 9, sha256: '2'.repeat(64) }]
    expect(datasetId(f)).toBe(datasetId([...f].reverse()))
    expect(datasetId(f)).not.toBe(datasetId([{ ...f[0]!, size: 4 }, f[1]!]))
    expect(parseDatasetUri(`dataset://${datasetId(f)}`)).toBe(datasetId(f))
    expect(() => parseDatasetUri('dataset://../../etc')).toThrow(/not a dataset id/)
  })
})
