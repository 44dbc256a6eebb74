/* strbuf.c — snprintf-style string building, "did you mean" suggestions, and text from files
 * escaped for printing (cn_text_escape), class names a line each, an ONNX file by its name. Covered
 * by tests/test_core.c. */
#define _POSIX_C_SOURCE 200809L /* strcasecmp */
#include <string.h>
#include <strings.h>

#include "core_impl.h"

void cn_sb_init(cn_strbuf *sb, char *buf, size_t cap)
{
    sb->buf = buf;
    sb->cap = buf ? cap : 0;
    sb->len = 0;
    if (sb->cap) sb->buf[0] = '\0';
}

void cn_sb_printf(cn_strbuf *sb, const char *fmt, ...)
{
    size_t room = sb->len < sb->cap ? sb->cap - sb->len : 0;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(room ? sb->buf + sb->len : NULL, room, fmt, ap);
    va_end(ap);
    if (n > 0) sb->len += (size_t)n;
}

void cn_sb_count(cn_strbuf *sb, int64_t n)
{
    char digits[32], out[48];
    int len = snprintf(digits, sizeof digits, "%lld", (long long)(n < 0 ? -n : n));
    int o = 0;
    if (n < 0) out[o++] = '-';
    for (int i = 0; i < len; i++) {
        if (i > 0 && (len - i) % 3 == 0) out[o++] = ',';
        out[o++] = digits[i];
    }
    out[o] = '\0';
    cn_sb_printf(sb, "%s", out);
}

int cn_edit_distance(const char *a, const char *b)
{
    enum { MAX = 40 };
    size_t la = strlen(a), lb = strlen(b);
    if (la >= MAX || lb >= MAX) return 99;
    int d[MAX + 1][MAX + 1];
    for (size_t i = 0; i <= la; i++) d[i][0] = (int)i;
    for (size_t j = 0; j <= lb; j++) d[0][j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        for (size_t j = 1; j <= lb; j++) {
            int cost = a[i - 1] != b[j - 1];
            int best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best) best = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + cost < best) best = d[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    }
    return d[la][lb];
}

const char *cn_suggest(const char *word, const char *const *candidates, int n)
{
    const char *best = NULL;
    int best_d = 99;
    size_t lw = strlen(word);
    for (int i = 0; i < n; i++) {
        const char *c = candidates[i];
        size_t lc = strlen(c);
        int d = cn_edit_distance(word, c);
        /* "conv2d" -> "conv", "maxpooling" -> "maxpool": a candidate that starts the word */
        if (lc >= 3 && lw > lc && strncmp(word, c, lc) == 0 && d > 1) d = 2;
        if (d < best_d) {
            best_d = d;
            best = c;
        }
    }
    size_t limit = lw <= 3 ? 1 : lw <= 6 ? 2 : 3;
    return best && (size_t)best_d <= limit ? best : NULL;
}

/* ---- text from files, made safe to print ---- */

/* length of the valid UTF-8 sequence at p that is not a control character (C0, DEL, C1), else 0 */
static size_t printable_run(const unsigned char *p)
{
    unsigned c = p[0];
    if (c < 0x80) return c >= 0x20 && c != 0x7f;
    size_t len = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
    uint32_t cp = c & (len == 2 ? 0x1f : len == 3 ? 0x0f : 0x07);
    for (size_t k = 1; k < len; k++) {
        if ((p[k] & 0xc0) != 0x80) return 0; /* also stops at the NUL */
        cp = cp << 6 | (p[k] & 0x3f);
    }
    if (!len || (len == 2 && cp <= 0x9f) || (len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return len;
}

int cn_text_printable(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t n; *p; p += n)
        if (!(n = printable_run(p))) return 0;
    return 1;
}

int cn_text_printable_lines(const char *s)
{
    for (;;) {
        size_t n = strcspn(s, "\n");
        if (n == 0 || n > CN_CLASS_NAME_MAX) return 0;
        for (size_t k, i = 0; i < n; i += k) /* a run stops at the newline, a control character */
            if (!(k = printable_run((const unsigned char *)s + i))) return 0;
        if (!s[n]) return 1;
        s += n + 1;
    }
}

int cn_path_is_onnx(const char *path)
{
    size_t n = strlen(path);
    return n >= 5 && !strcasecmp(path + n - 5, ".onnx");
}

const char *cn_text_escape(const char *s, char *buf, size_t cap)
{
    if (!s || cn_text_printable(s) || !buf || !cap) return s ? s : "";
    cn_strbuf sb;
    cn_sb_init(&sb, buf, cap);
    const unsigned char *p = (const unsigned char *)s;
    for (size_t n; *p && sb.len < cap; p += n) {
        if ((n = printable_run(p))) cn_sb_printf(&sb, "%.*s", (int)n, (const char *)p);
        else cn_sb_printf(&sb, "\\x%02x", *p), n = 1;
    }
    return buf;
}
