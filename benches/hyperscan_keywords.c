/* Hyperscan on maildlp's keywords: the yardstick for the keyword pass (README, Performance).
 *
 * Not part of the build or the tests. Hyperscan is a C++ library (Debian: libhyperscan-dev);
 * maildlp does not link it. This program searches the same keywords, ASCII case-insensitive,
 * in the same decoded ham-dev parts that `cargo bench --bench detect` uses, and prints the
 * matches and the best throughput of 20 passes.
 *
 *   apt-get install libhyperscan-dev
 *   cargo bench --no-run --bench detect
 *   DETECT_DUMP=/tmp/kw target/release/deps/detect-<hash> --bench
 *   gcc -O2 -o /tmp/hyperscan_keywords benches/hyperscan_keywords.c -lhs
 *   /tmp/hyperscan_keywords /tmp/kw
 */
#include <hs/hs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int on_match(unsigned id, unsigned long long from, unsigned long long to,
                    unsigned flags, void *ctx) {
    (void)id; (void)from; (void)to; (void)flags;
    (*(long *)ctx)++;
    return 0;
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

/* The whole file, NUL-terminated; its length in *len. */
static char *slurp(const char *dir, const char *name, long *len) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f) { perror(path); exit(1); }
    fseek(f, 0, SEEK_END);
    *len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc(*len + 1);
    if (!buf || fread(buf, 1, *len, f) != (size_t)*len) { fprintf(stderr, "%s: read failed\n", path); exit(1); }
    buf[*len] = 0;
    fclose(f);
    return buf;
}

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: %s <DETECT_DUMP directory>\n", argv[0]); return 2; }
    long klen, hlen;
    char *kw = slurp(argv[1], "keywords.txt", &klen);
    char *hay = slurp(argv[1], "ham-dev-parts.bin", &hlen);

    /* One keyword per line; "\n" inside a keyword stands for a line break. */
    size_t cap = 1, n = 0;
    for (const char *p = kw; *p; p++) cap += *p == '\n';
    const char **exprs = malloc(cap * sizeof *exprs);
    size_t *lens = malloc(cap * sizeof *lens);
    unsigned *flags = malloc(cap * sizeof *flags), *ids = malloc(cap * sizeof *ids);
    for (char *p = kw; *p && n < cap;) {
        char *e = strchr(p, '\n');
        size_t l = e ? (size_t)(e - p) : strlen(p), o = 0;
        char *k = malloc(l + 1);
        for (size_t i = 0; i < l; i++) {
            if (p[i] == '\\' && i + 1 < l && p[i + 1] == 'n') { k[o++] = '\n'; i++; }
            else k[o++] = p[i];
        }
        exprs[n] = k; lens[n] = o; flags[n] = HS_FLAG_CASELESS; ids[n] = (unsigned)n; n++;
        if (!e) break;
        p = e + 1;
    }

    hs_database_t *db;
    hs_compile_error_t *err;
    if (hs_compile_lit_multi(exprs, flags, ids, lens, (unsigned)n, HS_MODE_BLOCK, NULL, &db, &err) != HS_SUCCESS) {
        fprintf(stderr, "hyperscan: %s\n", err->message);
        return 1;
    }
    hs_scratch_t *scratch = NULL;
    if (hs_alloc_scratch(db, &scratch) != HS_SUCCESS) { fprintf(stderr, "hyperscan: no scratch\n"); return 1; }

    /* Parts are separated by NUL bytes. */
    long parts = 0, total = 0;
    for (long i = 0; i <= hlen; i++) if (i == hlen || hay[i] == 0) parts++;
    const char **at = malloc(parts * sizeof *at);
    unsigned *len = malloc(parts * sizeof *len);
    long k = 0, start = 0;
    for (long i = 0; i <= hlen; i++) {
        if (i == hlen || hay[i] == 0) { at[k] = hay + start; len[k] = (unsigned)(i - start); total += i - start; k++; start = i + 1; }
    }

    double best = 1e9;
    long hits = 0;
    for (int r = 0; r < 20; r++) {
        hits = 0;
        double t0 = now();
        for (long i = 0; i < parts; i++) hs_scan(db, at[i], len[i], 0, scratch, on_match, &hits);
        double t = now() - t0;
        if (t < best) best = t;
    }
    printf("hyperscan %s: %zu keywords (caseless), %ld parts, %ld bytes: %ld matches, %.0f MB/s\n",
           hs_version(), n, parts, total, hits, total / best / 1e6);
    return 0;
}
