/** Versioned names of every wire protocol and gossip topic. Every id carries its version. */

export const NETWORK_NAME_PATTERN = /^[a-z][a-z0-9-]{0,31}$/

export type GossipTopicKind = 'liveness' | 'committee' | 'execution' | 'probe'

export function gossipTopic (network: string, kind: GossipTopicKind): string {
  return `/bitflow/${network}/${kind}/1`
}

export function kadProtocol (network: string): string {
  return `/bitflow/${network}/kad/1.0.0`
}

export function streamProtocol (network: string, name: string): string {
  return `/bitflow/${network}/${name}/1.0.0`
}

/** The bulk block-transfer protocol for tensors and taskpacks (daemon/content/transfer.ts). */
export function blocksProtocol (network: string): string {
  return streamProtocol(network, 'blocks')
}

/** Catch-up of executions: a daemon asks peers for the signed messages of unfinished executions (daemon/execution/sync.ts). */
export function executionSyncProtocol (network: string): string {
  return streamProtocol(network, 'execution-sync')
}
