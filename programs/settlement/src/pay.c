/* Pay: moves an assignment's payment from the execution's escrow to its node's owner: a primary
 * attempt once its task is VERIFIED (and only the live attempt: a superseded one is never paid), a
 * verification once the verifier revealed and the result is recorded (whatever it was). Each task's primary payment and
 * each assignment are paid once. Anyone may send it; the tokens can only go to the node owner. */
#include "settlement.h"

/* accounts: 0 config, 1 execution (writable), 2 escrow vault (writable), 3 task state,
 *           4 assignment (writable), 5 node (writable), 6 destination token account of the node's
 *           owner (writable), 7 token program */
u64 pay(const Context *ctx) {
  if (ctx->accounts_len < 8) return FAIL(ERR_NOT_ENOUGH_ACCOUNTS, "pay needs 8 accounts");
  SolAccountInfo *config_acc = &ctx->accounts[0];
  SolAccountInfo *exec_acc = &ctx->accounts[1];
  SolAccountInfo *vault = &ctx->accounts[2];
  SolAccountInfo *task_acc = &ctx->accounts[3];
  SolAccountInfo *as_acc = &ctx->accounts[4];
  SolAccountInfo *node_acc = &ctx->accounts[5];
  SolAccountInfo *dest = &ctx->accounts[6];
  SolAccountInfo *token = &ctx->accounts[7];
  if (ctx->args_len != 0) return FAIL(ERR_INVALID_INSTRUCTION, "pay takes no arguments");

  Config *c;
  TRY(load_config(ctx, config_acc, &c));
  Execution *e;
  TRY(load_execution(ctx, exec_acc, config_acc->key, &e));
  TaskState *t;
  TRY(load_task(ctx, task_acc, exec_acc, &t));
  Assignment *as;
  TRY(load_assignment(ctx, as_acc, exec_acc, &as));
  if (!bytes32_eq(t->task_id, as->task_id)) return FAIL(ERR_WRONG_EXECUTION, "assignment of another task");
  Node *node;
  TRY(load_node_of(ctx, node_acc, config_acc->key, &node));
  if (!key_eq(node_acc->key, &as->node)) return FAIL(ERR_WRONG_EXECUTION, "not the assigned node");
  TRY(require_writable(exec_acc));
  TRY(require_writable(as_acc));
  TRY(require_writable(node_acc));
  TRY(require_token_program(token));
  if (!key_eq(vault->key, &e->vault)) return FAIL(ERR_WRONG_VAULT, "not this execution's escrow");
  TRY(require_writable(vault));
  TRY(require_writable(dest));
  TRY(require_token_account(dest, &c->stake_mint));
  if (!bytes32_eq(dest->data + TOKEN_ACCOUNT_OWNER, node->owner.x)) return FAIL(ERR_WRONG_RECIPIENT, "payments go to the node owner's token account");
  if (t->task_index >= e->task_count) return FAIL(ERR_WRONG_EXECUTION, "task index out of range");
  ExecTask *et = &e->tasks[t->task_index];

  if (as->paid) return FAIL(ERR_ALREADY_PAID, "assignment already paid");
  if (node->status != NODE_ACTIVE) return FAIL(ERR_NODE_SLASHED, "a slashed node is not paid");
  if (IS_PRIMARY(as->role)) {
    if (et->flags & TASK_PAID) return FAIL(ERR_ALREADY_PAID, "task already paid");
    if (as->attempt != t->primary_attempt) return FAIL(ERR_NOT_PAYABLE, "superseded attempt");
    if (t->status != TS_VERIFIED || as->status != AS_REVEALED) return FAIL(ERR_NOT_PAYABLE, "task not verified");
  } else {
    /* paid for delivering a verification whose result is recorded, even after the task moved on */
    if (as->status != AS_REVEALED || !as->resolved) return FAIL(ERR_NOT_PAYABLE, "verification result not recorded");
  }
  u64 amount = as->payment;
  if (amount > e->balance) return FAIL(ERR_ESCROW_INSUFFICIENT, "escrow balance below the payment");

  as->paid = 1;
  if (IS_PRIMARY(as->role)) et->flags |= TASK_PAID;
  release_payment(e, node, as);
  e->balance -= amount;
  u8 bump = e->bump;
  SolSignerSeed seeds[4];
  execution_signer_seeds(e, seeds, &bump);
  SolSignerSeeds signer = {seeds, 4};
  return token_transfer(vault, dest, exec_acc, amount, &signer);
}
