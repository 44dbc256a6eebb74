/* fuzz_ckmeta.c — libFuzzer target for checkpoint metadata: the input is a list of entries,
 * one a line, "KEY<TAB>VALUE" (a byte 0x01 in a value stands for a newline, as in class_names),
 * written as the metadata of a small net's checkpoint by cn_checkpoint_write, so that every
 * checksum is right and only the values are hostile; then read back, the net built, the
 * normalisation and the optimizer state restored and the class names escaped. Any entries must
 * give a clean error with a message or good values (finite, std > 0, printable names), never a
 * crash. The tests replay tests/fuzz/ckmeta_corpus. Files go to $TMPDIR (default /dev/shm). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../src/io/checkpoint_impl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_ENTRIES 32

static void must_say_why(const cn_ctx *ctx)
{
    if (!*cn_ctx_message(ctx)) abort(); /* every failure must say why */
}

static void use(cn_ctx *ctx, const cn_checkpoint *ck)
{
    cn_net *net = NULL;
    if (cn_checkpoint_net(ctx, ck, &net)) {
        must_say_why(ctx);
        return;
    }
    float mean[4], std[4];
    if (cn_checkpoint_norm(ctx, ck, mean, std) == CN_OK) {
        for (int c = 0; c < 4; c++)
            if (!isfinite(mean[c]) || !(std[c] > 0) || !isfinite(std[c])) abort(); /* validated when read */
    } else {
        must_say_why(ctx);
    }
    /* class names read back are printable, line by line (validated when read) */
    for (const char *p = cn_checkpoint_meta(ck, "class_names"); p && *p;) {
        char line[2048];
        size_t len = strcspn(p, "\n");
        if (len == 0 || len >= sizeof line) abort();
        memcpy(line, p, len);
        line[len] = '\0';
        if (!cn_text_printable(line)) abort();
        p += len + (p[len] == '\n');
    }
    cn_optim_config cfg;
    cn_optim *opt = NULL;
    cn_optim_defaults(&cfg, CN_OPTIM_ADAM);
    if (cn_optim_create(ctx, net, &cfg, &opt) == CN_OK && cn_checkpoint_optim(ctx, ck, opt) != CN_OK) must_say_why(ctx);
    cn_optim_destroy(opt);
    cn_net_destroy(net);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static cn_ctx *ctx;
    static cn_net *net;
    static cn_optim *opt;
    static char path[256];
    if (!ctx) { /* one small net with Adam state, made once */
        const char *tmp = getenv("TMPDIR");
        snprintf(path, sizeof path, "%s/fuzz_ckmeta.%ld.safetensors", tmp ? tmp : "/dev/shm", (long)getpid());
        const char *spec = "input 3x3x1\nconv 2 2x2\nbatchnorm\nflatten\ndense 2\n";
        cn_optim_config cfg;
        cn_optim_defaults(&cfg, CN_OPTIM_ADAM);
        if (cn_ctx_create(NULL, &ctx) || cn_net_parse(ctx, spec, strlen(spec), "fuzz", &net) ||
            cn_net_init_params(ctx, net, CN_INIT_KAIMING_UNIFORM, 1) || cn_optim_create(ctx, net, &cfg, &opt))
            abort();
    }
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    cn_kv meta[MAX_ENTRIES];
    int n = 0;
    for (char *line = text; line && n < MAX_ENTRIES;) {
        char *next = strchr(line, '\n');
        if (next) *next++ = '\0';
        char *tab = strchr(line, '\t');
        if (tab) {
            *tab = '\0';
            for (char *p = tab + 1; *p; p++)
                if (*p == '\x01') *p = '\n';
            meta[n++] = (cn_kv){ line, tab + 1 };
        }
        line = next;
    }
    cn_checkpoint *ck = NULL;
    if (cn_checkpoint_write(ctx, path, net, opt, meta, n) != CN_OK) {
        must_say_why(ctx); /* reserved or repeated keys, text that is not UTF-8 */
    } else if (cn_checkpoint_read(ctx, path, &ck) != CN_OK) {
        must_say_why(ctx);
    } else {
        use(ctx, ck);
    }
    cn_checkpoint_free(ck);
    unlink(path);
    free(text);
    return 0;
}
