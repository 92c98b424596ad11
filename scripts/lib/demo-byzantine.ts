/**
 * `demo --byzantine`: the same execution on a net where one node cheats. node-1 runs with
 * `--byzantine wrong-output` (it perturbs its outputs before committing), every result is sampled
 * (samplingProbability 1) and two validators re-execute (demo.ts starts two with --byzantine). node-1 gets more stake than the others, so the
 * stake-weighted selection picks it for the first task: its fraud is caught by the verifier, the task
 * is reassigned, the re-execution sides with the verifier, and the committee slashes node-1 on chain.
 * The demo prints one line per slash read from the chain:
 *   SLASHED node=<node account> stake_before=<n> stake_after=<n> bounty=<n>
 */
import { PublicKey } from '@solana/web3.js'
import { decodeConfig, SlashStatus } from '../../programs/client/index.js'
import type { Testnet, TestnetFile, TestnetRole, UpOptions } from './testnet.js'
import { addTestnetStake, chainConnection, nodeAccountOf, readChainSlashes, slashedLine, type ChainSlash } from './slashing.js'

export const DISHONEST = 'node-1'
/** the dishonest node's stake relative to an honest node's */
const STAKE_FACTOR = 50n

/** Test-net options of the byzantine demo (they override the honest demo's). */
export function byzantineUpOptions (taskIds: string[], trustConfig: () => string): Pick<UpOptions, 'settlement' | 'specializationsFor' | 'argsFor'> {
  return {
    settlement: { samplingProbability: 1 },
    // validators re-execute the model's tasks, so they specialize in them too
    specializationsFor: () => taskIds,
    argsFor: (name: string, _role: TestnetRole) => ['--config', trustConfig(), ...(name === DISHONEST ? ['--byzantine', 'wrong-output'] : [])]
  }
}

/** Gives the dishonest node STAKE_FACTOR x an honest node's stake (selection is stake-weighted). */
export async function prepareByzantine (net: Testnet, file: TestnetFile, say: (m: string) => void): Promise<void> {
  const chain = file.chain!
  const d = file.daemons.find(x => x.name === DISHONEST)!
  const config = decodeConfig((await chainConnection(chain).getAccountInfo(new PublicKey(chain.config)))!.data)
  const honestStake = config.params.minStake * 10n
  await addTestnetStake(net.dir, chain, d, honestStake * (STAKE_FACTOR - 1n))
  say(`${DISHONEST} runs with --byzantine wrong-output and stakes ${honestStake * STAKE_FACTOR} (${STAKE_FACTOR}x the others), so the stake-weighted draw picks it first; every result is sampled (p = 1)`)
}

/**
 * Waits (up to `timeoutMs`) until the dishonest node's slash is executed and every recorded slash of
 * the network is executed; prints one SLASHED line per slash. Returns whether the dishonest node was
 * slashed.
 */
export async function reportSlashes (file: TestnetFile, timeoutMs: number, say: (m: string) => void): Promise<boolean> {
  const chain = file.chain!
  const connection = chainConnection(chain)
  const dishonest = nodeAccountOf(chain, file.daemons.find(x => x.name === DISHONEST)!)
  say(`waiting up to ${Math.round(timeoutMs / 1000)} s for the committee to slash ${DISHONEST} (${dishonest.toBase58()}) on chain (record, then execute after the challenge delay)`)
  const deadline = Date.now() + timeoutMs
  let slashes: ChainSlash[] = []
  for (;;) {
    slashes = await readChainSlashes(connection, chain).catch(() => slashes)
    const done = slashes.some(s => s.slash.accused.equals(dishonest) && s.slash.status === SlashStatus.Executed) && slashes.every(s => s.slash.status === SlashStatus.Executed)
    if (done || Date.now() > deadline) break
    await new Promise(resolve => setTimeout(resolve, 500))
  }
  const names = new Map(file.daemons.map(d => [nodeAccountOf(chain, d).toBase58(), d.name]))
  for (const s of slashes) {
    if (s.slash.status !== SlashStatus.Executed) { say(`slash of ${names.get(s.slash.accused.toBase58()) ?? s.slash.accused.toBase58()} is recorded but not executed yet`); continue }
    say(`${names.get(s.slash.accused.toBase58()) ?? 'a node'} was slashed: ${s.slash.amount} taken, ${s.slash.bounty} to the prover's owner, ${s.slash.amount - s.slash.bounty} to the treasury`)
    console.log(slashedLine(s))
  }
  return slashes.some(s => s.slash.accused.equals(dishonest) && s.slash.status === SlashStatus.Executed)
}
