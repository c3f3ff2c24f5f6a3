/*
 * seeds.c - the simulation tests' seed driver (seeds.h).
 */
#include "seeds.h"

#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <time.h>

#include <cmocka.h>

#define SEEDS_MAX_CASES 64

/* The variable `name` as a number, else `dflt` when unset or empty; a value
 * that is not a whole number (or is below `min`) fails the running test. */
static uint64_t env_number(const char *name, uint64_t dflt, uint64_t min)
{
    const char *v = getenv(name);
    char *end = NULL;
    if (v == NULL || *v == '\0')
        return dflt;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (errno != 0 || *end != '\0' || *v == '-' || n < min) {
        print_error("%s=%s: not a whole number >= %llu\n", name, v, (unsigned long long)min);
        fail();
    }
    return n;
}

static double wall_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* HERD_SIM_SEED_LIST=a,b,c into a malloc'ed array (*count of them); NULL
 * when unset or empty. Anything but whole numbers separated by single
 * commas fails the running test. */
static uint64_t *seed_list(unsigned *count)
{
    const char *v = getenv("HERD_SIM_SEED_LIST");
    *count = 0;
    if (v == NULL || *v == '\0')
        return NULL;
    size_t cap = 1;
    for (const char *p = v; *p; p++)
        cap += *p == ',';
    uint64_t *seeds = malloc(cap * sizeof(*seeds));
    if (seeds == NULL) {
        print_error("HERD_SIM_SEED_LIST: out of memory\n");
        fail();
    }
    for (const char *p = v;; p++) {
        char *end = NULL;
        errno = 0;
        unsigned long long n = strtoull(p, &end, 10);
        if (errno != 0 || *p < '0' || *p > '9' || (*end != ',' && *end != '\0')) {
            free(seeds);
            print_error("HERD_SIM_SEED_LIST=%s: not a list of whole numbers a,b,c\n", v);
            fail();
        }
        seeds[(*count)++] = n;
        if (*end == '\0')
            return seeds;
        p = end;
    }
}

/* The seeds to run, in order: HERD_SIM_SEED_LIST, else HERD_SIM_SEED alone,
 * else HERD_SIM_SEEDS from HERD_SIM_FIRST_SEED. *list is the list's seeds
 * (malloc'ed) or NULL for a range. */
static void seeds_pick(unsigned default_seeds, seeds_summary_t *out, uint64_t **list)
{
    unsigned listed;
    *list = seed_list(&listed);
    if (*list) {
        *out = (seeds_summary_t){.count = listed, .first = (*list)[0],
                                 .list = getenv("HERD_SIM_SEED_LIST")};
        return;
    }
    uint64_t n = env_number("HERD_SIM_SEEDS", default_seeds, 1);
    uint64_t first = env_number("HERD_SIM_FIRST_SEED", 1, 0);
    if (getenv("HERD_SIM_SEED")) {
        first = env_number("HERD_SIM_SEED", 1, 0);
        n = 1;
    }
    if (n > UINT_MAX) {
        print_error("HERD_SIM_SEEDS=%llu: at most %u\n", (unsigned long long)n, UINT_MAX);
        fail();
    }
    *out = (seeds_summary_t){.count = (unsigned)n, .first = first};
}

void seeds_run(unsigned default_seeds, seeds_one_fn one, void *ctx, seeds_summary_t *out)
{
    uint64_t *list;
    seeds_pick(default_seeds, out, &list);
    double t0 = wall_seconds();
    int progress = getenv("HERD_SIM_PROGRESS") != NULL;
    for (unsigned k = 0; k < out->count; k++) {
        uint64_t seed = list ? list[k] : out->first + k;
        if (progress)
            fprintf(stderr, "seed %llu\n", (unsigned long long)seed);
        out->failed += !one(ctx, seed);
    }
    out->wall_s = wall_seconds() - t0;
    free(list);
}

void seeds_print_summary(const char *name, const seeds_summary_t *s, const char *extra)
{
    print_message("sim %s seeds=%u first=%llu failed=%u wall_s=%.2f%s%s%s\n", name, s->count,
                  (unsigned long long)s->first, s->failed, s->wall_s, s->list ? " list=" : "",
                  s->list ? s->list : "", extra ? extra : "");
}

void seeds_print_failure(const char *name, uint64_t seed, uint64_t t_ms, const char *why)
{
    print_message("%s: seed %llu FAILED at t=%llu ms: %s\n", name, (unsigned long long)seed,
                  (unsigned long long)t_ms, why);
}

int seeds_main(const char *prefix, const void *cases, size_t size, size_t count,
               void (*run)(void **state), herd_log_level_t level)
{
    static char names[SEEDS_MAX_CASES][96];
    struct CMUnitTest tests[SEEDS_MAX_CASES];
    if (count > SEEDS_MAX_CASES)
        return 2;
    if (getenv("HERD_SIM_LOG"))
        herd_log_parse_level(getenv("HERD_SIM_LOG"), &level);
    herd_log_set_level(level);
    if (getenv("HERD_SIM_TEST"))
        cmocka_set_test_filter(getenv("HERD_SIM_TEST"));
    for (size_t i = 0; i < count; i++) {
        const void *c = (const char *)cases + i * size;
        const char *name = *(const char *const *)c;
        snprintf(names[i], sizeof(names[i]), "%s_%s", prefix, name);
        tests[i] = (struct CMUnitTest){names[i], run, NULL, NULL, (void *)c};
        if (getenv("HERD_SIM_LIST"))
            printf("%s\n", names[i]);
    }
    if (getenv("HERD_SIM_LIST"))
        return fflush(stdout) == 0 ? 0 : 1;
    return _cmocka_run_group_tests(prefix, tests, count, NULL, NULL);
}
