import { createHash } from 'node:crypto'
import type { TableEntry } from '../liveness/committee.js'

export const DOMAIN_DRAW = 'bitflow/draw/v1'

/** A node as selection sees it: its certified liveness record joined with its on-chain registration. */
export interface Candidate {
  peerId: string
  /** the operator public key (the same key as the peer id), 32 bytes */
  publicKey: Uint8Array
  /** from the certified committee round; undefined when the round does not list the node */
  liveness: TableEntry | undefined
  /** from the on-chain registry; undefined when the node is not registered */
  registration: {
    stake: bigint
    specializations: ReadonlySet<string>
    slashed: boolean
    /** payments already in flight to this node */
    paymentsInFlight: bigint
  } | undefined
}

export interface TaskRequirements {
  taskId: string
  /** VRAM needed when a GPU is used */
  vramBytes: number
  gpu: 'required' | 'optional' | 'none'
  /** dataset ids the node must hold (inputs given as dataset://<id>) */
  datasets: string[]
  /** what this task pays; with the stake ratio it bounds who may take it */
  payment: bigint
}

export interface SelectionRules {
  minStake: bigint
  /** a node's stake must stay >= ratio x its payments in flight, including this one */
  minStakeRatio: number
  /**
   * nodes whose task slots all hold open assignments, as the committee counts them (settled
   * assignments not completed yet): the certified round's free slots are up to two rounds old, and
   * a burst of requests would otherwise pile every task onto the nodes that were idle then
   */
  busy?: ReadonlySet<string>
}

export interface Selection {
  /** primary first, then backups, in draw order */
  ranked: string[]
  eligible: string[]
  /** why each other candidate was left out, for operators asking "why is nothing assigned?" */
  excluded: Record<string, string>
}

function compareBytes (a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i]! - b[i]!
  return a.length - b.length
}

/** Why a candidate cannot take the task, or undefined when it can. */
export function exclusionReason (c: Candidate, task: TaskRequirements, blacklist: ReadonlySet<string>, rules: SelectionRules): string | undefined {
  if (blacklist.has(c.peerId)) return 'blacklisted for this task'
  const reg = c.registration
  if (reg === undefined) return 'not registered on chain'
  if (reg.slashed) return 'slashed'
  if (reg.stake < rules.minStake) return `stake ${reg.stake} below the minimum ${rules.minStake}`
  if (!reg.specializations.has(task.taskId)) return 'not specialized in this task on chain'
  const live = c.liveness
  if (live === undefined) return 'not in the certified liveness round'
  if (live.status === 'offline') return 'offline in the certified liveness round'
  if (live.status === 'draining') return 'draining'
  if (live.capacity.freeSlots < 1) return 'no free task slot'
  if (rules.busy?.has(c.peerId) === true) return 'busy: every task slot holds an open assignment'
  if (!live.specializations.includes(task.taskId)) return 'does not advertise this specialization'
  if (task.gpu === 'required' && !live.hardware.gpus.some(g => g.vramBytes >= task.vramBytes)) return `no GPU with ${task.vramBytes} bytes of VRAM`
  for (const d of task.datasets) if (!live.datasets.includes(d)) return `does not hold dataset ${d}`
  // stake >= ratio x (in flight + this payment), in integers: stake * 1e6 >= ratio_ppm * total
  const ratioPpm = BigInt(Math.round(rules.minStakeRatio * 1_000_000))
  if (reg.stake * 1_000_000n < ratioPpm * (reg.paymentsInFlight + task.payment)) return `stake too low for another payment in flight (ratio ${rules.minStakeRatio})`
  return undefined
}

/**
 * The deterministic, stake-weighted draw: a pure function of the candidates, the task, the seed and
 * the blacklist, so anyone holding the certified round, the registry and the slot hash can recompute
 * it. Integer arithmetic only: draw i picks the node whose stake interval (eligible nodes ordered by
 * public key) contains H(domain || seed || i) mod total stake, then removes it.
 */
export function selectNodes (candidates: Candidate[], task: TaskRequirements, seed: Uint8Array, blacklist: ReadonlySet<string>, rules: SelectionRules, count: number): Selection {
  if (seed.length !== 32) throw new RangeError('a selection seed is 32 bytes')
  const excluded: Record<string, string> = {}
  const eligible: Candidate[] = []
  for (const c of candidates) {
    const reason = exclusionReason(c, task, blacklist, rules)
    if (reason === undefined) eligible.push(c)
    else excluded[c.peerId] = reason
  }
  eligible.sort((a, b) => compareBytes(a.publicKey, b.publicKey))
  const pool = [...eligible]
  const ranked: string[] = []
  for (let i = 0; i < count && pool.length > 0; i++) {
    const total = pool.reduce((sum, c) => sum + c.registration!.stake, 0n)
    const index = Buffer.alloc(4)
    index.writeUInt32LE(i)
    const h = createHash('sha256').update(DOMAIN_DRAW).update(seed).update(index).digest('hex')
    let r = BigInt('0x' + h) % total
    let pick = pool.length - 1
    for (let j = 0; j < pool.length; j++) {
      const stake = pool[j]!.registration!.stake
      if (r < stake) { pick = j; break }
      r -= stake
    }
    ranked.push(pool[pick]!.peerId)
    pool.splice(pick, 1)
  }
  return { ranked, eligible: eligible.map(c => c.peerId), excluded }
}

/**
 * Who could re-execute a `dataset://` task assigned to `asserter` (DESIGN.md, Proof of Sampling: such
 * a task is verifiable only where at least two nodes hold the dataset): registered, unslashed,
 * staked validators other than the asserter and off the blacklist, specialized in the task, online in
 * the certified round and advertising every dataset the task reads. Free slots and stake ratio are
 * not asked: they change with load, and a verification waits for them, while a dataset nobody else
 * holds never arrives. A task without dataset inputs can be re-executed by any validator.
 */
export function datasetVerifiers (candidates: readonly Candidate[], task: Pick<TaskRequirements, 'taskId' | 'datasets'>, asserter: string, blacklist: ReadonlySet<string>, minStake: bigint): string[] {
  const out: string[] = []
  for (const c of candidates) {
    if (c.peerId === asserter || blacklist.has(c.peerId)) continue
    const reg = c.registration
    const live = c.liveness
    if (reg === undefined || reg.slashed || reg.stake < minStake || !reg.specializations.has(task.taskId)) continue
    if (live === undefined || live.status === 'offline' || live.roles?.includes('validator') !== true) continue
    if (!live.specializations.includes(task.taskId)) continue
    if (task.datasets.every(d => live.datasets.includes(d))) out.push(c.peerId)
  }
  return out.sort()
}
