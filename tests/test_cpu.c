/* Run-time dispatch: DG_ISA forces a path (capped to what the CPU runs); the forced path is
 * the one the kernels take. */
#include <stdlib.h>
#include <string.h>

#include "cpu.h"
#include "gemm/gemm.h"
#include "simd/vmath.h"
#include "test_util.h"

START_TEST(isa_request_parsing)
{
    ck_assert_int_eq(dg__isa_choose(NULL, DG_ISA_AVX512), DG_ISA_AVX512);
    ck_assert_int_eq(dg__isa_choose("", DG_ISA_AVX2), DG_ISA_AVX2);
    ck_assert_int_eq(dg__isa_choose("generic", DG_ISA_AVX512), DG_ISA_GENERIC);
    ck_assert_int_eq(dg__isa_choose("avx2", DG_ISA_AVX512), DG_ISA_AVX2);
    ck_assert_int_eq(dg__isa_choose("avx512", DG_ISA_AVX512), DG_ISA_AVX512);
    /* Never above what the CPU supports. */
    ck_assert_int_eq(dg__isa_choose("avx512", DG_ISA_AVX2), DG_ISA_AVX2);
    ck_assert_int_eq(dg__isa_choose("avx2", DG_ISA_GENERIC), DG_ISA_GENERIC);
    /* Unknown names keep the best path. */
    ck_assert_int_eq(dg__isa_choose("sse9", DG_ISA_AVX2), DG_ISA_AVX2);
    for (int i = 0; i < DG_ISA_COUNT; i++)
        ck_assert_int_eq(dg__isa_choose(dg__isa_name((enum dg_isa)i), DG_ISA_AVX512), i);
    ck_assert_str_eq(dg__isa_name((enum dg_isa)99), "unknown");
}
END_TEST

/* The environment of this process decides dg__isa() (meson runs this suite once plainly and
 * once per forced path, see tests/meson.build); the tables follow it. */
START_TEST(environment_decides_the_path)
{
    enum dg_isa want = dg__isa_choose(getenv("DG_ISA"), dg__isa_supported());
    ck_assert_int_eq(dg__isa(), want);
    ck_assert_str_eq(dg__vmath()->isa_name, dg__isa_name(want));
    printf("DG_ISA=%s -> %s (CPU supports %s)\n", getenv("DG_ISA") ? getenv("DG_ISA") : "",
           dg__isa_name(dg__isa()), dg__isa_name(dg__isa_supported()));
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("cpu");
    TCase *tc = tcase_create("dispatch");
    tcase_add_test(tc, isa_request_parsing);
    tcase_add_test(tc, environment_decides_the_path);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return dg_test_run(suite());
}
