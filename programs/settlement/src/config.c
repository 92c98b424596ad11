/* InitializeConfig: creates a network's config at PDA ["config", genesis_hash]. */
#include "settlement.h"

static const u8 SEED_CONFIG[] = {'c', 'o', 'n', 'f', 'i', 'g'};

/* Bounds on each parameter, then the Proof-of-Sampling safety condition
 *   p > C / ((1 - r)(R + S)),  S >= slash x min_stake_ratio (both in units of the task payment),
 * checked in integers as p_ppm * (BPS - r) * (R + S) > C * PPM * BPS. */
static u64 check_params(const Params *p) {
  if (p->min_stake == 0) return FAIL(ERR_INVALID_PARAMS, "min_stake must be positive");
  if (p->challenge_delay == 0) return FAIL(ERR_INVALID_PARAMS, "challenge_delay must be positive");
  if (p->unbonding_delay <= p->challenge_delay) return FAIL(ERR_INVALID_PARAMS, "unbonding_delay must exceed challenge_delay");
  if (p->unbonding_delay > 10ULL * 366 * 24 * 3600) return FAIL(ERR_INVALID_PARAMS, "unbonding_delay over 10 years");
  if (p->min_fee == 0) return FAIL(ERR_INVALID_PARAMS, "min_fee must be positive");
  if (p->sampling_ppm == 0 || p->sampling_ppm > PPM) return FAIL(ERR_INVALID_PARAMS, "sampling probability out of (0, 1]");
  if (p->validator_reward_bps < BPS || p->validator_reward_bps > 10 * BPS) return FAIL(ERR_INVALID_PARAMS, "validator reward multiple out of [1, 10]");
  if (p->slash_bps == 0 || p->slash_bps > BPS) return FAIL(ERR_INVALID_PARAMS, "slash fraction out of (0, 1]");
  if (p->bounty_bps > BPS / 2) return FAIL(ERR_INVALID_PARAMS, "bounty share over 50% of a slash");
  if (p->compute_cost_bps > 100 * BPS) return FAIL(ERR_INVALID_PARAMS, "compute cost ratio over 100");
  if (p->collusion_bps >= BPS) return FAIL(ERR_INVALID_PARAMS, "collusion fraction must be below 1");
  if (p->min_stake_ratio_bps == 0 || p->min_stake_ratio_bps > 1000 * BPS) return FAIL(ERR_INVALID_PARAMS, "min stake ratio out of (0, 1000]");
  if (p->seed_delay_slots == 0 || p->seed_delay_slots > 256) return FAIL(ERR_INVALID_PARAMS, "seed delay K out of [1, 256] slots");
  if (p->deadline_base_secs == 0 || p->deadline_base_secs > 7 * 24 * 3600) return FAIL(ERR_INVALID_PARAMS, "deadline base out of (0, 1 week]");
  if (p->deadline_per_100cu_secs > 24 * 3600) return FAIL(ERR_INVALID_PARAMS, "deadline per 100 compute units over a day");
  if (p->unverifiable_pay_bps == 0 || p->unverifiable_pay_bps >= BPS) return FAIL(ERR_INVALID_PARAMS, "unverifiable pay out of (0, 1)");
  if (p->reserved != 0) return FAIL(ERR_INVALID_PARAMS, "reserved parameter must be zero");
  /* all factors are bounded above, so none of these products overflows */
  u64 slash_units = (u64)p->slash_bps * p->min_stake_ratio_bps / BPS;
  u64 lhs = (u64)p->sampling_ppm * (BPS - p->collusion_bps) * ((u64)p->validator_reward_bps + slash_units);
  u64 rhs = (u64)p->compute_cost_bps * PPM * BPS;
  if (lhs <= rhs) return FAIL(ERR_UNSAFE_PARAMS, "p <= C / ((1 - r)(R + S)): sampling would not deter cheating");
  return 0;
}

/* accounts: 0 payer (signer, writable), 1 config (writable), 2 stake mint, 3 treasury token account,
 *           4 system program */
u64 initialize_config(const Context *ctx) {
  if (ctx->accounts_len < 5) return FAIL(ERR_NOT_ENOUGH_ACCOUNTS, "initialize_config needs 5 accounts");
  SolAccountInfo *payer = &ctx->accounts[0];
  SolAccountInfo *config = &ctx->accounts[1];
  SolAccountInfo *mint = &ctx->accounts[2];
  SolAccountInfo *treasury = &ctx->accounts[3];
  SolAccountInfo *system = &ctx->accounts[4];

  if (ctx->args_len < sizeof(InitConfigArgs)) return FAIL(ERR_INVALID_INSTRUCTION, "initialize_config arguments too short");
  InitConfigArgs args;
  sol_copy(&args, ctx->args, sizeof args);
  u64 n = args.committee_len;
  if (n == 0 || n > MAX_COMMITTEE) return FAIL(ERR_INVALID_COMMITTEE, "committee must have 1 to 7 members");
  if (ctx->args_len != sizeof(InitConfigArgs) + 32 * n) return FAIL(ERR_INVALID_INSTRUCTION, "initialize_config argument length");
  for (int i = 0; i < 7; i++) {
    if (args.reserved[i] != 0) return FAIL(ERR_INVALID_INSTRUCTION, "reserved bytes must be zero");
  }

  TRY(require_signer(payer));
  TRY(require_writable(payer));
  TRY(require_writable(config));
  TRY(require_system_program(system));
  if (key_eq(config->owner, ctx->program_id)) return FAIL(ERR_ALREADY_INITIALIZED, "config already exists");
  if (!key_eq(config->owner, &SYSTEM_PROGRAM_ID) || config->data_len != 0) {
    return FAIL(ERR_WRONG_ACCOUNT_OWNER, "config address holds another program's account");
  }

  if (!key_eq(mint->owner, &TOKEN_PROGRAM_ID)) return FAIL(ERR_WRONG_ACCOUNT_OWNER, "stake mint is not owned by the SPL Token program");
  if (mint->data_len != TOKEN_MINT_SIZE || mint->data[TOKEN_MINT_INITIALIZED] == 0) return FAIL(ERR_WRONG_MINT, "stake mint is not an initialized SPL mint");
  TRY(require_token_account(treasury, mint->key));

  TRY(check_params(&args.params));

  const u8 *members = ctx->args + sizeof(InitConfigArgs);
  for (u64 i = 0; i < n; i++) {
    if (bytes32_is_zero(members + 32 * i)) return FAIL(ERR_INVALID_COMMITTEE, "committee member is the zero key");
    for (u64 j = 0; j < i; j++) {
      if (bytes32_eq(members + 32 * i, members + 32 * j)) return FAIL(ERR_INVALID_COMMITTEE, "committee member listed twice");
    }
  }

  u8 bump;
  SolSignerSeed seeds[3] = {{SEED_CONFIG, sizeof SEED_CONFIG}, {args.genesis_hash, 32}, {&bump, 1}};
  TRY(find_pda(ctx, seeds, 2, config, &bump));
  SolSignerSeeds signer = {seeds, 3};
  TRY(create_pda_account(payer, config, sizeof(Config), ctx->program_id, &signer));

  Config *c = (Config *)config->data;
  sol_zero(c, sizeof(Config));
  c->kind = KIND_CONFIG;
  c->layout = LAYOUT_V1;
  c->bump = bump;
  c->committee_len = (u8)n;
  c->threshold = (u8)((2 * n + 2) / 3);
  c->mint_decimals = mint->data[TOKEN_MINT_DECIMALS];
  sol_copy(c->genesis_hash, args.genesis_hash, 32);
  c->stake_mint = *mint->key;
  c->treasury = *treasury->key;
  c->committee_epoch = 0;
  c->node_count = 0;
  c->params = args.params;
  sol_copy(c->committee, members, 32 * n);
  return 0;
}
