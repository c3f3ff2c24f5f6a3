/*
 * counter.c - the counter service (see counter.h).
 *
 * State encoding (wire.h): u64 self, u32 n, n x (u64 copy, u64 incr, u64 decr).
 */
#include "counter.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"

#define COUNTER_MAX_STEP (1ull << 62)
#define COUNTER_MAX_COPIES 65536u

static counter_state_t *counter_new(uint64_t self)
{
    counter_state_t *c = calloc(1, sizeof(*c));
    if (c)
        c->self = self;
    return c;
}

void counter_free(counter_state_t *c)
{
    if (c == NULL)
        return;
    free(c->slots);
    free(c);
}

/* The slot of `copy`, added (zeroed) when absent; NULL when out of memory. */
static counter_slot_t *counter_slot(counter_state_t *c, uint64_t copy)
{
    for (size_t i = 0; i < c->count; i++)
        if (c->slots[i].copy == copy)
            return &c->slots[i];
    if (c->count == COUNTER_MAX_COPIES)
        return NULL;
    if (c->count == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 4;
        counter_slot_t *s = realloc(c->slots, cap * sizeof(*s));
        if (s == NULL)
            return NULL;
        c->slots = s;
        c->cap = cap;
    }
    c->slots[c->count] = (counter_slot_t){copy, 0, 0};
    return &c->slots[c->count++];
}

int64_t counter_value(const counter_state_t *c)
{
    uint64_t up = 0, down = 0;
    for (size_t i = 0; i < c->count; i++) {
        up += c->slots[i].incr;
        down += c->slots[i].decr;
    }
    return (int64_t)(up - down); /* two's complement: exact while |value| < 2^63 */
}

/* "incr", "incr 5": the verb and its step (1 by default). */
static int counter_parse(const char *cmd, size_t len, char *verb, size_t vcap, uint64_t *step)
{
    char buf[64];
    if (len == 0 || len >= sizeof(buf))
        return HERD_EINVAL;
    memcpy(buf, cmd, len);
    buf[len] = '\0';
    char *space = strchr(buf, ' ');
    *step = 1;
    if (space) {
        *space = '\0';
        char *end;
        errno = 0;
        unsigned long long n = strtoull(space + 1, &end, 10);
        if (space[1] == '\0' || space[1] == '-' || *end != '\0' || errno || n == 0 ||
            n > COUNTER_MAX_STEP)
            return HERD_EINVAL;
        *step = n;
    }
    if (strlen(buf) >= vcap)
        return HERD_EINVAL;
    strcpy(verb, buf);
    return 0;
}

int counter_apply(counter_state_t *c, const char *cmd, size_t len, int64_t *value)
{
    char verb[8];
    uint64_t step;
    if (counter_parse(cmd, len, verb, sizeof(verb), &step) != 0)
        return HERD_EINVAL;
    int has_step = memchr(cmd, ' ', len) != NULL;
    int is_incr = strcmp(verb, "incr") == 0, is_decr = strcmp(verb, "decr") == 0;
    int is_get = strcmp(verb, "get") == 0, is_reset = strcmp(verb, "reset") == 0;
    if (!(is_incr || is_decr || is_get || is_reset) || ((is_get || is_reset) && has_step))
        return HERD_EINVAL;
    counter_slot_t *own = counter_slot(c, c->self);
    if (own == NULL)
        return HERD_ENOMEM;
    int64_t now = counter_value(c);
    if (is_reset) {
        if (now >= 0)
            step = (uint64_t)now, is_decr = 1;
        else
            step = (uint64_t)(-now), is_incr = 1;
    }
    uint64_t *count = is_incr ? &own->incr : is_decr ? &own->decr : NULL;
    if (count && *count > UINT64_MAX / 2 - step)
        return HERD_ERANGE;
    if (count)
        *count += step;
    *value = counter_value(c);
    return 0;
}

int counter_encode(const counter_state_t *c, uint8_t **out, size_t *len)
{
    wire_writer_t w;
    wire_writer_init(&w);
    wire_put_u64(&w, c->self);
    wire_put_u32(&w, (uint32_t)c->count);
    for (size_t i = 0; i < c->count; i++) {
        wire_put_u64(&w, c->slots[i].copy);
        wire_put_u64(&w, c->slots[i].incr);
        wire_put_u64(&w, c->slots[i].decr);
    }
    *out = wire_writer_take(&w, len);
    return *out ? 0 : HERD_ENOMEM;
}

/* Read an encoded state's slots, calling take(c, slot) for each. */
static int counter_read(const uint8_t *data, size_t len, uint64_t *self,
                        int (*take)(counter_state_t *c, const counter_slot_t *s),
                        counter_state_t *c)
{
    wire_reader_t r;
    wire_reader_init(&r, data, len);
    *self = wire_get_u64(&r);
    uint32_t n = wire_get_u32(&r);
    if (r.err || n > COUNTER_MAX_COPIES || (size_t)n * 24 != len - r.off)
        return HERD_EBADFRAME;
    for (uint32_t i = 0; i < n; i++) {
        counter_slot_t s = {wire_get_u64(&r), wire_get_u64(&r), wire_get_u64(&r)};
        if (s.incr > UINT64_MAX / 2 || s.decr > UINT64_MAX / 2)
            return HERD_EBADFRAME;
        int rc = take(c, &s);
        if (rc)
            return rc;
    }
    return wire_reader_done(&r);
}

/* The join of PN-counters: per copy, the larger of each count. */
static int counter_take_max(counter_state_t *c, const counter_slot_t *s)
{
    counter_slot_t *own = counter_slot(c, s->copy);
    if (own == NULL)
        return HERD_ENOMEM;
    if (s->incr > own->incr)
        own->incr = s->incr;
    if (s->decr > own->decr)
        own->decr = s->decr;
    return 0;
}

int counter_merge(counter_state_t *c, const uint8_t *data, size_t len)
{
    uint64_t their_self;
    counter_state_t tmp = *c; /* merge into a copy: all or nothing */
    tmp.slots = malloc((c->cap ? c->cap : 1) * sizeof(counter_slot_t));
    if (tmp.slots == NULL)
        return HERD_ENOMEM;
    if (c->count)
        memcpy(tmp.slots, c->slots, c->count * sizeof(counter_slot_t));
    int rc = counter_read(data, len, &their_self, counter_take_max, &tmp);
    if (rc) {
        free(tmp.slots);
        return rc;
    }
    free(c->slots);
    *c = tmp;
    return 0;
}

int counter_decode(const uint8_t *data, size_t len, counter_state_t **out)
{
    uint64_t self;
    counter_state_t *c = counter_new(0);
    if (c == NULL)
        return HERD_ENOMEM;
    int rc = counter_read(data, len, &self, counter_take_max, c);
    if (rc) {
        counter_free(c);
        return rc;
    }
    c->self = self;
    *out = c;
    return 0;
}

/* ---- the behaviour ------------------------------------------------------------- */

/* A copy id no other copy has: this process's node, start and serial. */
static uint64_t counter_copy_id(herd_proc_t *self)
{
    herd_pid_t pid = herd_self(self);
    uint64_t id = pid.node ^ (pid.incarnation * 0x9e3779b97f4a7c15ull) ^
                  (pid.serial * 0xbf58476d1ce4e5b9ull);
    return id ? id : 1;
}

static int counter_init(herd_proc_t *self, const void *arg, size_t len, void **state)
{
    (void)arg, (void)len;
    counter_state_t *c = counter_new(counter_copy_id(self));
    if (c == NULL)
        return HERD_ENOMEM;
    *state = c;
    return 0;
}

static int counter_call(herd_proc_t *self, void *state, const herd_msg_t *msg,
                        herd_from_t from)
{
    int64_t value;
    int rc = counter_apply(state, (const char *)msg->data, msg->len, &value);
    char text[32];
    int n = rc == 0 ? snprintf(text, sizeof(text), "%lld", (long long)value) : 0;
    herd_reply(herd_proc_node(self), from, rc, text, (size_t)n); /* a bad command: its error */
    return 0;
}

static void counter_terminate(herd_proc_t *self, void *state, int reason)
{
    (void)self, (void)reason;
    counter_free(state);
}

static int counter_out(herd_proc_t *self, void *state, uint8_t **out, size_t *len)
{
    (void)self;
    return counter_encode(state, out, len);
}

/* A moved copy counts from here on as a copy of its own: if the copy it came
 * from goes on counting too (a move that a split interrupted), a later merge
 * still counts both. */
static int counter_in(herd_proc_t *self, const uint8_t *data, size_t len, void **state)
{
    counter_state_t *c;
    int rc = counter_decode(data, len, &c);
    if (rc)
        return rc;
    c->self = counter_copy_id(self);
    *state = c;
    return 0;
}

static int counter_resolve(herd_proc_t *self, void *state, const uint8_t *other, size_t len)
{
    (void)self;
    int rc = counter_merge(state, other, len);
    return rc == HERD_EBADFRAME ? 0 : rc; /* a malformed loser's state is ignored */
}

const herd_behaviour_t counter_behaviour = {
    .name = "counter",
    .init = counter_init,
    .handle_call = counter_call,
    .terminate = counter_terminate,
    .handoff_out = counter_out,
    .handoff_in = counter_in,
    .resolve_conflict = counter_resolve,
};
