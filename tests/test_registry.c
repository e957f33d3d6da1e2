/* Every registered op is complete: a shape rule, a forward kernel, a backward rule or an
 * explicit "not differentiable", and a row in docs/op-reference.md. (Case rows, PyTorch
 * fixtures and gradient checks per op are enforced by the fixtures suite.) */
#include <stdlib.h>
#include <string.h>

#include "op.h"
#include "test_util.h"

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    rewind(f);
    char *text = malloc((size_t)size + 1);
    if (text != NULL && fread(text, 1, (size_t)size, f) == (size_t)size)
        text[size] = '\0';
    else {
        free(text);
        text = NULL;
    }
    fclose(f);
    return text;
}

START_TEST(every_op_has_its_parts)
{
    for (int i = 0; i < DG_OP_COUNT; i++) {
        const struct dg_op_def *def = dg__op_def((dg_op_id)i);
        ck_assert_msg(def != NULL && def->name != NULL, "op %d has no definition", i);
        ck_assert_msg(def->infer != NULL, "op '%s' has no shape rule", def->name);
        ck_assert_msg(def->forward != NULL || def->view, "op '%s' has no forward kernel",
                      def->name);
        ck_assert_msg(!(def->view && def->forward != NULL), "op '%s' is a view with a kernel "
                      "(views alias their input; the planner never runs one)", def->name);
        /* A real rule, or the explicit zero rule dg__zero_grad where the maths says zero;
         * "no rule" (NULL) is what dg_grad reports as DG_ERR_NOT_DIFFERENTIABLE, and no
         * registered op may rely on it. */
        ck_assert_msg(def->backward != NULL, "op '%s' has no backward rule (give it one, or "
                      "dg__zero_grad if its gradient is zero by definition)", def->name);
        ck_assert_msg(def->attrs_size == 0 || def->attrs_size <= 4096,
                      "op '%s' has an attribute struct of %zu bytes", def->name, def->attrs_size);
        for (int j = 0; j < i; j++)
            ck_assert_msg(strcmp(def->name, dg__op_def((dg_op_id)j)->name) != 0,
                          "op name '%s' is registered twice", def->name);
    }
}
END_TEST

START_TEST(every_op_has_a_docs_row)
{
    const char *dir = getenv("DG_TEST_DOCS");
    char path[1024];
    snprintf(path, sizeof path, "%s/op-reference.md", dir ? dir : "docs");
    char *doc = read_file(path);
    ck_assert_msg(doc != NULL, "cannot read %s", path);
    for (int i = 0; i < DG_OP_COUNT; i++) {
        char row[128];
        snprintf(row, sizeof row, "\n| %s |", dg__op_def((dg_op_id)i)->name);
        ck_assert_msg(strstr(doc, row) != NULL, "op '%s' has no row in %s",
                      dg__op_def((dg_op_id)i)->name, path);
    }
    free(doc);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("registry");
    TCase *tc = tcase_create("registry");
    tcase_add_test(tc, every_op_has_its_parts);
    tcase_add_test(tc, every_op_has_a_docs_row);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return dg_test_run(suite());
}
