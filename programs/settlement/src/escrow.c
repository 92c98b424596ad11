/* Escrow: a requester opens an execution, escrowing every task's price x (1 + expected verification
 * cost) in the stake mint, in a token account at PDA ["escrow", execution] whose token authority is the
 * execution account; the request slot is recorded (first attempts' seeds derive from request slot + K).
 * Cancel refunds tasks that were never assigned; close returns what is left once nothing is owed. */
#include "settlement.h"

static const u8 SEED_EXECUTION[] = {'e', 'x', 'e', 'c', 'u', 't', 'i', 'o', 'n'};
static const u8 SEED_ESCROW[] = {'e', 's', 'c', 'r', 'o', 'w'};

bool verification_payment(const Params *p, u64 price, u64 *out) {
  return mul_div(price, p->validator_reward_bps, BPS, false, out);
}

bool task_share(const Params *p, u64 price, u64 *out) {
  u64 v, expected;
  if (!verification_payment(p, price, &v)) return false;
  if (!mul_div(v, p->sampling_ppm, PPM, true, &expected)) return false;
  return add_u64(price, expected, out);
}

/* accounts: 0 requester (signer, writable, pays rent), 1 config, 2 execution (writable),
 *           3 escrow vault (writable), 4 requester's token account (writable; funds it, receives
 *           refunds), 5 stake mint, 6 token program, 7 system program */
u64 open_execution(const Context *ctx) {
  if (ctx->accounts_len < 8) return FAIL(ERR_NOT_ENOUGH_ACCOUNTS, "open_execution needs 8 accounts");
  SolAccountInfo *requester = &ctx->accounts[0];
  SolAccountInfo *config_acc = &ctx->accounts[1];
  SolAccountInfo *exec_acc = &ctx->accounts[2];
  SolAccountInfo *vault = &ctx->accounts[3];
  SolAccountInfo *source = &ctx->accounts[4];
  SolAccountInfo *mint = &ctx->accounts[5];
  SolAccountInfo *token = &ctx->accounts[6];
  SolAccountInfo *system = &ctx->accounts[7];

  if (ctx->args_len < sizeof(OpenExecutionArgs)) return FAIL(ERR_INVALID_INSTRUCTION, "open_execution arguments too short");
  OpenExecutionArgs args;
  sol_copy(&args, ctx->args, sizeof args);
  u64 n = args.task_count;
  if (n == 0 || n > MAX_TASKS) return FAIL(ERR_INVALID_TASKS, "an execution has 1 to 16 tasks");
  if (ctx->args_len != sizeof(OpenExecutionArgs) + sizeof(ExecTaskArg) * n) return FAIL(ERR_INVALID_INSTRUCTION, "open_execution argument length");
  if (!is_zero(args.reserved, sizeof args.reserved)) return FAIL(ERR_INVALID_INSTRUCTION, "reserved bytes must be zero");
  if (bytes32_is_zero(args.execution_id)) return FAIL(ERR_INVALID_TASKS, "zero execution id");

  TRY(require_signer(requester));
  TRY(require_writable(requester));
  Config *c;
  TRY(load_config(ctx, config_acc, &c));
  TRY(require_writable(exec_acc));
  TRY(require_writable(vault));
  TRY(require_writable(source));
  TRY(require_token_program(token));
  TRY(require_system_program(system));
  if (!key_eq(mint->key, &c->stake_mint)) return FAIL(ERR_WRONG_MINT, "not the network's stake mint");
  TRY(require_token_account(source, &c->stake_mint));
  if (key_eq(source->key, vault->key)) return FAIL(ERR_WRONG_VAULT, "the escrow cannot fund itself");
  TRY(require_uninitialized(ctx, exec_acc, ERR_ALREADY_INITIALIZED));

  const u8 *list = ctx->args + sizeof(OpenExecutionArgs);
  u64 total = 0;
  for (u64 i = 0; i < n; i++) {
    ExecTaskArg t;
    sol_copy(&t, list + sizeof(ExecTaskArg) * i, sizeof t);
    if (bytes32_is_zero(t.task_id)) return FAIL(ERR_INVALID_TASKS, "zero task id");
    if (t.reserved != 0) return FAIL(ERR_INVALID_INSTRUCTION, "reserved bytes must be zero");
    for (u64 j = 0; j < i; j++) {
      if (bytes32_eq(t.task_id, list + sizeof(ExecTaskArg) * j)) return FAIL(ERR_INVALID_TASKS, "task listed twice");
    }
    if (t.price < c->params.min_fee) return FAIL(ERR_FEE_BELOW_MINIMUM, "task price below the minimum fee");
    u64 share;
    if (!task_share(&c->params, t.price, &share) || !add_u64(total, share, &total)) {
      return FAIL(ERR_ARITHMETIC_OVERFLOW, "escrow total overflows");
    }
  }

  u8 exec_bump;
  SolSignerSeed exec_seeds[4] = {{SEED_EXECUTION, sizeof SEED_EXECUTION}, {config_acc->key->x, 32}, {args.execution_id, 32}, {&exec_bump, 1}};
  TRY(find_pda(ctx, exec_seeds, 3, exec_acc, &exec_bump));
  u8 vault_bump;
  SolSignerSeed vault_seeds[3] = {{SEED_ESCROW, sizeof SEED_ESCROW}, {exec_acc->key->x, 32}, {&vault_bump, 1}};
  TRY(find_pda(ctx, vault_seeds, 2, vault, &vault_bump));
  SolClock clock;
  TRY(read_clock(&clock));

  SolSignerSeeds exec_signer = {exec_seeds, 4};
  TRY(create_pda_account(requester, exec_acc, sizeof(Execution), ctx->program_id, &exec_signer));
  SolSignerSeeds vault_signer = {vault_seeds, 3};
  TRY(create_pda_account(requester, vault, TOKEN_ACCOUNT_SIZE, &TOKEN_PROGRAM_ID, &vault_signer));
  TRY(token_initialize_account(vault, mint, exec_acc->key));
  TRY(token_transfer(source, vault, requester, total, NULL));

  Execution *e = (Execution *)exec_acc->data;
  sol_zero(e, sizeof(Execution));
  e->kind = KIND_EXECUTION;
  e->layout = LAYOUT_V1;
  e->bump = exec_bump;
  e->vault_bump = vault_bump;
  e->task_count = (u8)n;
  e->config = *config_acc->key;
  e->requester = *requester->key;
  e->refund_to = *source->key;
  e->vault = *vault->key;
  sol_copy(e->execution_id, args.execution_id, 32);
  e->request_slot = clock.slot;
  e->ready_slot = clock.slot;
  e->deposited = total;
  e->balance = total;
  for (u64 i = 0; i < n; i++) {
    ExecTaskArg t;
    sol_copy(&t, list + sizeof(ExecTaskArg) * i, sizeof t);
    sol_copy(e->tasks[i].task_id, t.task_id, 32);
    e->tasks[i].price = t.price;
    e->tasks[i].compute_units = t.compute_units;
  }
  return 0;
}

/* The accounts of a refund by the requester (cancel, close), checked: 0 requester (signer),
 * 1 config, 2 execution (writable), 3 escrow vault (writable), 4 refund token account (writable,
 * the one recorded at open), 5 token program. */
static u64 load_refund(const Context *ctx, Config **c, Execution **e) {
  if (ctx->accounts_len < 6) return FAIL(ERR_NOT_ENOUGH_ACCOUNTS, "a refund needs 6 accounts");
  SolAccountInfo *requester = &ctx->accounts[0];
  SolAccountInfo *config_acc = &ctx->accounts[1];
  SolAccountInfo *exec_acc = &ctx->accounts[2];
  SolAccountInfo *vault = &ctx->accounts[3];
  SolAccountInfo *dest = &ctx->accounts[4];
  TRY(load_config(ctx, config_acc, c));
  TRY(load_execution(ctx, exec_acc, config_acc->key, e));
  TRY(require_writable(exec_acc));
  TRY(require_signer(requester));
  if (!key_eq(requester->key, &(*e)->requester)) return FAIL(ERR_NOT_REQUESTER, "only the requester may cancel or close");
  TRY(require_token_program(&ctx->accounts[5]));
  if (!key_eq(vault->key, &(*e)->vault)) return FAIL(ERR_WRONG_VAULT, "not this execution's escrow");
  if (!key_eq(dest->key, &(*e)->refund_to)) return FAIL(ERR_WRONG_RECIPIENT, "refunds go to the account that paid");
  TRY(require_writable(vault));
  TRY(require_writable(dest));
  return 0;
}

/* Moves `amount` from the escrow vault (accounts[3]) to the refund account (accounts[4]). */
static u64 refund_transfer(const Context *ctx, Execution *e, u64 amount) {
  if (amount == 0) return 0;
  u8 bump = e->bump;
  SolSignerSeed seeds[4];
  execution_signer_seeds(e, seeds, &bump);
  SolSignerSeeds signer = {seeds, 4};
  return token_transfer(&ctx->accounts[3], &ctx->accounts[4], &ctx->accounts[2], amount, &signer);
}

/* accounts: see load_refund */
u64 cancel_tasks(const Context *ctx) {
  if (ctx->args_len != sizeof(CancelArgs)) return FAIL(ERR_INVALID_INSTRUCTION, "cancel_tasks argument length");
  CancelArgs args;
  sol_copy(&args, ctx->args, sizeof args);
  if (args.reserved != 0) return FAIL(ERR_INVALID_INSTRUCTION, "reserved bytes must be zero");
  Config *c;
  Execution *e;
  TRY(load_refund(ctx, &c, &e));
  if (args.task_mask == 0 || (e->task_count < 32 && (args.task_mask >> e->task_count) != 0)) {
    return FAIL(ERR_INVALID_TASKS, "task mask names no task or a task the execution lacks");
  }

  u64 refund = 0;
  for (u64 i = 0; i < e->task_count; i++) {
    if (!(args.task_mask & (1U << i))) continue;
    if (e->tasks[i].flags & TASK_CANCELLED) return FAIL(ERR_TASK_CANCELLED, "task already cancelled");
    if (e->tasks[i].flags & TASK_ASSIGNED) return FAIL(ERR_TASK_ALREADY_ASSIGNED, "an assigned task is not refundable");
    u64 share;
    if (!task_share(&c->params, e->tasks[i].price, &share) || !add_u64(refund, share, &refund)) {
      return FAIL(ERR_ARITHMETIC_OVERFLOW, "refund overflows");
    }
  }
  /* verifications drawn beyond their expected cost may have used part of the pool */
  u64 available = e->balance > e->reserved_amount ? e->balance - e->reserved_amount : 0;
  if (refund > available) refund = available;
  for (u64 i = 0; i < e->task_count; i++) {
    if (args.task_mask & (1U << i)) e->tasks[i].flags |= TASK_CANCELLED;
  }
  e->balance -= refund;
  return refund_transfer(ctx, e, refund);
}

/* Close: once no assignment holds a reservation (every live attempt settled and every earned payment
 * collected), the requester takes back the escrow's remaining balance (the expected verification
 * cost of tasks never sampled, the unpaid share of unverifiable tasks, tasks that failed), and every
 * task not paid is cancelled so the execution takes no new assignment.
 * accounts: see load_refund */
u64 close_execution(const Context *ctx) {
  if (ctx->args_len != 0) return FAIL(ERR_INVALID_INSTRUCTION, "close_execution takes no arguments");
  Config *c;
  Execution *e;
  TRY(load_refund(ctx, &c, &e));
  if (e->reserved_amount != 0) return FAIL(ERR_PAYMENTS_RESERVED, "assignments still hold part of the escrow");

  for (u64 i = 0; i < e->task_count && i < MAX_TASKS; i++) {
    if (!(e->tasks[i].flags & TASK_PAID)) e->tasks[i].flags |= TASK_CANCELLED;
  }
  u64 refund = e->balance;
  e->balance = 0;
  return refund_transfer(ctx, e, refund);
}

/* The escrow holds each task's *expected* verification cost, pooled over the execution, so a run of
 * sampled tasks can need more than is left; a verification is only assigned when the pool covers it,
 * and anyone (normally the requester, whose dependents wait for the verification) may top it up.
 * accounts: 0 funder (signer), 1 execution (writable), 2 escrow vault (writable), 3 funder's token
 *           account (writable), 4 token program */
u64 top_up(const Context *ctx) {
  if (ctx->accounts_len < 5) return FAIL(ERR_NOT_ENOUGH_ACCOUNTS, "top_up needs 5 accounts");
  SolAccountInfo *funder = &ctx->accounts[0];
  SolAccountInfo *exec_acc = &ctx->accounts[1];
  SolAccountInfo *vault = &ctx->accounts[2];
  SolAccountInfo *source = &ctx->accounts[3];
  SolAccountInfo *token = &ctx->accounts[4];
  if (ctx->args_len != sizeof(AmountArgs)) return FAIL(ERR_INVALID_INSTRUCTION, "top_up argument length");
  AmountArgs args;
  sol_copy(&args, ctx->args, sizeof args);
  if (args.amount == 0) return FAIL(ERR_INVALID_INSTRUCTION, "amount must be positive");
  Execution *e;
  TRY(load_execution(ctx, exec_acc, NULL, &e));
  TRY(require_writable(exec_acc));
  TRY(require_signer(funder));
  TRY(require_token_program(token));
  if (!key_eq(vault->key, &e->vault)) return FAIL(ERR_WRONG_VAULT, "not this execution's escrow");
  TRY(require_writable(vault));
  TRY(require_writable(source));
  if (vault->data_len != TOKEN_ACCOUNT_SIZE) return FAIL(ERR_INVALID_TOKEN_ACCOUNT, "escrow is not a token account");
  SolPubkey mint;
  sol_copy(mint.x, vault->data + TOKEN_ACCOUNT_MINT, 32);
  TRY(require_token_account(source, &mint));
  if (key_eq(source->key, vault->key)) return FAIL(ERR_WRONG_VAULT, "the escrow cannot fund itself");
  u64 balance, deposited;
  if (!add_u64(e->balance, args.amount, &balance) || !add_u64(e->deposited, args.amount, &deposited)) {
    return FAIL(ERR_ARITHMETIC_OVERFLOW, "escrow overflows");
  }
  TRY(token_transfer(source, vault, funder, args.amount, NULL));
  e->balance = balance;
  e->deposited = deposited;
  return 0;
}
