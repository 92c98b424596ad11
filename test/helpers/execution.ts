import { expect } from 'vitest'
import type { BitflowClient } from '../../daemon/rpc/client.js'
import { compareWithReference } from '../../scripts/lib/demo-model.js'
import type { Tensor } from '../../protocols/tensor/safetensors.js'
import { eventually } from './daemon.js'

/** The part of bitflow_getExecutionStatus the execution tests read. */
export interface FinishedStatus { overallStatus: string, outputUris: Record<string, string | null>, reason: string | null }

/** Polls `client` until the execution is completed, failed or cancelled. */
export async function finalStatus<S extends FinishedStatus> (client: BitflowClient, executionId: string, timeoutMs: number): Promise<S> {
  return await eventually(`execution ${executionId} to finish`, async () => {
    const s = await client.call<S>('bitflow_getExecutionStatus', [executionId])
    return ['completed', 'failed', 'cancelled'].includes(s.overallStatus) ? s : undefined
  }, timeoutMs)
}

/** The execution completed and its output `y`, read through `client`, matches the reference. */
export async function expectReferenceOutput (client: BitflowClient, s: FinishedStatus, reference: Tensor): Promise<void> {
  expect(s.overallStatus, JSON.stringify(s)).toBe('completed')
  const got = await client.call<{ safetensorsBase64: string }>('bitflow_getTensor', [s.outputUris.y])
  const cmp = compareWithReference('y', new Uint8Array(Buffer.from(got.safetensorsBase64, 'base64')), reference)
  expect(cmp.match, JSON.stringify(cmp)).toBe(true)
}
