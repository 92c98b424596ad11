/* Loading the program's own accounts: owner, kind and layout, and the links between them (a node
 * of this config, a task state of this execution, ...). Accounts the program owns can only have been
 * created at their canonical addresses by the program, so a checked link is as good as re-deriving. */
#include "settlement.h"

static const u8 SEED_EXECUTION[] = {'e', 'x', 'e', 'c', 'u', 't', 'i', 'o', 'n'};

u64 load_config(const Context *ctx, SolAccountInfo *a, Config **out) {
  TRY(require_program_account(ctx, a, KIND_CONFIG, sizeof(Config)));
  *out = (Config *)a->data;
  return 0;
}

u64 load_node_of(const Context *ctx, SolAccountInfo *a, const SolPubkey *config, Node **out) {
  TRY(require_program_account(ctx, a, KIND_NODE, sizeof(Node)));
  Node *n = (Node *)a->data;
  if (!key_eq(&n->config, config)) return FAIL(ERR_WRONG_CONFIG, "node belongs to another network");
  *out = n;
  return 0;
}

u64 load_execution(const Context *ctx, SolAccountInfo *a, const SolPubkey *config, Execution **out) {
  TRY(require_program_account(ctx, a, KIND_EXECUTION, sizeof(Execution)));
  Execution *e = (Execution *)a->data;
  if (config != NULL && !key_eq(&e->config, config)) return FAIL(ERR_WRONG_CONFIG, "execution belongs to another network");
  *out = e;
  return 0;
}

u64 load_task(const Context *ctx, SolAccountInfo *a, const SolAccountInfo *execution, TaskState **out) {
  TRY(require_program_account(ctx, a, KIND_TASK, sizeof(TaskState)));
  TaskState *t = (TaskState *)a->data;
  if (!key_eq(&t->execution, execution->key)) return FAIL(ERR_WRONG_EXECUTION, "task state of another execution");
  *out = t;
  return 0;
}

u64 load_assignment(const Context *ctx, SolAccountInfo *a, const SolAccountInfo *execution, Assignment **out) {
  TRY(require_program_account(ctx, a, KIND_ASSIGNMENT, sizeof(Assignment)));
  Assignment *as = (Assignment *)a->data;
  if (!key_eq(&as->execution, execution->key)) return FAIL(ERR_WRONG_EXECUTION, "assignment of another execution");
  *out = as;
  return 0;
}

void execution_signer_seeds(const Execution *e, SolSignerSeed seeds[4], const u8 *bump) {
  seeds[0].addr = SEED_EXECUTION;
  seeds[0].len = sizeof SEED_EXECUTION;
  seeds[1].addr = e->config.x;
  seeds[1].len = 32;
  seeds[2].addr = e->execution_id;
  seeds[2].len = 32;
  seeds[3].addr = bump;
  seeds[3].len = 1;
}

void release_payment(Execution *e, Node *node, const Assignment *as) {
  node->payments_in_flight = node->payments_in_flight > as->payment ? node->payments_in_flight - as->payment : 0;
  e->reserved_amount = e->reserved_amount > as->payment ? e->reserved_amount - as->payment : 0;
}
