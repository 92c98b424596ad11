/** A real cluster's blockhash lifetime in slots (MAX_PROCESSING_AGE): 60 s at 400 ms slots. */
export const BLOCKHASH_TTL_SLOTS = 150
/** Entries in the SlotHashes sysvar (Solana's MAX_ENTRIES). */
export const SLOT_HASHES_ENTRIES = 512

/**
 * web3.js caches a blockhash for 30 s (BLOCKHASH_CACHE_TIMEOUT_MS), trusting the 60 s a real
 * cluster gives it. With faster local slots the default lifetime is therefore the longer of 150
 * slots and 60 s worth of slots, or a cached blockhash could already be expired.
 */
export function defaultBlockhashTtlSlots (slotMs: number): number {
  return Math.max(BLOCKHASH_TTL_SLOTS, Math.ceil(60_000 / slotMs))
}
