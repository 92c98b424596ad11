/* Node registry and stake: register, add stake, update capacity, unbond, withdraw.
 * The owner key moves stake; the operator key (the daemon's identity) never can. */
#include "settlement.h"

static const u8 SEED_NODE[] = {'n', 'o', 'd', 'e'};
static const u8 SEED_VAULT[] = {'v', 'a', 'u', 'l', 't'};

/* Seeds the node account signs with as the vault's token authority: ["node", config, operator, bump]. */
void node_signer_seeds_of(const Node *node, SolSignerSeed seeds[4], const u8 *bump) {
  seeds[0].addr = SEED_NODE;
  seeds[0].len = sizeof SEED_NODE;
  seeds[1].addr = node->config.x;
  seeds[1].len = 32;
  seeds[2].addr = node->operator_.x;
  seeds[2].len = 32;
  seeds[3].addr = bump;
  seeds[3].len = 1;
}

/* The node account, checked: owned by this program, of kind Node, writable if asked. */
static u64 load_node(const Context *ctx, SolAccountInfo *a, bool writable, Node **out) {
  TRY(require_program_account(ctx, a, KIND_NODE, sizeof(Node)));
  if (writable) TRY(require_writable(a));
  *out = (Node *)a->data;
  return 0;
}

static u64 require_owner(const SolAccountInfo *signer, const Node *node) {
  TRY(require_signer(signer));
  if (!key_eq(signer->key, &node->owner)) return FAIL(ERR_NOT_OWNER, "only the node's owner key may move its stake");
  return 0;
}

/* accounts: 0 owner (signer, writable, pays), 1 operator (signer), 2 config, 3 node (writable),
 *           4 vault (writable), 5 owner's token account (writable), 6 stake mint, 7 token program,
 *           8 system program */
u64 register_node(const Context *ctx) {
  if (ctx->accounts_len < 9) return FAIL(ERR_NOT_ENOUGH_ACCOUNTS, "register_node needs 9 accounts");
  SolAccountInfo *owner = &ctx->accounts[0];
  SolAccountInfo *operator_ = &ctx->accounts[1];
  SolAccountInfo *config_acc = &ctx->accounts[2];
  SolAccountInfo *node_acc = &ctx->accounts[3];
  SolAccountInfo *vault = &ctx->accounts[4];
  SolAccountInfo *source = &ctx->accounts[5];
  SolAccountInfo *mint = &ctx->accounts[6];
  SolAccountInfo *token = &ctx->accounts[7];
  SolAccountInfo *system = &ctx->accounts[8];

  if (ctx->args_len < sizeof(RegisterNodeArgs)) return FAIL(ERR_INVALID_INSTRUCTION, "register_node arguments too short");
  RegisterNodeArgs args;
  sol_copy(&args, ctx->args, sizeof args);
  u64 specs = args.spec_count;
  if (specs == 0 || specs > MAX_SPECIALIZATIONS) return FAIL(ERR_INVALID_SPECIALIZATIONS, "declare 1 to 16 specializations");
  if (ctx->args_len != sizeof(RegisterNodeArgs) + 32 * specs) return FAIL(ERR_INVALID_INSTRUCTION, "register_node argument length");
  if (args.reserved[0] | args.reserved[1] | args.reserved[2]) return FAIL(ERR_INVALID_INSTRUCTION, "reserved bytes must be zero");
  const u8 *spec_ids = ctx->args + sizeof(RegisterNodeArgs);
  for (u64 i = 0; i < specs; i++) {
    if (bytes32_is_zero(spec_ids + 32 * i)) return FAIL(ERR_INVALID_SPECIALIZATIONS, "zero task id");
    for (u64 j = 0; j < i; j++) {
      if (bytes32_eq(spec_ids + 32 * i, spec_ids + 32 * j)) return FAIL(ERR_INVALID_SPECIALIZATIONS, "task id declared twice");
    }
  }

  TRY(require_signer(owner));
  TRY(require_writable(owner));
  TRY(require_signer(operator_));
  TRY(require_program_account(ctx, config_acc, KIND_CONFIG, sizeof(Config)));
  const Config *config = (const Config *)config_acc->data;
  TRY(require_writable(config_acc));
  TRY(require_writable(node_acc));
  TRY(require_writable(vault));
  TRY(require_writable(source));
  TRY(require_token_program(token));
  TRY(require_system_program(system));
  if (!key_eq(mint->key, &config->stake_mint)) return FAIL(ERR_WRONG_MINT, "not the network's stake mint");
  TRY(require_token_account(source, &config->stake_mint));
  if (key_eq(source->key, vault->key)) return FAIL(ERR_WRONG_VAULT, "the vault cannot fund itself");
  if (args.amount < config->params.min_stake) return FAIL(ERR_STAKE_BELOW_MINIMUM, "stake below the network minimum");
  if (key_eq(node_acc->owner, ctx->program_id)) return FAIL(ERR_ALREADY_INITIALIZED, "node already registered");

  u8 node_bump;
  SolSignerSeed node_seeds[4] = {{SEED_NODE, sizeof SEED_NODE}, {config_acc->key->x, 32}, {operator_->key->x, 32}, {&node_bump, 1}};
  TRY(find_pda(ctx, node_seeds, 3, node_acc, &node_bump));
  u8 vault_bump;
  SolSignerSeed vault_seeds[3] = {{SEED_VAULT, sizeof SEED_VAULT}, {node_acc->key->x, 32}, {&vault_bump, 1}};
  TRY(find_pda(ctx, vault_seeds, 2, vault, &vault_bump));

  SolSignerSeeds node_signer = {node_seeds, 4};
  TRY(create_pda_account(owner, node_acc, sizeof(Node), ctx->program_id, &node_signer));
  SolSignerSeeds vault_signer = {vault_seeds, 3};
  TRY(create_pda_account(owner, vault, TOKEN_ACCOUNT_SIZE, &TOKEN_PROGRAM_ID, &vault_signer));
  TRY(token_initialize_account(vault, mint, node_acc->key));
  TRY(token_transfer(source, vault, owner, args.amount, NULL));

  SolClock clock;
  TRY(read_clock(&clock));
  Node *node = (Node *)node_acc->data;
  sol_zero(node, sizeof(Node));
  node->kind = KIND_NODE;
  node->layout = LAYOUT_V1;
  node->bump = node_bump;
  node->vault_bump = vault_bump;
  node->status = NODE_ACTIVE;
  node->spec_count = (u8)specs;
  node->config = *config_acc->key;
  node->owner = *owner->key;
  node->operator_ = *operator_->key;
  node->vault = *vault->key;
  node->stake = args.amount;
  node->registered_slot = clock.slot;
  node->capacity = args.capacity;
  sol_copy(node->specializations, spec_ids, 32 * specs);

  Config *config_w = (Config *)config_acc->data;
  u64 count;
  if (!add_u64(config_w->node_count, 1, &count)) return FAIL(ERR_ARITHMETIC_OVERFLOW, "node count overflow");
  config_w->node_count = count;
  return 0;
}

/* accounts: 0 owner (signer), 1 node (writable), 2 vault (writable), 3 owner's token account
 *           (writable), 4 token program */
u64 add_stake(const Context *ctx) {
  if (ctx->accounts_len < 5) return FAIL(ERR_NOT_ENOUGH_ACCOUNTS, "add_stake needs 5 accounts");
  SolAccountInfo *owner = &ctx->accounts[0];
  SolAccountInfo *node_acc = &ctx->accounts[1];
  SolAccountInfo *vault = &ctx->accounts[2];
  SolAccountInfo *source = &ctx->accounts[3];
  SolAccountInfo *token = &ctx->accounts[4];
  if (ctx->args_len != sizeof(AmountArgs)) return FAIL(ERR_INVALID_INSTRUCTION, "add_stake argument length");
  AmountArgs args;
  sol_copy(&args, ctx->args, sizeof args);

  Node *node;
  TRY(load_node(ctx, node_acc, true, &node));
  TRY(require_owner(owner, node));
  if (node->status != NODE_ACTIVE) return FAIL(ERR_NODE_SLASHED, "node was slashed");
  TRY(require_token_program(token));
  if (!key_eq(vault->key, &node->vault)) return FAIL(ERR_WRONG_VAULT, "not this node's vault");
  TRY(require_writable(vault));
  TRY(require_writable(source));
  /* the vault's mint is fixed at registration; the source must be of the same mint */
  if (vault->data_len != TOKEN_ACCOUNT_SIZE) return FAIL(ERR_INVALID_TOKEN_ACCOUNT, "vault is not a token account");
  SolPubkey stake_mint;
  sol_copy(stake_mint.x, vault->data + TOKEN_ACCOUNT_MINT, 32);
  TRY(require_token_account(source, &stake_mint));
  if (key_eq(source->key, vault->key)) return FAIL(ERR_WRONG_VAULT, "the vault cannot fund itself");
  if (args.amount == 0) return FAIL(ERR_INVALID_INSTRUCTION, "amount must be positive");
  u64 total;
  if (!add_u64(node->stake, args.amount, &total)) return FAIL(ERR_ARITHMETIC_OVERFLOW, "stake overflow");
  u64 held; /* stake + unbonding must stay representable: it is what the vault holds */
  if (!add_u64(total, node->unbonding, &held)) return FAIL(ERR_ARITHMETIC_OVERFLOW, "stake overflow");

  TRY(token_transfer(source, vault, owner, args.amount, NULL));
  node->stake = total;
  return 0;
}

/* accounts: 0 owner or operator (signer), 1 node (writable) */
u64 update_capacity(const Context *ctx) {
  if (ctx->accounts_len < 2) return FAIL(ERR_NOT_ENOUGH_ACCOUNTS, "update_capacity needs 2 accounts");
  SolAccountInfo *signer = &ctx->accounts[0];
  SolAccountInfo *node_acc = &ctx->accounts[1];
  if (ctx->args_len != sizeof(CapacityArgs)) return FAIL(ERR_INVALID_INSTRUCTION, "update_capacity argument length");
  CapacityArgs args;
  sol_copy(&args, ctx->args, sizeof args);
  if (args.reserved != 0) return FAIL(ERR_INVALID_INSTRUCTION, "reserved bytes must be zero");
  Node *node;
  TRY(load_node(ctx, node_acc, true, &node));
  TRY(require_signer(signer));
  if (!key_eq(signer->key, &node->owner) && !key_eq(signer->key, &node->operator_)) {
    return FAIL(ERR_NOT_NODE_AUTHORITY, "signer is neither the node's owner nor its operator");
  }
  node->capacity = args.capacity;
  return 0;
}

/* accounts: 0 owner (signer), 1 config, 2 node (writable) */
u64 unbond(const Context *ctx) {
  if (ctx->accounts_len < 3) return FAIL(ERR_NOT_ENOUGH_ACCOUNTS, "unbond needs 3 accounts");
  SolAccountInfo *owner = &ctx->accounts[0];
  SolAccountInfo *config_acc = &ctx->accounts[1];
  SolAccountInfo *node_acc = &ctx->accounts[2];
  if (ctx->args_len != sizeof(AmountArgs)) return FAIL(ERR_INVALID_INSTRUCTION, "unbond argument length");
  AmountArgs args;
  sol_copy(&args, ctx->args, sizeof args);

  Node *node;
  TRY(load_node(ctx, node_acc, true, &node));
  TRY(require_owner(owner, node));
  TRY(require_program_account(ctx, config_acc, KIND_CONFIG, sizeof(Config)));
  if (!key_eq(config_acc->key, &node->config)) return FAIL(ERR_WRONG_CONFIG, "node belongs to another network");
  const Config *config = (const Config *)config_acc->data;
  if (node->status != NODE_ACTIVE) return FAIL(ERR_NODE_SLASHED, "node was slashed");
  if (args.amount == 0) return FAIL(ERR_INVALID_INSTRUCTION, "amount must be positive");
  if (args.amount > node->stake) return FAIL(ERR_INSUFFICIENT_STAKE, "unbonding more than the bonded stake");

  SolClock clock;
  TRY(read_clock(&clock));
  if (clock.unix_timestamp < 0) return FAIL(ERR_CLOCK, "clock before 1970");
  u64 ends;
  if (!add_u64((u64)clock.unix_timestamp, config->params.unbonding_delay, &ends) || ends > (u64)0x7fffffffffffffffULL) {
    return FAIL(ERR_ARITHMETIC_OVERFLOW, "unbonding end overflows");
  }
  u64 leaving;
  if (!add_u64(node->unbonding, args.amount, &leaving)) return FAIL(ERR_ARITHMETIC_OVERFLOW, "unbonding overflow");
  /* a further unbond restarts the delay for everything that is leaving */
  node->stake -= args.amount;
  node->unbonding = leaving;
  node->unbonding_ends_at = (i64)ends;
  return 0;
}

/* accounts: 0 owner (signer), 1 node (writable), 2 vault (writable), 3 destination token account
 *           (writable), 4 token program */
u64 withdraw(const Context *ctx) {
  if (ctx->accounts_len < 5) return FAIL(ERR_NOT_ENOUGH_ACCOUNTS, "withdraw needs 5 accounts");
  SolAccountInfo *owner = &ctx->accounts[0];
  SolAccountInfo *node_acc = &ctx->accounts[1];
  SolAccountInfo *vault = &ctx->accounts[2];
  SolAccountInfo *dest = &ctx->accounts[3];
  SolAccountInfo *token = &ctx->accounts[4];
  if (ctx->args_len != 0) return FAIL(ERR_INVALID_INSTRUCTION, "withdraw takes no arguments");

  Node *node;
  TRY(load_node(ctx, node_acc, true, &node));
  TRY(require_owner(owner, node));
  /* a recorded slash freezes the stake until it is executed; what an executed slash leaves is free */
  if (node->status == NODE_SLASHED) return FAIL(ERR_NODE_SLASHED, "a slash of this node is pending");
  TRY(require_token_program(token));
  if (!key_eq(vault->key, &node->vault)) return FAIL(ERR_WRONG_VAULT, "not this node's vault");
  TRY(require_writable(vault));
  TRY(require_writable(dest));
  if (vault->data_len != TOKEN_ACCOUNT_SIZE) return FAIL(ERR_INVALID_TOKEN_ACCOUNT, "vault is not a token account");
  SolPubkey stake_mint;
  sol_copy(stake_mint.x, vault->data + TOKEN_ACCOUNT_MINT, 32);
  TRY(require_token_account(dest, &stake_mint));
  if (key_eq(dest->key, vault->key)) return FAIL(ERR_WRONG_VAULT, "cannot withdraw into the vault");
  if (node->unbonding == 0) return FAIL(ERR_NOTHING_TO_WITHDRAW, "nothing is unbonding");
  SolClock clock;
  TRY(read_clock(&clock));
  if (clock.unix_timestamp < node->unbonding_ends_at) return FAIL(ERR_UNBONDING_NOT_FINISHED, "unbonding has not ended");

  u64 amount = node->unbonding;
  node->unbonding = 0;
  node->unbonding_ends_at = 0;
  u8 bump = node->bump;
  SolSignerSeed seeds[4];
  node_signer_seeds_of(node, seeds, &bump);
  SolSignerSeeds signer = {seeds, 4};
  return token_transfer(vault, dest, node_acc, amount, &signer);
}
