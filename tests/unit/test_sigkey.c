/* Unit tests for sigkey.c: minisign 0.11's key files read, pgstep's key files read back, the key
 * id shown as minisign shows it, and a wrong password or a damaged key refused. The key pair was
 * made with "minisign -G -W" (unencrypted: minisign leaves its checksum zero). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "pgstep/sigkey.h"

#define MINISIGN_PUB                                                                               \
    "untrusted comment: minisign public key 82AF36C56AD67168\n"                                    \
    "RWRocdZqxTavgssyvFDUiyJg07fOEd95+So1jbeO4nojH6lm0UMa+SAj\n"

#define MINISIGN_KEY                                                                               \
    "untrusted comment: minisign encrypted secret key\n"                                           \
    "RWQAAEIyAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAaHHWasU2r4I9T+TyFj"   \
    "/TjYW4mUehIKUY2UwR0knd1aDUvl+4CSCSl8syvFDUiyJg07fOEd95+So1jbeO4nojH6lm0UMa+SAjAAAAAAAAAAAA"   \
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"

static void test_minisign_public_key_and_id(void **state)
{
    sigkey_public key;
    char why[256];
    char id[SIGKEY_ID_HEX_LEN + 1];
    char *again;

    (void)state;
    assert_true(sigkey_public_parse(MINISIGN_PUB, strlen(MINISIGN_PUB), &key, why, sizeof(why)));
    sigkey_id_hex(key.id, id);
    assert_string_equal(id, "82AF36C56AD67168");
    again = sigkey_public_format(&key);
    assert_string_equal(again, MINISIGN_PUB);
    free(again);
}

static void test_bad_public_keys_are_refused(void **state)
{
    sigkey_public key;
    char why[256];

    (void)state;
    assert_false(sigkey_public_decode("RWRocdZq", 8, &key, why, sizeof(why)));
    /* One character short. */
    assert_false(sigkey_public_decode("RWRocdZqxTavgssyvFDUiyJg07fOEd95+So1jbeO4nojH6lm0UMa+SA", 55,
                                      &key, why, sizeof(why)));
    assert_false(sigkey_public_parse("RWRocdZqxTavgssyvFDUiyJg07fOEd95+So1jbeO4nojH6lm0UMa+SAj\n",
                                     57, &key, why, sizeof(why)));
}

static void test_minisign_unencrypted_secret_key_matches_its_public_key(void **state)
{
    sigkey_public pub, derived;
    sigkey_secret *sec;
    char why[256];

    (void)state;
    assert_false(sigkey_secret_encrypted(MINISIGN_KEY, strlen(MINISIGN_KEY)));
    assert_true(sigkey_public_parse(MINISIGN_PUB, strlen(MINISIGN_PUB), &pub, why, sizeof(why)));
    if (!sigkey_secret_parse(MINISIGN_KEY, strlen(MINISIGN_KEY), NULL, &sec, why, sizeof(why)))
        fail_msg("%s", why);
    sigkey_public_of(sec, &derived);
    assert_memory_equal(&derived, &pub, sizeof(pub));
    sigkey_secret_free(sec);
}

static void test_unencrypted_secret_key_round_trips(void **state)
{
    sigkey_public pub, derived;
    sigkey_secret *sec, *back;
    char *text;
    size_t len;
    char why[256];

    (void)state;
    assert_true(sigkey_generate(&pub, &sec));
    assert_true(sigkey_secret_format(sec, NULL, &text, &len));
    assert_int_equal(len, strlen(text));
    assert_false(sigkey_secret_encrypted(text, len));
    assert_true(sigkey_secret_parse(text, len, NULL, &back, why, sizeof(why)));
    sigkey_public_of(back, &derived);
    assert_memory_equal(&derived, &pub, sizeof(pub));
    /* A flipped bit in the key fails its checksum. */
    text[160] = text[160] == 'A' ? 'B' : 'A';
    assert_false(sigkey_secret_parse(text, len, NULL, &back, why, sizeof(why)));
    sigkey_text_free(text);
    sigkey_secret_free(back);
    sigkey_secret_free(sec);
}

/* One scrypt run at minisign's cost each way: a few seconds. */
static void test_encrypted_secret_key_needs_its_password(void **state)
{
    sigkey_public pub, derived;
    sigkey_secret *sec, *back = NULL;
    char *text;
    size_t len;
    char why[256];

    (void)state;
    assert_true(sigkey_generate(&pub, &sec));
    assert_true(sigkey_secret_format(sec, "correct horse", &text, &len));
    assert_true(sigkey_secret_encrypted(text, len));
    assert_false(sigkey_secret_parse(text, len, NULL, &back, why, sizeof(why)));
    assert_non_null(strstr(why, "no password"));
    assert_false(sigkey_secret_parse(text, len, "wrong horse", &back, why, sizeof(why)));
    assert_non_null(strstr(why, "wrong password"));
    assert_null(back);
    assert_true(sigkey_secret_parse(text, len, "correct horse", &back, why, sizeof(why)));
    sigkey_public_of(back, &derived);
    assert_memory_equal(&derived, &pub, sizeof(pub));
    sigkey_text_free(text);
    sigkey_secret_free(back);
    sigkey_secret_free(sec);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_minisign_public_key_and_id),
        cmocka_unit_test(test_bad_public_keys_are_refused),
        cmocka_unit_test(test_minisign_unencrypted_secret_key_matches_its_public_key),
        cmocka_unit_test(test_unencrypted_secret_key_round_trips),
        cmocka_unit_test(test_encrypted_secret_key_needs_its_password),
    };

    if (sodium_init() < 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
