/* Slashing, in two steps. RecordSlash: with a committee quorum over the canonical slash message and
 * the evidence on chain (both commitments and both reveals of a verified attempt, with different
 * outputs), creates the slash record at PDA ["slash", execution, task id, attempt, accused node] (so a
 * fraud is slashed once) and freezes the accused node. ExecuteSlash, after the challenge delay: moves
 * slash_bps of everything the node's vault holds (bonded and unbonding stake alike), bounty_bps of it
 * to the proving party's owner and the rest to the treasury; the remainder becomes withdrawable. */
#include "settlement.h"

static const u8 SEED_SLASH[] = {'s', 'l', 'a', 's', 'h'};

/* accounts: 0 payer (signer, writable), 1 config, 2 execution, 3 task state, 4 asserter assignment,
 *           5 verifier assignment, 6 accused node (writable), 7 proving node, 8 bounty token account
 *           (of the proving node's owner), 9 slash (writable, created), 10 instructions sysvar,
 *           11 system program */
u64 record_slash(const Context *ctx) {
  if (ctx->accounts_len < 12) return FAIL(ERR_NOT_ENOUGH_ACCOUNTS, "record_slash needs 12 accounts");
  SolAccountInfo *payer = &ctx->accounts[0];
  SolAccountInfo *config_acc = &ctx->accounts[1];
  SolAccountInfo *exec_acc = &ctx->accounts[2];
  SolAccountInfo *task_acc = &ctx->accounts[3];
  SolAccountInfo *asserter_acc = &ctx->accounts[4];
  SolAccountInfo *verifier_acc = &ctx->accounts[5];
  SolAccountInfo *accused_acc = &ctx->accounts[6];
  SolAccountInfo *prover_acc = &ctx->accounts[7];
  SolAccountInfo *bounty = &ctx->accounts[8];
  SolAccountInfo *slash_acc = &ctx->accounts[9];
  SolAccountInfo *sysvar = &ctx->accounts[10];
  SolAccountInfo *system = &ctx->accounts[11];
  if (ctx->args_len != sizeof(SlashArgs)) return FAIL(ERR_INVALID_INSTRUCTION, "record_slash argument length");
  SlashArgs args;
  sol_copy(&args, ctx->args, sizeof args);

  TRY(require_signer(payer));
  TRY(require_writable(payer));
  TRY(require_system_program(system));
  Config *c;
  TRY(load_config(ctx, config_acc, &c));
  Execution *e;
  TRY(load_execution(ctx, exec_acc, config_acc->key, &e));
  TaskState *t;
  TRY(load_task(ctx, task_acc, exec_acc, &t));
  Assignment *asserter, *verifier;
  TRY(load_assignment(ctx, asserter_acc, exec_acc, &asserter));
  TRY(load_assignment(ctx, verifier_acc, exec_acc, &verifier));
  if (!bytes32_eq(asserter->task_id, t->task_id) || !bytes32_eq(verifier->task_id, t->task_id)) {
    return FAIL(ERR_WRONG_EXECUTION, "assignments of another task");
  }
  if (asserter->role != ROLE_PRIMARY || verifier->role != ROLE_VERIFICATION || verifier->verifies != asserter->attempt) {
    return FAIL(ERR_WRONG_EXECUTION, "not an attempt and its verification");
  }
  Node *accused, *prover;
  TRY(load_node_of(ctx, accused_acc, config_acc->key, &accused));
  TRY(load_node_of(ctx, prover_acc, config_acc->key, &prover));
  TRY(require_writable(accused_acc));
  bool asserter_accused = key_eq(accused_acc->key, &asserter->node) && key_eq(prover_acc->key, &verifier->node);
  bool verifier_accused = key_eq(accused_acc->key, &verifier->node) && key_eq(prover_acc->key, &asserter->node);
  if (!asserter_accused && !verifier_accused) return FAIL(ERR_WRONG_EXECUTION, "accused and prover must be the attempt's two parties");
  TRY(require_token_account(bounty, &c->stake_mint));
  if (!bytes32_eq(bounty->data + TOKEN_ACCOUNT_OWNER, prover->owner.x)) return FAIL(ERR_WRONG_RECIPIENT, "the bounty goes to the proving node's owner");

  /* once per (execution, task, attempt, accused) */
  if (key_eq(slash_acc->owner, ctx->program_id)) return FAIL(ERR_ALREADY_SLASHED, "this fraud was already slashed");
  TRY(require_writable(slash_acc));
  TRY(require_uninitialized(ctx, slash_acc, ERR_ALREADY_SLASHED));
  u8 bump;
  u32 attempt = asserter->attempt;
  SolSignerSeed seeds[6] = {{SEED_SLASH, sizeof SEED_SLASH}, {exec_acc->key->x, 32}, {t->task_id, 32},
                            {(const u8 *)&attempt, 4}, {accused_acc->key->x, 32}, {&bump, 1}};
  TRY(find_pda(ctx, seeds, 5, slash_acc, &bump));
  if (accused->status != NODE_ACTIVE) return FAIL(ERR_NODE_SLASHED, "node already slashed");

  /* the evidence: both committed and revealed, and the outputs differ */
  if (asserter->status != AS_REVEALED || verifier->status != AS_REVEALED) return FAIL(ERR_NO_FRAUD_EVIDENCE, "both parties must have committed and revealed");
  if (bytes32_eq(asserter->output_root, verifier->output_root)) return FAIL(ERR_NO_FRAUD_EVIDENCE, "the outputs agree");

  SolClock clock;
  TRY(read_clock(&clock));
  if (clock.slot > args.expiry_slot) return FAIL(ERR_EXPIRED, "slash expired");
  SlashFields f = {e->execution_id, t->task_id, attempt, accused->operator_.x, asserter, verifier, bounty->key->x, args.expiry_slot};
  u8 digest[32];
  slash_digest(ctx, c, &f, digest);
  TRY(verify_quorum(c, sysvar, digest));
  u64 executable_at;
  if (clock.unix_timestamp < 0 || !add_u64((u64)clock.unix_timestamp, c->params.challenge_delay, &executable_at) ||
      executable_at > 0x7fffffffffffffffULL) {
    return FAIL(ERR_ARITHMETIC_OVERFLOW, "challenge delay overflows");
  }

  SolSignerSeeds signer = {seeds, 6};
  TRY(create_pda_account(payer, slash_acc, sizeof(Slash), ctx->program_id, &signer));
  Slash *s = (Slash *)slash_acc->data;
  sol_zero(s, sizeof(Slash));
  s->kind = KIND_SLASH;
  s->layout = LAYOUT_V1;
  s->bump = bump;
  s->status = SLASH_RECORDED;
  s->attempt = attempt;
  s->config = *config_acc->key;
  s->execution = *exec_acc->key;
  sol_copy(s->task_id, t->task_id, 32);
  s->accused = *accused_acc->key;
  s->bounty_to = *bounty->key;
  s->recorded_at = clock.unix_timestamp;
  s->executable_at = (i64)executable_at;
  accused->status = NODE_SLASHED;
  return 0;
}

/* accounts: 0 config, 1 slash (writable), 2 accused node (writable), 3 its vault (writable),
 *           4 bounty token account (writable), 5 treasury (writable), 6 token program. Anyone may call. */
u64 execute_slash(const Context *ctx) {
  if (ctx->accounts_len < 7) return FAIL(ERR_NOT_ENOUGH_ACCOUNTS, "execute_slash needs 7 accounts");
  SolAccountInfo *config_acc = &ctx->accounts[0];
  SolAccountInfo *slash_acc = &ctx->accounts[1];
  SolAccountInfo *node_acc = &ctx->accounts[2];
  SolAccountInfo *vault = &ctx->accounts[3];
  SolAccountInfo *bounty = &ctx->accounts[4];
  SolAccountInfo *treasury = &ctx->accounts[5];
  SolAccountInfo *token = &ctx->accounts[6];
  if (ctx->args_len != 0) return FAIL(ERR_INVALID_INSTRUCTION, "execute_slash takes no arguments");

  Config *c;
  TRY(load_config(ctx, config_acc, &c));
  TRY(require_program_account(ctx, slash_acc, KIND_SLASH, sizeof(Slash)));
  Slash *s = (Slash *)slash_acc->data;
  if (!key_eq(&s->config, config_acc->key)) return FAIL(ERR_WRONG_CONFIG, "slash of another network");
  Node *node;
  TRY(load_node_of(ctx, node_acc, config_acc->key, &node));
  if (!key_eq(node_acc->key, &s->accused)) return FAIL(ERR_WRONG_EXECUTION, "not the accused node");
  TRY(require_writable(slash_acc));
  TRY(require_writable(node_acc));
  TRY(require_token_program(token));
  if (!key_eq(vault->key, &node->vault)) return FAIL(ERR_WRONG_VAULT, "not the accused node's vault");
  if (!key_eq(bounty->key, &s->bounty_to)) return FAIL(ERR_WRONG_RECIPIENT, "not the recorded bounty account");
  if (!key_eq(treasury->key, &c->treasury)) return FAIL(ERR_WRONG_RECIPIENT, "not the network's treasury");
  TRY(require_writable(vault));
  TRY(require_writable(bounty));
  TRY(require_writable(treasury));
  if (s->status != SLASH_RECORDED) return FAIL(ERR_ALREADY_SLASHED, "slash already executed");
  SolClock clock;
  TRY(read_clock(&clock));
  if (clock.unix_timestamp < s->executable_at) return FAIL(ERR_CHALLENGE_PENDING, "challenge delay not over");

  u64 held;
  if (!add_u64(node->stake, node->unbonding, &held)) return FAIL(ERR_ARITHMETIC_OVERFLOW, "stake overflows");
  u64 amount, bounty_amount;
  if (!mul_div(held, c->params.slash_bps, BPS, false, &amount) || !mul_div(amount, c->params.bounty_bps, BPS, false, &bounty_amount)) {
    return FAIL(ERR_ARITHMETIC_OVERFLOW, "slash amount overflows");
  }
  u64 to_treasury = amount - bounty_amount;

  s->status = SLASH_EXECUTED;
  s->amount = amount;
  s->bounty = bounty_amount;
  node->status = NODE_SLASH_EXECUTED;
  node->stake = 0;
  node->unbonding = held - amount;
  node->unbonding_ends_at = clock.unix_timestamp;
  node->payments_in_flight = 0;
  u8 bump = node->bump;
  SolSignerSeed seeds[4];
  node_signer_seeds_of(node, seeds, &bump);
  SolSignerSeeds signer = {seeds, 4};
  if (bounty_amount > 0) TRY(token_transfer(vault, bounty, node_acc, bounty_amount, &signer));
  if (to_treasury > 0) TRY(token_transfer(vault, treasury, node_acc, to_treasury, &signer));
  return 0;
}
