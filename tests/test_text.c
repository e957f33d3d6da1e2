/* Text corpora (src/io/text.c): UTF-8 decoding, the character vocabulary, encode/decode,
 * the held-out split and the [B, T] windows; errors with messages. */
#include "dagrad.h"
#include "test_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

START_TEST(test_vocab_and_tokens)
{
    dg_text t;
    const char *s = "abca\xc3\xa9z\n"; /* "abcaéz\n": 7 characters, 8 bytes */
    ck_assert_int_eq(dg_text_from_utf8(s, (int64_t)strlen(s), &t), DG_OK);
    ck_assert_int_eq(t.n_tokens, 7);
    ck_assert_int_eq(t.vocab_size, 6); /* \n a b c z é */
    ck_assert_uint_eq(t.vocab[0], '\n');
    ck_assert_uint_eq(t.vocab[5], 0xE9);
    const int32_t want[7] = {1, 2, 3, 1, 5, 4, 0};
    for (int i = 0; i < 7; i++)
        ck_assert_int_eq(t.tokens[i], want[i]);
    ck_assert_int_eq(dg_text_id(&t, 'q'), -1);
    int32_t ids[8];
    ck_assert_int_eq(dg_text_encode(&t, "z\xc3\xa9" "a", ids, 8), 3);
    ck_assert_int_eq(ids[1], 5);
    ck_assert_int_eq(dg_text_encode(&t, "zq", ids, 8), -1);
    char back[16];
    ck_assert_int_eq(dg_text_decode(&t, t.tokens, t.n_tokens, back, sizeof back), 8);
    ck_assert_str_eq(back, s);
    ck_assert_int_eq(dg_text_decode(&t, (int32_t[]){9}, 1, back, sizeof back), -1);
    /* A character that does not fit is left out whole. */
    ck_assert_int_eq(dg_text_decode(&t, (int32_t[]){1, 5}, 2, back, 3), 1);
    ck_assert_str_eq(back, "a");
    dg_text_free(&t);
    ck_assert_ptr_null(t.tokens);
    dg_text_free(&t); /* twice is safe */
}
END_TEST

START_TEST(test_invalid_utf8)
{
    dg_text t;
    const char *bad[] = {"ab\xff", "a\xc3", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80"};
    for (int i = 0; i < 5; i++) {
        ck_assert_int_eq(dg_text_from_utf8(bad[i], (int64_t)strlen(bad[i]), &t), DG_ERR_FORMAT);
        ck_assert_int_eq(dg_text_status(&t), DG_ERR_FORMAT);
        ck_assert_ptr_nonnull(strstr(dg_text_error(&t), "invalid UTF-8 at byte"));
        ck_assert_ptr_null(t.tokens);
        dg_text_free(&t);
    }
    ck_assert_int_eq(dg_text_from_utf8(NULL, 3, &t), DG_ERR_INVALID_ARG);
    ck_assert_int_eq(dg_text_from_utf8("x", 1, NULL), DG_ERR_INVALID_ARG);
    ck_assert_int_eq(dg_text_load("/nonexistent/dir/text.txt", &t), DG_ERR_IO);
    ck_assert_ptr_nonnull(strstr(dg_text_error(&t), "/nonexistent/dir/text.txt: cannot open"));
}
END_TEST

START_TEST(test_load_file)
{
    char path[] = "/tmp/dg_test_textXXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    FILE *f = fdopen(fd, "wb");
    for (int i = 0; i < 20000; i++) /* larger than the first read buffer */
        fputs("in the beginning\n", f);
    fclose(f);
    dg_text t;
    ck_assert_int_eq(dg_text_load(path, &t), DG_OK);
    ck_assert_int_eq(t.n_tokens, 20000 * 17);
    ck_assert_int_eq(t.vocab_size, 9); /* \n space b e g h i n t */
    ck_assert_int_eq(dg_text_split(&t, 0.05), 20000 * 17 - 17000);
    ck_assert_int_eq(dg_text_split(&t, 1.5), -1);
    dg_text_free(&t);
    f = fopen(path, "ab");
    fputs("\x80", f);
    fclose(f);
    ck_assert_int_eq(dg_text_load(path, &t), DG_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(dg_text_error(&t), path));
    remove(path);
}
END_TEST

START_TEST(test_windows)
{
    dg_text t;
    const char *s = "0123456789abcdefghij";
    ck_assert_int_eq(dg_text_from_utf8(s, 20, &t), DG_OK);
    int32_t x[4 * 5], y[4 * 5];
    dg_rng rng;
    dg_rng_seed(&rng, 1);
    for (int rep = 0; rep < 50; rep++) {
        ck_assert_int_eq(dg_text_windows(&t, 10, 20, 4, 5, &rng, x, y), DG_OK);
        for (int i = 0; i < 4 * 5; i++) {
            ck_assert_int_ge(x[i], 10); /* ids of 'a'.. are 10.. (digits sort first) */
            ck_assert_int_eq(y[i], x[i] + 1);
            ck_assert_int_le(y[i], 19);
        }
    }
    /* Consecutive windows for validation: starts 0, 5, 10. */
    ck_assert_int_eq(dg_text_windows(&t, 0, 20, 3, 5, NULL, x, y), DG_OK);
    ck_assert_int_eq(x[5], 5);
    ck_assert_int_eq(x[10], 10);
    ck_assert_int_eq(y[14], 15);
    ck_assert_int_eq(dg_text_windows(&t, 0, 20, 4, 5, NULL, x, y), DG_ERR_INVALID_ARG);
    ck_assert_int_eq(dg_text_windows(&t, 15, 20, 1, 5, &rng, x, y), DG_ERR_INVALID_ARG);
    ck_assert_int_eq(dg_text_windows(&t, 0, 21, 1, 5, &rng, x, y), DG_ERR_INVALID_ARG);
    dg_text_free(&t);
}
END_TEST

static Suite *text_suite(void)
{
    Suite *s = suite_create("text");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_vocab_and_tokens);
    tcase_add_test(tc, test_invalid_utf8);
    tcase_add_test(tc, test_load_file);
    tcase_add_test(tc, test_windows);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return dg_test_run(text_suite()); }
