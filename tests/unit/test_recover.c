/* Unit tests for recover.c: which of a run's commits survived a lost connection, and where the
 * run goes on. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "pgstep/recover.h"

#define NITEMS 6

/* V1..V4, then R__a and R__b. */
typedef struct fixture {
    step steps[NITEMS];
    char descriptions[NITEMS][2];
    plan_item items[NITEMS];
    const plan_item *work[NITEMS];
    bool mine[NITEMS];
} fixture;

static void fixture_init(fixture *f)
{
    memset(f, 0, sizeof(*f));
    for (size_t k = 0; k < NITEMS; k++) {
        step *s = &f->steps[k];

        s->kind = k < 4 ? STEP_VERSIONED : STEP_REPEATABLE;
        s->version = k < 4 ? (long long)k + 1 : 0;
        strcpy(f->descriptions[k], k < 4 ? "t" : k == 4 ? "a" : "b");
        s->description = f->descriptions[k];
        f->items[k].step = s;
        strcpy(f->items[k].checksum, k == 4 ? "c4" : "c5");
        f->work[k] = &f->items[k];
    }
}

static char description_t[] = "t";
static char description_a[] = "a";
static char description_b[] = "b";

static history_entry row_v(long long version)
{
    history_entry row = {.kind = STEP_VERSIONED, .version = version, .description = description_t};

    strcpy(row.checksum, "x");
    return row;
}

static history_entry row_r(char *description, const char *checksum)
{
    history_entry row = {.kind = STEP_REPEATABLE, .description = description};

    strcpy(row.checksum, checksum);
    return row;
}

static void test_everything_survived_resumes_after_the_batch(void **state)
{
    fixture f;
    history_entry rows[] = {row_v(1), row_v(2), row_v(3)};

    (void)state;
    fixture_init(&f);
    f.mine[0] = f.mine[1] = f.mine[2] = true;
    assert_int_equal(recover_resume(f.work, 0, 3, f.mine, rows, 3), 3);
    assert_true(f.mine[0] && f.mine[1] && f.mine[2]);
}

static void test_lost_commits_resume_at_the_first_gone(void **state)
{
    fixture f;
    history_entry rows[] = {row_v(1)};

    (void)state;
    fixture_init(&f);
    f.mine[0] = f.mine[1] = f.mine[2] = true;
    assert_int_equal(recover_resume(f.work, 0, 4, f.mine, rows, 1), 1);
    assert_true(f.mine[0]);
    assert_false(f.mine[1] || f.mine[2] || f.mine[3]);
}

static void test_commits_whose_results_never_arrived_are_confirmed(void **state)
{
    fixture f;
    history_entry rows[] = {row_v(1), row_v(2), row_v(3)};

    (void)state;
    fixture_init(&f);
    f.mine[0] = true;
    assert_int_equal(recover_resume(f.work, 1, 4, f.mine, rows, 3), 3);
    assert_true(f.mine[1] && f.mine[2]);
    assert_false(f.mine[3]);
}

static void test_an_earlier_batch_that_is_gone_is_resumed_first(void **state)
{
    fixture f;
    history_entry rows[] = {row_v(1)};

    (void)state;
    fixture_init(&f);
    f.mine[0] = f.mine[1] = true; /* an earlier batch; V3 was another runner's */
    assert_int_equal(recover_resume(f.work, 3, 4, f.mine, rows, 1), 1);
    assert_false(f.mine[1]);
    assert_false(f.mine[2]);
}

static void test_another_runners_items_are_not_taken_for_the_runs(void **state)
{
    fixture f;
    history_entry rows[] = {row_v(1), row_v(2)};

    (void)state;
    fixture_init(&f);
    f.mine[0] = f.mine[1] = true; /* V3 was applied by another runner before the batch */
    assert_int_equal(recover_resume(f.work, 3, 4, f.mine, rows, 2), 3);
    assert_false(f.mine[2]);
}

static void test_repeatable_steps_match_on_description_and_checksum(void **state)
{
    fixture f;
    history_entry stale[] = {row_r(description_a, "old"), row_r(description_b, "c5")};
    history_entry fresh[] = {row_r(description_a, "c4"), row_r(description_b, "c5")};

    (void)state;
    fixture_init(&f);
    assert_int_equal(recover_resume(f.work, 4, 6, f.mine, stale, 2), 4);
    assert_false(f.mine[4]);
    assert_true(f.mine[5]);
    fixture_init(&f);
    assert_int_equal(recover_resume(f.work, 4, 6, f.mine, fresh, 2), 6);
    assert_true(f.mine[4] && f.mine[5]);
}

static void test_no_history_resumes_at_the_batch(void **state)
{
    fixture f;

    (void)state;
    fixture_init(&f);
    assert_int_equal(recover_resume(f.work, 0, 6, f.mine, NULL, 0), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_everything_survived_resumes_after_the_batch),
        cmocka_unit_test(test_lost_commits_resume_at_the_first_gone),
        cmocka_unit_test(test_commits_whose_results_never_arrived_are_confirmed),
        cmocka_unit_test(test_an_earlier_batch_that_is_gone_is_resumed_first),
        cmocka_unit_test(test_another_runners_items_are_not_taken_for_the_runs),
        cmocka_unit_test(test_repeatable_steps_match_on_description_and_checksum),
        cmocka_unit_test(test_no_history_resumes_at_the_batch),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
