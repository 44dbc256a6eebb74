/* strbuf.c — snprintf-style string building and "did you mean" suggestions. */
#include <string.h>

#include "core_impl.h"

void cn_sb_init(cn_strbuf *sb, char *buf, size_t cap)
{
    sb->buf = buf;
    sb->cap = buf ? cap : 0;
    sb->len = 0;
    if (sb->cap) sb->buf[0] = '\0';
}

void cn_sb_vprintf(cn_strbuf *sb, const char *fmt, va_list ap)
{
    size_t room = sb->len < sb->cap ? sb->cap - sb->len : 0;
    int n = vsnprintf(room ? sb->buf + sb->len : NULL, room, fmt, ap);
    if (n > 0) sb->len += (size_t)n;
}

void cn_sb_printf(cn_strbuf *sb, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cn_sb_vprintf(sb, fmt, ap);
    va_end(ap);
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
