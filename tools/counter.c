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
    c->slots[c->count] = (counter_slot_t){copy, 0, 0, 1};
    return &c->slots[c->count++];
}

/* Sums over copies need more than 64 bits: each count may reach 2^63 - 1 and
 * a state holds up to COUNTER_MAX_COPIES of them. */
__extension__ typedef __int128 counter_wide_t;

#define COUNTER_MAX_COUNT (UINT64_MAX / 2) /* a slot's count; decoding refuses more */

static counter_wide_t counter_wide_value(const counter_state_t *c)
{
    counter_wide_t v = 0;
    for (size_t i = 0; i < c->count; i++)
        v += (counter_wide_t)c->slots[i].incr - (counter_wide_t)c->slots[i].decr;
    return v;
}

int64_t counter_value(const counter_state_t *c)
{
    counter_wide_t v = counter_wide_value(c);
    return v > INT64_MAX ? INT64_MAX : v < INT64_MIN ? INT64_MIN : (int64_t)v;
}

/* A copy id for this copy's next slot: the one it counts in is full. Mixed
 * from the old id (splitmix64), so it is as unlikely to meet another copy's
 * id as a fresh one, and checked against the ids the state holds. */
static uint64_t counter_next_id(const counter_state_t *c, uint64_t id)
{
    for (;;) {
        uint64_t z = (id += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        z ^= z >> 31;
        size_t i = 0;
        while (i < c->count && c->slots[i].copy != z)
            i++;
        if (z != 0 && i == c->count)
            return z;
    }
}

/* Add `amount` to this copy's increments (up) or decrements: what the own
 * slot has room for goes there, the rest into new slots of this copy, each
 * with a fresh id (a count never passes COUNTER_MAX_COUNT, so every state
 * stays one that decoding accepts, on this version and older ones). Checks
 * everything first: on error nothing changed. */
static int counter_add(counter_state_t *c, int up, counter_wide_t amount)
{
    counter_slot_t *own = counter_slot(c, c->self);
    if (own == NULL)
        return HERD_ENOMEM;
    uint64_t room = COUNTER_MAX_COUNT - (up ? own->incr : own->decr);
    counter_wide_t rest = amount > room ? amount - room : 0;
    size_t fresh = (size_t)((rest + COUNTER_MAX_COUNT - 1) / COUNTER_MAX_COUNT);
    if (fresh > COUNTER_MAX_COPIES - c->count)
        return HERD_ERANGE;
    if (c->count + fresh > c->cap) {
        counter_slot_t *s = realloc(c->slots, (c->count + fresh) * sizeof(*s));
        if (s == NULL)
            return HERD_ENOMEM;
        c->slots = s;
        c->cap = c->count + fresh;
    }
    own = counter_slot(c, c->self);
    uint64_t here = amount > room ? room : (uint64_t)amount;
    *(up ? &own->incr : &own->decr) += here;
    own->changed = 1;
    while (rest > 0) {
        uint64_t part = rest > COUNTER_MAX_COUNT ? COUNTER_MAX_COUNT : (uint64_t)rest;
        c->self = counter_next_id(c, c->self);
        c->slots[c->count++] = (counter_slot_t){c->self, up ? part : 0, up ? 0 : part, 1};
        rest -= part;
    }
    return 0;
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
    counter_wide_t now = counter_wide_value(c), to = now;
    if (is_reset)
        to = 0;
    else if (is_incr)
        to = now + step;
    else if (is_decr)
        to = now - step;
    /* refused before anything changes: the value stays an int64_t (a merge of
     * copies that diverged may have left it outside; reset brings it back) */
    if (to != now && (to > INT64_MAX || to < INT64_MIN))
        return HERD_ERANGE;
    int rc = to == now ? 0 : counter_add(c, to > now, to > now ? to - now : now - to);
    if (rc)
        return rc;
    *value = counter_value(c);
    return 0;
}

/* Encode c with its slots that changed (changed_only) or all. */
static int counter_write(const counter_state_t *c, int changed_only, uint8_t **out, size_t *len)
{
    uint32_t n = 0;
    for (size_t i = 0; i < c->count; i++)
        n += !changed_only || c->slots[i].changed;
    wire_writer_t w;
    wire_writer_init(&w);
    wire_put_u64(&w, c->self);
    wire_put_u32(&w, n);
    for (size_t i = 0; i < c->count; i++) {
        if (changed_only && !c->slots[i].changed)
            continue;
        wire_put_u64(&w, c->slots[i].copy);
        wire_put_u64(&w, c->slots[i].incr);
        wire_put_u64(&w, c->slots[i].decr);
    }
    *out = wire_writer_take(&w, len);
    return *out ? 0 : HERD_ENOMEM;
}

int counter_encode(const counter_state_t *c, uint8_t **out, size_t *len)
{
    return counter_write(c, 0, out, len);
}

int counter_delta(counter_state_t *c, uint8_t **out, size_t *len)
{
    int rc = counter_write(c, 1, out, len);
    for (size_t i = 0; rc == 0 && i < c->count; i++)
        c->slots[i].changed = 0;
    return rc;
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
        counter_slot_t s = {0};
        s.copy = wire_get_u64(&r); /* in order: an initializer's are not sequenced */
        s.incr = wire_get_u64(&r);
        s.decr = wire_get_u64(&r);
        if (s.incr > COUNTER_MAX_COUNT || s.decr > COUNTER_MAX_COUNT)
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
        own->incr = s->incr, own->changed = 1;
    if (s->decr > own->decr)
        own->decr = s->decr, own->changed = 1;
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

static uint64_t le64_at(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static void le64_put(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* The slot count of an encoded state (what counter_read takes), or
 * HERD_EBADFRAME. */
static int counter_slots_of(const uint8_t *data, size_t len, uint32_t *n)
{
    if (len < 12)
        return HERD_EBADFRAME;
    *n = (uint32_t)(data[8] | data[9] << 8 | data[10] << 16 | (uint32_t)data[11] << 24);
    if (*n > COUNTER_MAX_COPIES || (size_t)*n * 24 != len - 12)
        return HERD_EBADFRAME;
    for (uint32_t i = 0; i < *n; i++) {
        const uint8_t *s = data + 12 + 24 * (size_t)i;
        if (le64_at(s + 8) > COUNTER_MAX_COUNT || le64_at(s + 16) > COUNTER_MAX_COUNT)
            return HERD_EBADFRAME;
    }
    return 0;
}

/* A replica applies a change per put: on the bytes, with no state built. */
int counter_delta_apply(const uint8_t *state, size_t len, const uint8_t *delta,
                        size_t delta_len, uint8_t **out, size_t *out_len)
{
    uint32_t n, dn;
    if (counter_slots_of(state, len, &n) != 0 || counter_slots_of(delta, delta_len, &dn) != 0)
        return HERD_EBADFRAME;
    uint8_t *o = malloc(len + 24 * (size_t)dn);
    if (o == NULL)
        return HERD_ENOMEM;
    memcpy(o, state, len);
    uint32_t count = n;
    for (uint32_t j = 0; j < dn; j++) {
        const uint8_t *d = delta + 12 + 24 * (size_t)j;
        uint64_t copy = le64_at(d);
        uint32_t i = 0;
        while (i < count && le64_at(o + 12 + 24 * (size_t)i) != copy)
            i++;
        uint8_t *s = o + 12 + 24 * (size_t)i;
        if (i == count) { /* a slot new to the state */
            if (count == COUNTER_MAX_COPIES) {
                free(o);
                return HERD_ERANGE;
            }
            memcpy(s, d, 24);
            count++;
            continue;
        }
        for (int k = 8; k <= 16; k += 8) /* counts only grow: the larger */
            if (le64_at(d + k) > le64_at(s + k))
                le64_put(s + k, le64_at(d + k));
    }
    memcpy(o, delta, 8); /* self: the change's */
    o[8] = (uint8_t)count, o[9] = (uint8_t)(count >> 8), o[10] = (uint8_t)(count >> 16);
    o[11] = (uint8_t)(count >> 24);
    *out = o;
    *out_len = 12 + 24 * (size_t)count;
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
    char text[160];
    int n = 0;
    if (rc == 0)
        n = snprintf(text, sizeof(text), "%lld", (long long)value);
    else if (rc == HERD_ERANGE) /* the error, and why in the reply's text */
        n = snprintf(text, sizeof(text),
                     "the counter's value must stay within %lld..%lld; it is %lld and "
                     "was left unchanged",
                     (long long)INT64_MIN, (long long)INT64_MAX,
                     (long long)counter_value(state));
    else if (rc == HERD_EINVAL)
        n = snprintf(text, sizeof(text),
                     "want incr [N] | decr [N] | get | reset, N a whole number 1..%llu",
                     (unsigned long long)COUNTER_MAX_STEP);
    herd_node_t *node = herd_proc_node(self);
    if (rc == HERD_EINVAL || rc == HERD_ERANGE) /* the caller's command: the counter's own no */
        herd_reply_error(node, from, rc == HERD_EINVAL ? COUNTER_EBADCMD : COUNTER_ERANGE, text,
                         (size_t)n);
    else
        herd_reply(node, from, rc, text, (size_t)n);
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

static int counter_delta_out(herd_proc_t *self, void *state, uint8_t **out, size_t *len)
{
    (void)self;
    return counter_delta(state, out, len);
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
    .delta_out = counter_delta_out,
    .delta_apply = counter_delta_apply,
};
