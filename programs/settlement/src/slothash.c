/* SlotHashes lookups through sol_get_sysvar (no 20 KB sysvar account in the transaction).
 * The sysvar is [u64 count][count x (u64 slot, 32-byte hash)], newest slot first; it keeps the last
 * 512 slots, so a slot can be checked only while it is recent. */
#include "settlement.h"

#define ENTRY_SIZE 40

static u64 read_entry(u64 index, u64 *slot, u8 *hash) {
  u8 buf[ENTRY_SIZE];
  if (sol_get_sysvar(SLOT_HASHES_SYSVAR_ID.x, buf, 8 + index * ENTRY_SIZE, ENTRY_SIZE) != 0) {
    return FAIL(ERR_SEED_UNAVAILABLE, "SlotHashes unreadable");
  }
  sol_copy(slot, buf, 8);
  if (hash != NULL) sol_copy(hash, buf + 8, 32);
  return 0;
}

/* The hash of the first slot at or after `slot` that has a SlotHashes entry (a skipped slot has
 * none; its successor is just as unknowable beforehand). Refused while `slot` is in the future and
 * once it fell out of the sysvar. */
u64 slot_hash(u64 slot, u64 current_slot, u8 out[32]) {
  if (slot >= current_slot) return FAIL(ERR_SEED_UNAVAILABLE, "seed slot has not passed yet");
  u64 count;
  if (sol_get_sysvar(SLOT_HASHES_SYSVAR_ID.x, (u8 *)&count, 0, 8) != 0) return FAIL(ERR_SEED_UNAVAILABLE, "SlotHashes unreadable");
  if (count == 0) return FAIL(ERR_SEED_UNAVAILABLE, "SlotHashes empty");
  u64 newest;
  TRY(read_entry(0, &newest, out));
  if (slot > newest) return FAIL(ERR_SEED_UNAVAILABLE, "seed slot not in SlotHashes yet");
  if (slot == newest) return 0;
  /* slots strictly decrease with the index, so the entry sits at index <= newest - slot */
  u64 hi = newest - slot;
  if (hi > count - 1) hi = count - 1;
  u64 at;
  TRY(read_entry(hi, &at, out));
  if (at == slot) return 0;
  if (at > slot) return FAIL(ERR_SEED_UNAVAILABLE, "seed slot no longer in SlotHashes");
  /* entries[lo].slot > slot > entries[hi].slot: find the last index whose slot is >= slot */
  u64 lo = 0;
  while (hi - lo > 1) {
    u64 mid = lo + (hi - lo) / 2;
    TRY(read_entry(mid, &at, NULL));
    if (at == slot) { lo = mid; break; }
    if (at > slot) lo = mid; else hi = mid;
  }
  return read_entry(lo, &at, out);
}
