/*
 * registry_value.c - a registration as the map holds it: metadata, the value
 * codec, and the order of entries every node picks a name's winner by.
 *
 * A registration value (wire.h encoding): u8 form, then for form 1 (full)
 * u64 pid node, u64 pid incarnation, and for both u64 pid serial, u64 hlc
 * (first registered), u8 gen (moves since), [u64 written], u8 n,
 * n x (str key, str value). Form 2 (compact) leaves out the pid's node and
 * incarnation: they are those of the entry's replica (the node start that
 * wrote it, registering its own process), so most registrations cost 16
 * bytes less. The form byte's bit 0x80 (VALUE_WRITTEN) says `written` is
 * there: the time a later write of the registration (a metadata update, a
 * move) was made; without it the entry was written at `hlc`, its first
 * registration, which most entries are and which costs nothing.
 *
 * The order (reg_value_wins) is total, so every node holding the same
 * entries picks the same winner, whatever the order of its lists:
 *   1. the earlier first-registration time (hlc) wins a conflict;
 *   2. of one registration and copies moved from it, the higher gen (plain
 *      unsigned: transitive; it wraps after 255 moves, as the handoff's
 *      count does, and a copy moved then loses to one it replaced);
 *   3. the lower pid (node, incarnation, serial);
 *   4. entries of one pid are one registration: the newest write wins
 *      (written), so concurrent metadata updates settle on the last;
 *   5. then the dot: the lower writer replica (node, incarnation), and of
 *      one writer the later counter.
 * The node of a pid removes its entries that lose to another of the same
 * pid (registry_conflict.c), so one entry a registration stays.
 */
#include <string.h>

#include "herd_registry.h"
#include "registry_int.h"

#define VALUE_WRITTEN 0x80
#define VALUE_FORM(b) ((b) & 0x0f)
#define COMPACT_FIXED 18 /* u8 form, u64 serial, u64 hlc, u8 gen */
#define FULL_FIXED 34    /* and u64 node, u64 incarnation */

int herd_meta_set(herd_meta_t *m, const char *key, const char *value)
{
    if (strlen(key) > HERD_META_KEY_MAX || strlen(value) > HERD_META_VALUE_MAX || !key[0])
        return HERD_ERANGE;
    for (uint8_t i = 0; i < m->count; i++) {
        if (strcmp(m->kv[i].key, key) == 0) {
            strcpy(m->kv[i].value, value);
            return 0;
        }
    }
    if (m->count == HERD_META_MAX)
        return HERD_ERANGE;
    strcpy(m->kv[m->count].key, key);
    strcpy(m->kv[m->count].value, value);
    m->count++;
    return 0;
}

const char *herd_meta_get(const herd_meta_t *m, const char *key)
{
    for (uint8_t i = 0; i < m->count; i++)
        if (strcmp(m->kv[i].key, key) == 0)
            return m->kv[i].value;
    return NULL;
}

/* A registration written by the node start of its own process is compact
 * (its pid's node and incarnation are the entry's replica's); another's pid
 * is written whole. */
uint8_t *reg_value_encode_by(awmap_replica_id_t writer, const reg_value_t *v,
                             const herd_meta_t *meta, size_t *len)
{
    wire_writer_t w;
    wire_writer_init(&w);
    int compact = v->pid.node == writer.node && v->pid.incarnation == writer.incarnation;
    int written = v->written && v->written != v->hlc;
    wire_put_u8(&w, (uint8_t)((compact ? VALUE_COMPACT : VALUE_FULL) |
                              (written ? VALUE_WRITTEN : 0)));
    if (!compact) {
        wire_put_u64(&w, v->pid.node);
        wire_put_u64(&w, v->pid.incarnation);
    }
    wire_put_u64(&w, v->pid.serial);
    wire_put_u64(&w, v->hlc);
    wire_put_u8(&w, v->gen);
    if (written)
        wire_put_u64(&w, v->written);
    wire_put_u8(&w, meta ? meta->count : 0);
    for (uint8_t i = 0; meta && i < meta->count; i++) {
        wire_put_str(&w, meta->kv[i].key);
        wire_put_str(&w, meta->kv[i].value);
    }
    return wire_writer_take(&w, len);
}

uint8_t *reg_value_encode(const registry_t *g, const reg_value_t *v, const herd_meta_t *meta,
                          size_t *len)
{
    awmap_replica_id_t self = {g->self_node, g->self_inc};
    return reg_value_encode_by(self, v, meta, len);
}

static void meta_decode(const uint8_t *p, size_t len, herd_meta_t *meta, reg_value_t *v)
{
    wire_reader_t r;
    wire_reader_init(&r, p, len);
    memset(meta, 0, sizeof(*meta));
    uint8_t n = wire_get_u8(&r);
    for (uint8_t i = 0; i < n && i < HERD_META_MAX && !r.err; i++) {
        wire_get_str(&r, meta->kv[i].key, sizeof(meta->kv[i].key));
        wire_get_str(&r, meta->kv[i].value, sizeof(meta->kv[i].value));
        meta->count = (uint8_t)(i + 1);
    }
    if (r.err)
        v->pid = HERD_PID_NONE;
}

/* Decode a value; `meta` may be NULL. Malformed values read as pid NONE. The
 * pid and time sit at fixed offsets (lookups read only those). A compact
 * value's pid is of the node start that wrote it: the entry's replica. */
reg_value_t reg_value_decode(const awmap_t *m, const awmap_entry_t *e, herd_meta_t *meta)
{
    reg_value_t v = {HERD_PID_NONE, 0, 0, 0};
    uint8_t form = e->len ? VALUE_FORM(e->value[0]) : 0;
    size_t fixed = form == VALUE_COMPACT ? COMPACT_FIXED : FULL_FIXED;
    size_t skip = fixed + (e->len && (e->value[0] & VALUE_WRITTEN) ? 8 : 0);
    if ((form != VALUE_COMPACT && form != VALUE_FULL) || e->len < skip + 1)
        return v;
    const uint8_t *p = e->value + 1;
    if (form == VALUE_COMPACT) {
        awmap_replica_id_t id = awmap_replica_id(m, e->dot.replica);
        v.pid = (herd_pid_t){id.node, id.incarnation, reg_le64(p)};
    } else {
        v.pid = (herd_pid_t){reg_le64(p), reg_le64(p + 8), reg_le64(p + 16)};
        p += 16;
    }
    v.hlc = reg_le64(p + 8);
    v.gen = p[16];
    v.written = skip > fixed ? reg_le64(p + 17) : v.hlc;
    if (meta)
        meta_decode(e->value + skip, e->len - skip, meta, &v);
    return v;
}

static int pid_before(herd_pid_t a, herd_pid_t b)
{
    if (a.node != b.node)
        return a.node < b.node;
    if (a.incarnation != b.incarnation)
        return a.incarnation < b.incarnation;
    return a.serial < b.serial;
}

/* The lower writer replica, and of one writer the later write. */
static int dot_before(const awmap_t *m, awmap_dot_t a, awmap_dot_t b)
{
    if (a.replica != b.replica) {
        awmap_replica_id_t ia = awmap_replica_id(m, a.replica);
        awmap_replica_id_t ib = awmap_replica_id(m, b.replica);
        if (ia.node != ib.node)
            return ia.node < ib.node;
        return ia.incarnation < ib.incarnation;
    }
    return a.counter > b.counter;
}

int reg_value_wins(const awmap_t *m, const reg_value_t *a, const awmap_entry_t *ea,
                   const reg_value_t *b, const awmap_entry_t *eb)
{
    if (a->hlc != b->hlc)
        return a->hlc < b->hlc;
    if (a->gen != b->gen)
        return a->gen > b->gen;
    if (!herd_pid_equal(a->pid, b->pid))
        return pid_before(a->pid, b->pid);
    if (a->written != b->written)
        return a->written > b->written;
    return dot_before(m, ea->dot, eb->dot);
}
