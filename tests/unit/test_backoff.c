/* Unit tests for backoff.c: the bounds of a steady pace with jitter, which keep the wait at no
 * more than 10 attempts a second, and of exponential backoff. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <sodium.h>

#include "pgstep/backoff.h"

#define DRAWS 10000

static int setup(void **state)
{
    (void)state;
    return sodium_init() < 0 ? -1 : 0;
}

/* Never shorter than the pace, never more than a quarter longer, and both ends are drawn. */
static void test_jitter_bounds(void **state)
{
    static const int64_t paces[] = {50, 100, 200, 500};

    (void)state;
    for (size_t p = 0; p < sizeof(paces) / sizeof(paces[0]); p++) {
        int64_t lo = INT64_MAX, hi = 0;

        for (int i = 0; i < DRAWS; i++) {
            int64_t ms = backoff_jitter_ms(paces[p]);

            lo = ms < lo ? ms : lo;
            hi = ms > hi ? ms : hi;
        }
        assert_int_equal(lo, paces[p]);
        assert_int_equal(hi, paces[p] + paces[p] / 4);
    }
}

static void test_jitter_tiny(void **state)
{
    (void)state;
    assert_int_equal(backoff_jitter_ms(0), 1);
    assert_int_equal(backoff_jitter_ms(-5), 1);
    for (int i = 0; i < 100; i++) {
        int64_t ms = backoff_jitter_ms(3);

        assert_true(ms == 3);
    }
}

/* Equal jitter: each delay between half and all of a ceiling that doubles up to the cap. */
static void test_exponential(void **state)
{
    static const int64_t ceilings[] = {400, 500, 500, 500};
    backoff b;

    (void)state;
    for (int round = 0; round < 100; round++) {
        backoff_init(&b, 400, 500);
        for (size_t k = 0; k < sizeof(ceilings) / sizeof(ceilings[0]); k++) {
            int64_t ms = backoff_next_ms(&b);

            assert_true(ms >= ceilings[k] / 2);
            assert_true(ms <= ceilings[k]);
        }
    }
}

/* A pause that ends in the past, or a deadline already gone, does not sleep. */
static void test_sleep_past(void **state)
{
    int64_t start = backoff_now_ms();
    pgstep_error err;

    (void)state;
    error_clear(&err);
    assert_true(backoff_sleep(-20, 0, &err));
    assert_true(backoff_sleep(1000, start - 1, &err));
    assert_false(error_is_set(&err));
    assert_true(backoff_now_ms() - start < 500);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jitter_bounds),
        cmocka_unit_test(test_jitter_tiny),
        cmocka_unit_test(test_exponential),
        cmocka_unit_test(test_sleep_past),
    };

    return cmocka_run_group_tests(tests, setup, NULL);
}
