import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { join } from 'node:path'
import { Testnet, type TestnetFile, type TestnetDaemon } from '../../../scripts/lib/testnet.js'
import { tempDir, cleanup, eventually, metricValue } from '../../helpers/daemon.js'

const ROUND_MS = 3000
const dir = tempDir('committee')
const net = new Testnet(join(dir, 'net'))
let file: TestnetFile

interface Round { round: number, tableHash: string | null, certified: boolean, signers: string[], equivocators: string[], threshold: number, table: Array<{ peerId: string }> }
const byName = (name: string): TestnetDaemon => net.load()!.daemons.find(d => d.name === name)!
const latest = async (name: string): Promise<Round> => await net.client(byName(name)).call<Round>('bitflow_committeeRound')
const currentRound = (): number => Math.floor(Date.now() / ROUND_MS)

/** Waits until a round that began after now is certified at `name` (listing at least `nodes` nodes). */
async function freshCertification (name: string, nodes = 0): Promise<Round> {
  const from = currentRound()
  return await eventually(`${name} to certify a round after ${from} listing ${nodes} nodes`, async () => {
    const r = await latest(name)
    return r.certified && r.round > from && r.table.length >= nodes ? r : undefined
  }, 25_000)
}

beforeAll(async () => {
  // oracle-4 signs two different views every round
  file = await net.up({ oracles: 4, nodes: 2, validators: 0, logLevel: 'warn', argsFor: name => name === 'oracle-4' ? ['--byzantine', 'equivocate'] : [] })
}, 120_000)

afterAll(async () => {
  await net.down().catch(() => {})
  cleanup(file?.daemons.map(d => d.pid) ?? [], [dir])
})

describe('committee of 4 (threshold 3)', () => {
  it('an equivocating oracle cannot stop the honest ones from certifying, and is reported', async () => {
    // right after start-up the first rounds may not list both nodes yet (heartbeats every 2 s)
    const r = await freshCertification('oracle-1', 2)
    expect(r.threshold).toBe(3)
    expect(r.signers).not.toContain(byName('oracle-4').peerId)
    expect(r.signers.length).toBeGreaterThanOrEqual(3)
    expect(r.table.length).toBe(2)
    await eventually('oracle-4 reported as an equivocator', async () => {
      const n = await metricValue(byName('oracle-2').metricsUrl, 'bitflow_committee_equivocations_total', { oracle: byName('oracle-4').peerId })
      return n > 0 ? n : undefined
    })
    const info = await net.client(byName('oracle-1')).call<Round>('bitflow_committeeRound', [r.round])
    expect(info.equivocators).toContain(byName('oracle-4').peerId)
    // the honest oracles agree
    for (const name of ['oracle-2', 'oracle-3']) {
      const same = await eventually(`${name} on round ${r.round}`, async () => {
        const x = await net.client(byName(name)).call<Round>('bitflow_committeeRound', [r.round])
        return x.certified ? x : undefined
      })
      expect(same.tableHash).toBe(r.tableHash)
    }
  })

  it('with one oracle stopped, rounds still certify', async () => {
    await net.stopDaemon('oracle-4')
    const r = await freshCertification('oracle-1')
    expect(r.signers.sort()).toEqual(['oracle-1', 'oracle-2', 'oracle-3'].map(n => byName(n).peerId).sort())
  })

  it('with two stopped, no round certifies; with one back, certification resumes', async () => {
    await net.stopDaemon('oracle-3')
    const stoppedAt = currentRound()
    // let at least three full rounds pass with only two oracles voting
    await eventually('three rounds to pass', async () => currentRound() >= stoppedAt + 3 ? true : undefined, 20_000)
    const during = await latest('oracle-1')
    expect(during.round).toBeLessThanOrEqual(stoppedAt)
    for (let r = stoppedAt + 1; r < currentRound(); r++) {
      const info = await net.client(byName('oracle-1')).call<Round>('bitflow_committeeRound', [r])
      expect(info.certified, `round ${r}`).toBe(false)
      expect(info.signers.length).toBeLessThan(3)
    }
    await net.startDaemon('oracle-3')
    const resumed = await freshCertification('oracle-1')
    expect(resumed.round).toBeGreaterThan(stoppedAt)
    expect(resumed.signers).toContain(byName('oracle-3').peerId)
  })
})
