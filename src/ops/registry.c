/* registry.c — the op table generated from ops.def. */
#include <string.h>

#include "op_impl.h"

#define CN_OP(E, name) extern const cn_op cn_op_##name;
#include "ops.def"
#undef CN_OP

#define CN_OP(E, name) &cn_op_##name,
const cn_op *const cn_ops[CN_OP_COUNT] = {
#include "ops.def"
};
#undef CN_OP

int cn_op_find(const char *name)
{
    for (int i = 0; i < CN_OP_COUNT; i++)
        if (strcmp(cn_ops[i]->name, name) == 0) return i;
    return -1;
}

int cn_op_key_index(const cn_op *op, const char *key)
{
    for (int i = 0; op->keys && op->keys[i].name; i++)
        if (strcmp(op->keys[i].name, key) == 0) return i;
    return -1;
}

int cn_layer_type_count(void) { return CN_OP_COUNT; }
const char *cn_layer_type_usage(int i) { return i >= 0 && i < CN_OP_COUNT ? cn_ops[i]->usage : NULL; }
const char *cn_layer_type_help(int i) { return i >= 0 && i < CN_OP_COUNT ? cn_ops[i]->help : NULL; }
