/* text/unicode.h — UTF-8 and the Unicode facts the tokenizers need, as Python 3.11 sees them.
 *
 *   uni_buf cps = {0}, low = {0};
 *   if (uni_utf8_decode(text, len, &cps, &e) != DIT_OK) return e.code;   // invalid UTF-8: DIT_E_ARG
 *   uni_py_lower(cps.cp, cps.n, &low, &e);          // Python str.lower(): 'İ' -> 'i̇', 'ΟΔΟΣ' -> 'οδος'
 *   if (uni_category(low.cp[0])[0] == 'L') ...      // "Lu", "Mn", "Zs", "Cn", ... as unicodedata
 *   uni_buf_free(&cps); uni_buf_free(&low);
 *
 * The data comes from ICU (libicu: categories, bidi classes, Cased / Case_Ignorable, simple case
 * mappings, NFC). The reference tokenizers ran under Python 3.11, whose unicodedata is Unicode
 * 14.0 (golden README, tokenizers/clip, cleaning `hf_noftfy`); an ICU built on a newer Unicode
 * knows code points Python 3.11 calls unassigned (category Cn), e.g. the emoji of Unicode 15.
 * Such code points are reported as Cn here, with no case mapping and no properties, so the CLIP
 * cleaning drops them exactly as the reference does.
 */
#ifndef DIT_TEXT_UNICODE_H
#define DIT_TEXT_UNICODE_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

#define UNI_PY_MAJOR 14 /* unicodedata.unidata_version of Python 3.11: "14.0.0" */

/* The Unicode major version of the installed ICU data (Debian 12's ICU 72: 15). Results match the
 * reference only when it is >= UNI_PY_MAJOR (ICU 70 or newer): an older ICU does not know every
 * character Python 3.11 knows. */
int uni_data_major(void);

/* A growable array of code points, owned by the caller (uni_buf_free). Start from {0}. */
typedef struct {
    uint32_t *cp;
    size_t n, cap;
} uni_buf;

void uni_buf_free(uni_buf *b);
dit_status uni_buf_push(uni_buf *b, uint32_t cp, dit_err *e);

/* One code point of s[*pos..len) into *cp and advance *pos; 0 (pos unchanged) when the bytes there
 * are not well-formed UTF-8 (overlong, surrogate, > U+10FFFF, stray or missing continuation). */
int uni_utf8_next(const char *s, size_t len, size_t *pos, uint32_t *cp);
/* The UTF-8 bytes of cp (<= U+10FFFF) into out; returns their number (1-4). */
int uni_utf8_put(char out[4], uint32_t cp);
/* Append every code point of s[0..len); DIT_E_ARG naming the byte offset on malformed UTF-8. */
dit_status uni_utf8_decode(const char *s, size_t len, uni_buf *out, dit_err *e);
/* Byte length of the first n_cp code points of well-formed UTF-8 s[0..len) (len if it has fewer):
 * Python's text[:n_cp]. */
size_t uni_utf8_prefix(const char *s, size_t len, size_t n_cp);

/* General category as Python's unicodedata.category: "Lu", "Ll", ..., "Cn" (unassigned). */
const char *uni_category(uint32_t cp);
/* Python str.isspace() of one character: category Zs or bidi class WS, B or S. */
int uni_py_isspace(uint32_t cp);
/* 1 when cp or one of its simple case mappings (lower, upper, title, fold) has a general category
 * starting with major ('L', 'N', ...). The `regex` module tests a negated property class under
 * IGNORECASE this way: U+0345 (Mn) is excluded from [^\s\p{L}\p{N}] because its fold is a letter. */
int uni_case_any(uint32_t cp, char major);
/* Decimal digit value (category Nd), else -1: what Python's float() accepts as a digit. */
int uni_decimal(uint32_t cp);

/* Unicode NFC of in[0..n) appended to out (ICU's normalizer). */
dit_status uni_nfc(const uint32_t *in, size_t n, uni_buf *out, dit_err *e);
/* Python str.lower() of in[0..n) appended to out: full lowercase mapping, i.e. the simple mapping
 * except U+0130 -> U+0069 U+0307 (SpecialCasing, unconditional) and capital sigma -> final sigma
 * when preceded by a cased letter and not followed by one (case-ignorable letters skipped). */
dit_status uni_py_lower(const uint32_t *in, size_t n, uni_buf *out, dit_err *e);

#endif
