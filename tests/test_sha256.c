/* tests/test_sha256.c — core/sha256 against the FIPS 180-4 example digests (NIST CSRC examples:
 * "", "abc", the 448-bit message, one million 'a'), split updates, and file ranges. */
#include <unistd.h>

#include "core/sha256.h"
#include "tests/test.h"

static void digest_hex(const void *data, size_t n, size_t split, char *hex)
{
    unsigned char d[32];
    sha256 s;
    sha256_init(&s);
    if (split > n) split = n;
    sha256_update(&s, data, split);
    sha256_update(&s, (const char *)data + split, n - split);
    sha256_final(&s, d);
    sha256_hex(d, 64, hex);
}

static void t_nist(tctx *t)
{
    static const char *const msg[] = { "", "abc", "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq" };
    static const char *const want[] = { "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                                        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
                                        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1" };
    char hex[65];
    for (int i = 0; i < 3; i++)
        for (size_t split = 0; split <= strlen(msg[i]); split += 7) {
            digest_hex(msg[i], strlen(msg[i]), split, hex);
            CHECK(t, !strcmp(hex, want[i]), "'%s' split %zu: %s", msg[i], split, hex);
        }
    char *a = malloc(1000000);
    CHECK(t, a != NULL, "oom");
    if (!a) return;
    memset(a, 'a', 1000000);
    digest_hex(a, 1000000, 500001, hex);
    CHECK(t, !strcmp(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"), "million a: %s", hex);
    free(a);
}

static void t_file_range(tctx *t)
{
    char path[] = "/tmp/dit_sha_XXXXXX";
    const int fd = mkstemp(path);
    CHECK(t, fd >= 0, "mkstemp");
    if (fd < 0) return;
    const char *text = "xxabcxx";
    CHECK(t, write(fd, text, 7) == 7, "write");
    close(fd);
    unsigned char d[32];
    char hex[65];
    dit_err e = { 0 };
    CHECK(t, sha256_file_range(path, 2, 3, d, &e) == DIT_OK, "%s", e.msg);
    sha256_hex(d, 8, hex);
    CHECK(t, !strcmp(hex, "ba7816bf"), "range [2, 5) = \"abc\": %s", hex);
    CHECK(t, sha256_file_range(path, 100, 10, d, &e) == DIT_OK, "past the end: %s", e.msg);
    sha256_hex(d, 64, hex);
    CHECK(t, !strcmp(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"), "past the end = empty: %s", hex);
    unlink(path);
    CHECK(t, sha256_file_range(path, 0, 1, d, &e) == DIT_E_IO && strstr(e.msg, path), "missing file: %s", e.msg);
}

int main(void)
{
    tctx t = test_begin("sha256");
    RUN(&t, t_nist);
    RUN(&t, t_file_range);
    return test_end(&t);
}
