/* herdd_memory.c - herdd's memory figures and trimming (see herdd_memory.h). */
#define _GNU_SOURCE /* mallinfo2, malloc_trim */
#include "herdd_memory.h"

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

struct herdd_memory {
    uv_timer_t timer;
    unsigned long long trims;
    unsigned long long trimmed_kb;
};

/* The resident size in KiB (/proc/self/statm), or -1. */
static long rss_kb(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long size = 0, resident = 0;
    int ok = f && fscanf(f, "%lu %lu", &size, &resident) == 2;
    if (f)
        fclose(f);
    return ok ? (long)(resident * (unsigned long)sysconf(_SC_PAGESIZE) / 1024) : -1;
}

long herdd_memory_trim(herdd_memory_t *m)
{
    long before = rss_kb();
    malloc_trim(0);
    long after = rss_kb();
    long kb = before >= 0 && after >= 0 && before > after ? before - after : 0;
    if (m) {
        m->trims++;
        m->trimmed_kb += (unsigned long long)kb;
    }
    return kb * 1024;
}

static void on_trim(uv_timer_t *h)
{
    herdd_memory_trim(h->data);
}

herdd_memory_t *herdd_memory_start(uv_loop_t *loop)
{
    herdd_memory_t *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return NULL;
    m->timer.data = m;
    uv_timer_init(loop, &m->timer);
    uv_timer_start(&m->timer, on_trim, HERDD_MEMORY_TRIM_MS, HERDD_MEMORY_TRIM_MS);
    uv_unref((uv_handle_t *)&m->timer);
    return m;
}

static void on_closed(uv_handle_t *h)
{
    free(h->data);
}

void herdd_memory_stop(herdd_memory_t *m)
{
    if (m == NULL)
        return;
    uv_timer_stop(&m->timer);
    uv_close((uv_handle_t *)&m->timer, on_closed);
}

json_t *herdd_memory_json(const herdd_memory_t *m)
{
    struct mallinfo2 mi = mallinfo2();
    return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}", "rss_kb", (json_int_t)rss_kb(),
                     "heap_in_use", (json_int_t)(mi.uordblks + mi.hblkhd), "heap_free",
                     (json_int_t)mi.fordblks, "heap_mapped", (json_int_t)mi.hblkhd,
                     "trims", (json_int_t)(m ? m->trims : 0), "trimmed_kb",
                     (json_int_t)(m ? m->trimmed_kb : 0));
}
