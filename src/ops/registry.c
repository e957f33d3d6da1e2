/* The op table, generated from op_list.h in enum order. */
#include "op.h"

#include <assert.h>

static const struct dg_op_def *const op_table[DG_OP_COUNT] = {
#define DG_OP(name) [DG_OP_##name] = &dg_op_##name,
#include "op_list.h"
#undef DG_OP
};

const struct dg_op_def *dg__op_def(dg_op_id id)
{
    assert(id >= 0 && id < DG_OP_COUNT);
    return op_table[id];
}
