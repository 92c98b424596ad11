/* ChangeCommittee: a quorum of the current committee replaces it; the committee epoch goes up by one,
 * so signatures made for the old epoch (or by members who left) no longer count. */
#include "settlement.h"

/* accounts: 0 config (writable), 1 instructions sysvar */
u64 change_committee(const Context *ctx) {
  if (ctx->accounts_len < 2) return FAIL(ERR_NOT_ENOUGH_ACCOUNTS, "change_committee needs 2 accounts");
  SolAccountInfo *config_acc = &ctx->accounts[0];
  SolAccountInfo *sysvar = &ctx->accounts[1];
  if (ctx->args_len < sizeof(ChangeCommitteeArgs)) return FAIL(ERR_INVALID_INSTRUCTION, "change_committee arguments too short");
  ChangeCommitteeArgs args;
  sol_copy(&args, ctx->args, sizeof args);
  u64 n = args.committee_len;
  if (n == 0 || n > MAX_COMMITTEE) return FAIL(ERR_INVALID_COMMITTEE, "committee must have 1 to 7 members");
  if (ctx->args_len != sizeof(ChangeCommitteeArgs) + 32 * n) return FAIL(ERR_INVALID_INSTRUCTION, "change_committee argument length");
  if (!is_zero(args.reserved, sizeof args.reserved)) return FAIL(ERR_INVALID_INSTRUCTION, "reserved bytes must be zero");
  const u8 *members = ctx->args + sizeof(ChangeCommitteeArgs);
  for (u64 i = 0; i < n; i++) {
    if (bytes32_is_zero(members + 32 * i)) return FAIL(ERR_INVALID_COMMITTEE, "committee member is the zero key");
    for (u64 j = 0; j < i; j++) {
      if (bytes32_eq(members + 32 * i, members + 32 * j)) return FAIL(ERR_INVALID_COMMITTEE, "committee member listed twice");
    }
  }

  Config *c;
  TRY(load_config(ctx, config_acc, &c));
  TRY(require_writable(config_acc));
  SolClock clock;
  TRY(read_clock(&clock));
  if (clock.slot > args.expiry_slot) return FAIL(ERR_EXPIRED, "committee change expired");
  u8 digest[32];
  committee_digest(ctx, c, &args, members, digest);
  TRY(verify_quorum(c, sysvar, digest));

  u64 epoch;
  if (!add_u64(c->committee_epoch, 1, &epoch)) return FAIL(ERR_ARITHMETIC_OVERFLOW, "committee epoch overflow");
  sol_zero(c->committee, sizeof c->committee);
  sol_copy(c->committee, members, 32 * n);
  c->committee_len = (u8)n;
  c->threshold = (u8)((2 * n + 2) / 3);
  c->committee_epoch = epoch;
  return 0;
}
