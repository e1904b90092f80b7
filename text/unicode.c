/* text/unicode.c — see unicode.h. ICU supplies the data; this file only adapts it to what
 * CPython 3.11 does (Objects/unicodeobject.c: lower_ucs4, handle_capital_sigma; unicodedata). */
#include "unicode.h"

#include <stdlib.h>
#include <string.h>

#include <unicode/uchar.h>
#include <unicode/unorm2.h>

void uni_buf_free(uni_buf *b)
{
    free(b->cp);
    b->cp = NULL;
    b->n = b->cap = 0;
}

static dit_status reserve(uni_buf *b, size_t more, dit_err *e)
{
    if (b->n + more <= b->cap) return DIT_OK;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->n + more) cap *= 2;
    uint32_t *p = realloc(b->cp, cap * sizeof *p);
    if (!p) return err_set(e, DIT_E_OOM, "text: out of memory (%zu code points)", cap);
    b->cp = p;
    b->cap = cap;
    return DIT_OK;
}

dit_status uni_buf_push(uni_buf *b, uint32_t cp, dit_err *e)
{
    if (b->n == b->cap && reserve(b, 1, e) != DIT_OK) return DIT_E_OOM;
    b->cp[b->n++] = cp;
    return DIT_OK;
}

/* ---- UTF-8 ------------------------------------------------------------------------------ */

int uni_utf8_next(const char *s, size_t len, size_t *pos, uint32_t *cp)
{
    static const uint32_t min_cp[4] = { 0, 0x80, 0x800, 0x10000 };
    const unsigned char *p = (const unsigned char *)s + *pos;
    const size_t left = len - *pos;
    if (left == 0) return 0;
    int n;
    uint32_t c = p[0];
    if (c < 0x80) n = 1;
    else if ((c & 0xE0) == 0xC0) n = 2, c &= 0x1F;
    else if ((c & 0xF0) == 0xE0) n = 3, c &= 0x0F;
    else if ((c & 0xF8) == 0xF0) n = 4, c &= 0x07;
    else return 0;
    if ((size_t)n > left) return 0;
    for (int i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80) return 0;
        c = (c << 6) | (p[i] & 0x3F);
    }
    if (c < min_cp[n - 1] || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return 0;
    *cp = c;
    *pos += (size_t)n;
    return 1;
}

int uni_utf8_put(char out[4], uint32_t cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

dit_status uni_utf8_decode(const char *s, size_t len, uni_buf *out, dit_err *e)
{
    if (reserve(out, len, e) != DIT_OK) return DIT_E_OOM; /* never more code points than bytes */
    size_t pos = 0;
    while (pos < len) {
        uint32_t cp;
        if (!uni_utf8_next(s, len, &pos, &cp))
            return err_set(e, DIT_E_ARG, "text: not valid UTF-8 at byte %zu (0x%02x)", pos,
                           (unsigned)(unsigned char)s[pos]);
        out->cp[out->n++] = cp;
    }
    return DIT_OK;
}

size_t uni_utf8_prefix(const char *s, size_t len, size_t n_cp)
{
    size_t pos = 0;
    uint32_t cp;
    for (size_t i = 0; i < n_cp && uni_utf8_next(s, len, &pos, &cp); i++) {
    }
    return pos;
}

/* ---- character properties ---------------------------------------------------------------- */

int uni_data_major(void)
{
    UVersionInfo v;
    u_getUnicodeVersion(v);
    return v[0];
}

/* Assigned in Python 3.11's Unicode (14.0)? ICU's u_charAge is 0.0 for unassigned code points. */
static int py_assigned(uint32_t cp)
{
    UVersionInfo age;
    u_charAge((UChar32)cp, age);
    return age[0] != 0 && age[0] <= UNI_PY_MAJOR;
}

const char *uni_category(uint32_t cp)
{
    /* Indexed by ICU's UCharCategory. */
    static const char *const names[U_CHAR_CATEGORY_COUNT] = {
        [U_UNASSIGNED] = "Cn",
        [U_UPPERCASE_LETTER] = "Lu",
        [U_LOWERCASE_LETTER] = "Ll",
        [U_TITLECASE_LETTER] = "Lt",
        [U_MODIFIER_LETTER] = "Lm",
        [U_OTHER_LETTER] = "Lo",
        [U_NON_SPACING_MARK] = "Mn",
        [U_ENCLOSING_MARK] = "Me",
        [U_COMBINING_SPACING_MARK] = "Mc",
        [U_DECIMAL_DIGIT_NUMBER] = "Nd",
        [U_LETTER_NUMBER] = "Nl",
        [U_OTHER_NUMBER] = "No",
        [U_SPACE_SEPARATOR] = "Zs",
        [U_LINE_SEPARATOR] = "Zl",
        [U_PARAGRAPH_SEPARATOR] = "Zp",
        [U_CONTROL_CHAR] = "Cc",
        [U_FORMAT_CHAR] = "Cf",
        [U_PRIVATE_USE_CHAR] = "Co",
        [U_SURROGATE] = "Cs",
        [U_DASH_PUNCTUATION] = "Pd",
        [U_START_PUNCTUATION] = "Ps",
        [U_END_PUNCTUATION] = "Pe",
        [U_CONNECTOR_PUNCTUATION] = "Pc",
        [U_OTHER_PUNCTUATION] = "Po",
        [U_MATH_SYMBOL] = "Sm",
        [U_CURRENCY_SYMBOL] = "Sc",
        [U_MODIFIER_SYMBOL] = "Sk",
        [U_OTHER_SYMBOL] = "So",
        [U_INITIAL_PUNCTUATION] = "Pi",
        [U_FINAL_PUNCTUATION] = "Pf",
    };
    if (cp > 0x10FFFF) return "Cn";
    if (!py_assigned(cp)) return "Cn";
    const int8_t t = u_charType((UChar32)cp);
    return (t >= 0 && t < U_CHAR_CATEGORY_COUNT && names[t]) ? names[t] : "Cn";
}

int uni_py_isspace(uint32_t cp)
{
    if (cp > 0x10FFFF || !py_assigned(cp)) return 0;
    if (u_charType((UChar32)cp) == U_SPACE_SEPARATOR) return 1;
    const UCharDirection d = u_charDirection((UChar32)cp);
    return d == U_WHITE_SPACE_NEUTRAL || d == U_BLOCK_SEPARATOR || d == U_SEGMENT_SEPARATOR;
}

int uni_decimal(uint32_t cp)
{
    if (cp > 0x10FFFF || !py_assigned(cp) || u_charType((UChar32)cp) != U_DECIMAL_DIGIT_NUMBER) return -1;
    return u_charDigitValue((UChar32)cp);
}

int uni_case_any(uint32_t cp, char major)
{
    if (uni_category(cp)[0] == major) return 1;
    if (cp > 0x10FFFF || !py_assigned(cp)) return 0;
    const UChar32 c = (UChar32)cp;
    const UChar32 v[4] = { u_tolower(c), u_toupper(c), u_totitle(c), u_foldCase(c, U_FOLD_CASE_DEFAULT) };
    for (int i = 0; i < 4; i++)
        if (v[i] != c && uni_category((uint32_t)v[i])[0] == major) return 1;
    return 0;
}

static int is_cased(uint32_t cp)
{
    return py_assigned(cp) && u_hasBinaryProperty((UChar32)cp, UCHAR_CASED);
}

static int is_case_ignorable(uint32_t cp)
{
    return py_assigned(cp) && u_hasBinaryProperty((UChar32)cp, UCHAR_CASE_IGNORABLE);
}

/* ---- NFC and lowercasing ----------------------------------------------------------------- */

dit_status uni_nfc(const uint32_t *in, size_t n, uni_buf *out, dit_err *e)
{
    if (n == 0) return DIT_OK;
    if (n > (size_t)INT32_MAX / 8) return err_set(e, DIT_E_ARG, "text: %zu code points is too long", n);
    /* ICU normalizes UTF-16: at most 2 units per code point in; NFC output is at most 3x longer. */
    const int32_t src_len_max = (int32_t)(2 * n), cap = (int32_t)(6 * n) + 16;
    UChar *src = malloc((size_t)src_len_max * sizeof *src), *dst = malloc((size_t)cap * sizeof *dst);
    if (!src || !dst) {
        free(src);
        free(dst);
        return err_set(e, DIT_E_OOM, "text: out of memory (NFC of %zu code points)", n);
    }
    int32_t m = 0;
    for (size_t i = 0; i < n; i++) {
        const uint32_t c = in[i];
        if (c >= 0x10000) {
            src[m++] = (UChar)(0xD800 + ((c - 0x10000) >> 10));
            src[m++] = (UChar)(0xDC00 + ((c - 0x10000) & 0x3FF));
        } else src[m++] = (UChar)c;
    }
    UErrorCode status = U_ZERO_ERROR;
    const UNormalizer2 *nfc = unorm2_getNFCInstance(&status);
    int32_t got = U_SUCCESS(status) ? unorm2_normalize(nfc, src, m, dst, cap, &status) : 0;
    dit_status rc = DIT_OK;
    if (U_FAILURE(status)) rc = err_set(e, DIT_E_BACKEND, "text: ICU NFC failed: %s", u_errorName(status));
    else if (reserve(out, (size_t)got, e) != DIT_OK) rc = DIT_E_OOM;
    for (int32_t i = 0; rc == DIT_OK && i < got; i++) {
        uint32_t c = dst[i];
        if (c >= 0xD800 && c <= 0xDBFF && i + 1 < got && dst[i + 1] >= 0xDC00 && dst[i + 1] <= 0xDFFF)
            c = 0x10000 + ((c - 0xD800) << 10) + (dst[++i] - 0xDC00u);
        out->cp[out->n++] = c;
    }
    free(src);
    free(dst);
    return rc;
}

/* CPython handle_capital_sigma: U+03A3 is final when \p{cased} \p{case-ignorable}* precede it and
 * no \p{case-ignorable}* \p{cased} follows. */
static int final_sigma(const uint32_t *s, size_t n, size_t i)
{
    size_t j = i;
    while (j > 0 && is_case_ignorable(s[j - 1])) j--;
    if (j == 0 || !is_cased(s[j - 1])) return 0;
    j = i + 1;
    while (j < n && is_case_ignorable(s[j])) j++;
    return j == n || !is_cased(s[j]);
}

dit_status uni_py_lower(const uint32_t *in, size_t n, uni_buf *out, dit_err *e)
{
    if (reserve(out, n + 8, e) != DIT_OK) return DIT_E_OOM;
    for (size_t i = 0; i < n; i++) {
        const uint32_t c = in[i];
        if (c == 0x130) { /* İ: SpecialCasing's only unconditional multi-character lowercase */
            if (uni_buf_push(out, 0x69, e) != DIT_OK || uni_buf_push(out, 0x307, e) != DIT_OK) return DIT_E_OOM;
            continue;
        }
        uint32_t low = c;
        if (c == 0x3A3) low = final_sigma(in, n, i) ? 0x3C2 : 0x3C3;
        else if (c <= 0x10FFFF && py_assigned(c)) low = (uint32_t)u_tolower((UChar32)c);
        if (uni_buf_push(out, low, e) != DIT_OK) return DIT_E_OOM;
    }
    return DIT_OK;
}
