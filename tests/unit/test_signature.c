/* Unit tests for signature.c: signatures made by minisign 0.11 verify, pgstep's own verify, and
 * a changed message, signature or trusted comment does not. The vectors were made with
 * "minisign -G -W", then "minisign -S -W -m m" (prehashed) and "minisign -S -l -W -m m" (legacy)
 * over the six bytes "hello\n". */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "pgstep/signature.h"

#define MESSAGE "hello\n"

#define PUBLIC_KEY "RWRocdZqxTavgssyvFDUiyJg07fOEd95+So1jbeO4nojH6lm0UMa+SAj"

#define SIG_PREHASHED                                                                              \
    "untrusted comment: signature from minisign secret key\n"                                      \
    "RURocdZqxTavgiEneIWxTD8fkl00QUyrgnK/A/F2Dmz8bU/ess9izib6KUrGvSgTGBmQHkAPpSh7OBbtM12eaIslvagX" \
    "tBMVPgk=\n"                                                                                   \
    "trusted comment: timestamp:1796203088\tfile:m\thashed\n"                                      \
    "VLX20Om0AHsaLqgsPpMVYE8RUeBgXmo0x2DsZfxY2WzeaxDy091zj1QwUr8Vq0bMyr6rYteE/LIqCDh85/cWAQ==\n"

#define SIG_LEGACY                                                                                 \
    "untrusted comment: signature from minisign secret key\n"                                      \
    "RWRocdZqxTavgjIwfeqRG2KlPfuFh8G7wousbUo3rYeUF9+XaoF69f/9XnI0yGcY4mOrPTui3jTQPzhXX15mUzWrbHnA" \
    "wV5+ywY=\n"                                                                                   \
    "trusted comment: timestamp:1796203088\tfile:m\n"                                              \
    "6dJuW9fFPIMSHj0A3d0I5crFK8rWDdpFcd8QzB/rPtcTH+v2ysrV8CYokIj2iLaafq8rxvxAMFCOo0josJXqBQ==\n"

static sigkey_public public_key(void)
{
    sigkey_public key;
    char why[256];

    assert_true(sigkey_public_decode(PUBLIC_KEY, strlen(PUBLIC_KEY), &key, why, sizeof(why)));
    return key;
}

static signature parse(const char *text)
{
    signature sig;
    char why[256];

    if (!signature_parse(text, strlen(text), &sig, why, sizeof(why)))
        fail_msg("%s", why);
    return sig;
}

static void test_minisign_prehashed_signature_verifies(void **state)
{
    sigkey_public key = public_key();
    signature sig = parse(SIG_PREHASHED);

    (void)state;
    assert_true(sig.prehashed);
    assert_memory_equal(sig.key_id, key.id, SIGKEY_ID_BYTES);
    assert_string_equal(sig.trusted_comment, "timestamp:1796203088\tfile:m\thashed");
    assert_int_equal(signature_verify(&sig, &key, MESSAGE, 6), SIGNATURE_VALID);
}

static void test_minisign_legacy_signature_verifies(void **state)
{
    sigkey_public key = public_key();
    signature sig = parse(SIG_LEGACY);

    (void)state;
    assert_false(sig.prehashed);
    assert_int_equal(signature_verify(&sig, &key, MESSAGE, 6), SIGNATURE_VALID);
}

static void test_other_message_fails(void **state)
{
    sigkey_public key = public_key();
    signature sig = parse(SIG_PREHASHED);

    (void)state;
    assert_int_equal(signature_verify(&sig, &key, "hellO\n", 6), SIGNATURE_BAD_DATA);
    assert_int_equal(signature_verify(&sig, &key, MESSAGE, 5), SIGNATURE_BAD_DATA);
}

static void test_altered_trusted_comment_fails(void **state)
{
    sigkey_public key = public_key();
    signature sig = parse(SIG_PREHASHED);

    (void)state;
    sig.trusted_comment[10]++;
    assert_int_equal(signature_verify(&sig, &key, MESSAGE, 6), SIGNATURE_BAD_COMMENT);
}

static void test_other_key_fails(void **state)
{
    sigkey_public key = public_key();
    signature sig = parse(SIG_PREHASHED);

    (void)state;
    key.pk[0] ^= 1;
    assert_int_equal(signature_verify(&sig, &key, MESSAGE, 6), SIGNATURE_BAD_DATA);
}

static void test_damaged_files_are_refused(void **state)
{
    char text[sizeof(SIG_PREHASHED)];
    signature sig;
    char why[256];

    (void)state;
    /* Truncated at every length short of the four lines. */
    for (size_t len = 0; len < strlen(SIG_PREHASHED) - 1; len++) {
        if (signature_parse(SIG_PREHASHED, len, &sig, why, sizeof(why)))
            fail_msg("a signature cut to %zu bytes was accepted", len);
    }
    strcpy(text, SIG_PREHASHED);
    text[60] = '*'; /* not base64 */
    assert_false(signature_parse(text, strlen(text), &sig, why, sizeof(why)));
    assert_non_null(strstr(why, "line 2"));
    assert_false(signature_parse("untrusted comment: x\n", 21, &sig, why, sizeof(why)));
}

static void test_own_signature_round_trips(void **state)
{
    sigkey_public pub;
    sigkey_secret *sec;
    char *text;
    signature sig;
    char why[256];

    (void)state;
    assert_true(sigkey_generate(&pub, &sec));
    text = signature_create(sec, "data", 4, "timestamp:1\tfile:pgstep.sum\thashed");
    assert_non_null(text);
    assert_true(signature_parse(text, strlen(text), &sig, why, sizeof(why)));
    assert_true(sig.prehashed);
    assert_memory_equal(sig.key_id, pub.id, SIGKEY_ID_BYTES);
    assert_int_equal(signature_verify(&sig, &pub, "data", 4), SIGNATURE_VALID);
    assert_null(signature_create(sec, "data", 4, "two\nlines"));
    free(text);
    sigkey_secret_free(sec);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_minisign_prehashed_signature_verifies),
        cmocka_unit_test(test_minisign_legacy_signature_verifies),
        cmocka_unit_test(test_other_message_fails),
        cmocka_unit_test(test_altered_trusted_comment_fails),
        cmocka_unit_test(test_other_key_fails),
        cmocka_unit_test(test_damaged_files_are_refused),
        cmocka_unit_test(test_own_signature_round_trips),
    };

    if (sodium_init() < 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
