/*
 * seeds.c - the simulation tests' seed driver (seeds.h).
 */
#include "seeds.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <time.h>

#include <cmocka.h>

#define SEEDS_MAX_CASES 64

static unsigned env_unsigned(const char *name, unsigned dflt)
{
    const char *v = getenv(name);
    if (v == NULL || *v == '\0')
        return dflt;
    return (unsigned)strtoul(v, NULL, 10);
}

static double wall_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

unsigned seeds_run(const char *name, int known_bug, unsigned default_seeds, seeds_one_fn one,
                   void *ctx, unsigned *count, double *wall_s)
{
    unsigned n = env_unsigned("HERD_SIM_SEEDS", default_seeds);
    unsigned first = 1, failures = 0;
    if (known_bug && getenv("HERD_SIM_KNOWN_BUGS") == NULL) {
        print_message("%s pins a known bug: HERD_SIM_KNOWN_BUGS=1 runs it\n", name);
        skip();
    }
    if (getenv("HERD_SIM_SEED")) {
        first = env_unsigned("HERD_SIM_SEED", 1);
        n = 1;
    }
    double t0 = wall_seconds();
    for (unsigned k = 0; k < n; k++)
        failures += !one(ctx, first + k);
    *count = n;
    *wall_s = wall_seconds() - t0;
    return failures;
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
    }
    return _cmocka_run_group_tests(prefix, tests, count, NULL, NULL);
}
