/**
 * What the chain says about one execution: its escrow, each task's state account and every
 * assignment attempt (primary and verification), read straight from the settlement program's
 * accounts with @solana/web3.js.
 */
import { type Connection, PublicKey } from '@solana/web3.js'
import {
  AssignmentKind, AssignmentStatus, Sampling, TaskStatus, Verdict,
  assignmentAddress, decodeAssignment, decodeExecution, decodeTaskState, nodeAddress, taskStateAddress,
  type AssignmentAccount, type ExecutionAccount, type TaskStateAccount
} from '../../programs/client/index.js'
import { taskKey } from '../../protocols/execution/ids.js'

export interface ChainTask {
  taskId: string
  /** absent: no task-state account yet (UNASSIGNED) */
  state?: TaskStateAccount
  assignments: Array<{ attempt: number, address: string, account: AssignmentAccount }>
}

export interface ChainExecution {
  address: string
  account?: ExecutionAccount
  tasks: ChainTask[]
}

/** Reads the execution account, then each task's state and assignments (attempts 0 .. nextAttempt - 1). */
export async function readChainExecution (connection: Connection, programId: PublicKey, execution: PublicKey, taskIds: readonly string[]): Promise<ChainExecution> {
  const info = await connection.getAccountInfo(execution, 'confirmed')
  const out: ChainExecution = { address: execution.toBase58(), ...(info !== null ? { account: decodeExecution(info.data) } : {}), tasks: [] }
  for (const taskId of taskIds) {
    const key = taskKey(taskId)
    const stateInfo = await connection.getAccountInfo(taskStateAddress(programId, execution, key)[0], 'confirmed')
    const task: ChainTask = { taskId, assignments: [] }
    if (stateInfo !== null) {
      task.state = decodeTaskState(stateInfo.data)
      for (let attempt = 0; attempt < task.state.nextAttempt; attempt++) {
        const address = assignmentAddress(programId, execution, key, attempt)[0]
        const a = await connection.getAccountInfo(address, 'confirmed')
        if (a !== null) task.assignments.push({ attempt, address: address.toBase58(), account: decodeAssignment(a.data) })
      }
    }
    out.tasks.push(task)
  }
  return out
}

/** node account address (base58) -> a daemon's name, for the daemons of a test net. */
export function nodeNames (programId: PublicKey, config: PublicKey, daemons: ReadonlyArray<{ name: string, solanaAddress: string }>): Map<string, string> {
  return new Map(daemons.map(d => [nodeAddress(programId, config, new PublicKey(d.solanaAddress))[0].toBase58(), d.name]))
}

/** Lines describing the execution as the chain holds it. */
export function describeChainExecution (c: ChainExecution, names: ReadonlyMap<string, string>): string[] {
  const lines: string[] = []
  if (c.account === undefined) return [`execution account ${c.address}: not found`]
  lines.push(`execution account ${c.address}: deposited ${c.account.deposited}, balance ${c.account.balance}, requested at slot ${c.account.requestSlot}`)
  c.tasks.forEach((t, i) => {
    const label = `task ${i + 1}`
    if (t.state === undefined) { lines.push(`  ${label}: no task-state account (UNASSIGNED)`); return }
    const s = t.state
    lines.push(`  ${label}: ${TaskStatus[s.status] ?? s.status}, sampling ${Sampling[s.sampling] ?? s.sampling}, ${s.nextAttempt} attempt(s)`)
    for (const { attempt, address, account: a } of t.assignments) {
      const node = names.get(a.node.toBase58()) ?? a.node.toBase58()
      const deadline = a.deadline > 0n ? new Date(Number(a.deadline) * 1000).toISOString().slice(11, 19) : '-'
      lines.push(`    attempt ${attempt} ${AssignmentKind[a.kind] ?? a.kind} -> ${node}: ${AssignmentStatus[a.status] ?? a.status}, verdict ${Verdict[a.verdict] ?? a.verdict}, payment ${a.payment}${a.paid ? ' (paid)' : ''}, assigned at slot ${a.assignedSlot}, deadline ${deadline} UTC, account ${address}`)
    }
  })
  return lines
}
