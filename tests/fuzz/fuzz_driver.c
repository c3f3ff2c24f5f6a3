/*
 * fuzz_driver.c - runs a libFuzzer target (LLVMFuzzerTestOneInput) without
 * libFuzzer: a seeded mutation loop in plain C, deterministic and bounded,
 * so the targets run in every build's ctest and for hours in
 * tools/bench/fuzz_long.sh where clang's libFuzzer is missing.
 *
 * Inputs start from the target's seeds (fuzz_seeds), then each run takes a
 * seed or an earlier input and applies 1-8 mutations (fuzz_mutate.h): flip
 * a bit, set a byte to a random or boundary value, write a boundary
 * u16/u32/u64 (lengths and counts are where decoders go wrong), insert,
 * delete or repeat a chunk, splice in part of another seed. There is no coverage feedback: the same
 * seed gives the same inputs in the same order, so a finding replays with
 * its run number.
 *
 *   fuzz_X [-runs=N] [-max_total_time=S] [-seed=N] [-dump=DIR] [FILE...]
 *
 * FILEs are run once each (reproducers) and nothing else. On a crash
 * (SIGABRT, SIGSEGV, SIGBUS, SIGFPE: sanitizers abort) the input that ran
 * is written to -save=PATH (default ./fuzz-crash) before the signal goes on. -dump writes the
 * seeds into DIR (a starting corpus for libFuzzer) and exits. The loop stops
 * after N runs or S seconds, whichever comes first, and prints runs and
 * runs per second.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fuzz_mutate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MAX_INPUT 4096u
#define FUZZ_POOL 64u

static fuzz_rng_t g_rng;

static uint64_t rng(void)
{
    return fuzz_rng_next(&g_rng);
}

typedef struct buf {
    uint8_t b[FUZZ_MAX_INPUT];
    size_t n;
} buf_t;

static const char *crash_path = "fuzz-crash";
static const buf_t *volatile current; /* the input running now */

static void on_crash(int sig)
{
    const buf_t *x = current;
    int fd = x ? open(crash_path, O_WRONLY | O_CREAT | O_TRUNC, 0644) : -1;
    if (fd >= 0) {
        ssize_t w = write(fd, x->b, x->n);
        (void)w;
        close(fd);
        static const char note[] = "fuzz: the crashing input is in the -save file\n";
        w = write(2, note, sizeof note - 1);
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        perror(path);
        return 1;
    }
    static uint8_t b[1 << 20];
    size_t n = fread(b, 1, sizeof(b), f);
    fclose(f);
    uint8_t *copy = malloc(n ? n : 1); /* exact size: ASan sees any overread */
    if (copy == NULL)
        return 1;
    memcpy(copy, b, n);
    LLVMFuzzerTestOneInput(copy, n);
    free(copy);
    printf("%s: ran (%zu bytes)\n", path, n);
    return 0;
}

static int dump(const char *dir, const fuzz_seed_t *seeds, size_t nseeds)
{
    for (size_t i = 0; i < nseeds; i++) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/seed-%03zu", dir, i);
        FILE *f = fopen(path, "wb");
        if (f == NULL || fwrite(seeds[i].data, 1, seeds[i].len, f) != seeds[i].len) {
            perror(path);
            if (f) fclose(f);
            return 1;
        }
        fclose(f);
    }
    return 0;
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    unsigned long long runs = 100000, seed = 1;
    double max_time = 0;
    const char *dump_dir = NULL;
    int files = 0, rc = 0;
    for (int i = 1; i < argc; i++) {
        if (strncmp(argv[i], "-runs=", 6) == 0)
            runs = strtoull(argv[i] + 6, NULL, 10);
        else if (strncmp(argv[i], "-max_total_time=", 16) == 0)
            max_time = strtod(argv[i] + 16, NULL);
        else if (strncmp(argv[i], "-seed=", 6) == 0)
            seed = strtoull(argv[i] + 6, NULL, 10);
        else if (strncmp(argv[i], "-save=", 6) == 0)
            crash_path = argv[i] + 6;
        else if (strncmp(argv[i], "-dump=", 6) == 0)
            dump_dir = argv[i] + 6;
        else if (argv[i][0] == '-') {
            fprintf(stderr, "%s: unknown option %s\n", argv[0], argv[i]);
            return 2;
        } else {
            files = 1;
            rc |= run_file(argv[i]);
        }
    }
    if (files)
        return rc;
    fuzz_seed_t *seeds;
    size_t nseeds = fuzz_seeds(&seeds);
    if (dump_dir || nseeds == 0) {
        int drc = dump_dir ? dump(dump_dir, seeds, nseeds) : 1;
        if (nseeds == 0)
            fprintf(stderr, "%s: the target gave no seeds\n", argv[0]);
        fuzz_seeds_free(seeds, nseeds);
        return drc;
    }
    g_rng.state = seed;
    static const int sigs[] = {SIGABRT, SIGSEGV, SIGBUS, SIGFPE, SIGILL};
    for (size_t k = 0; k < sizeof sigs / sizeof sigs[0]; k++)
        signal(sigs[k], on_crash);
    static buf_t pool[FUZZ_POOL];
    size_t npool = 0;
    double t0 = now_s();
    unsigned long long i;
    for (i = 0; i < runs; i++) {
        if ((i & 255) == 0 && max_time > 0 && now_s() - t0 >= max_time)
            break;
        buf_t x;
        if (i < nseeds) { /* every seed once as it is */
            x.n = seeds[i].len > FUZZ_MAX_INPUT ? FUZZ_MAX_INPUT : seeds[i].len;
            memcpy(x.b, seeds[i].data, x.n);
        } else {
            if (npool && rng() % 4 == 0) {
                x = pool[rng() % npool];
            } else {
                const fuzz_seed_t *s = &seeds[rng() % nseeds];
                x.n = s->len > FUZZ_MAX_INPUT ? FUZZ_MAX_INPUT : s->len;
                memcpy(x.b, s->data, x.n);
            }
            for (int k = 1 + (int)(rng() % 8); k > 0; k--)
                fuzz_mutate_once(&g_rng, x.b, &x.n, FUZZ_MAX_INPUT, seeds, nseeds);
            if (rng() % 16 == 0) /* keep some inputs to mutate further */
                pool[npool < FUZZ_POOL ? npool++ : rng() % FUZZ_POOL] = x;
        }
        uint8_t *copy = malloc(x.n ? x.n : 1); /* exact size: ASan sees any overread */
        if (copy == NULL)
            return 1;
        memcpy(copy, x.b, x.n);
        current = &x;
        LLVMFuzzerTestOneInput(copy, x.n);
        current = NULL;
        free(copy);
    }
    double el = now_s() - t0;
    printf("%s: %llu runs in %.1f s, %.0f runs/s, seed %llu\n", argv[0], i, el,
           el > 0 ? (double)i / el : 0.0, seed);
    fuzz_seeds_free(seeds, nseeds);
    return 0;
}
