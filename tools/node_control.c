/*
 * node_control.c - a node's control socket with every command ringctl
 * sends (node_control.h): the cluster and registry views here, the
 * supervisor's commands in herdd_children.c, the fault injection and
 * hand-made names in herdd_debug.c.
 */
#include "herdd_memory.h"
#include "node_control.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control_events.h"
#include "control_list.h"
#include "herd_dsup.h"
#include "herd_registry.h"
#include "herdd_children.h"
#include "herdd_debug.h"
#include "herdd_groups.h"
#include "log.h"
#include "herd_ring.h"

/* The members as this node knows them, to name the nodes of pids. */
typedef struct member_names {
    herd_member_info_t *info;
    int count;
} member_names_t;

struct herd_control {
    herd_node_t *node;
    control_t *ctl;
    call_list_t calls;     /* the `call`s it waits for (herdd_children.c) */
    holder_list_t holders; /* the holders its `register` started (herdd_debug.c) */
    control_lists_t *lists; /* owned: `names` and `children` page by page */
    /* the members, loaded at most once per loop iteration for names_of */
    member_names_t members;
    uint64_t members_at;
    int members_loaded;
    herdd_memory_t *memory; /* owned: trims the heap (NULL: out of memory) */
    control_events_t *events; /* owned: the node's events for `events` (control_events.h) */
};

static void member_names_load(herd_control_t *d, member_names_t *m)
{
    int n = herd_cluster_members(d->node, NULL, 0);
    m->info = n > 0 ? calloc((size_t)n, sizeof(*m->info)) : NULL;
    m->count = m->info ? herd_cluster_members(d->node, m->info, (size_t)n) : 0;
    if (m->count > n)
        m->count = n;
}

/* The members for naming the nodes of pids in many items: loaded once per
 * millisecond of the node's clock (a page of a listing names every pid on
 * one member list; a node on a virtual clock has a loop that never runs, so
 * the loop's time would never move). */
static const member_names_t *members_now(herd_control_t *d)
{
    uint64_t now = herd_node_now(d->node);
    if (!d->members_loaded || d->members_at != now) {
        free(d->members.info);
        member_names_load(d, &d->members);
        d->members_at = now;
        d->members_loaded = 1;
    }
    return &d->members;
}

static void node_name_of(const member_names_t *m, uint64_t id, char *out, size_t cap)
{
    for (int i = 0; i < m->count; i++) {
        if (herd_node_id_of(m->info[i].name) == id) {
            snprintf(out, cap, "%.64s", m->info[i].name);
            return;
        }
    }
    snprintf(out, cap, "?%016llx", (unsigned long long)id);
}

/* ---- control commands -------------------------------------------------------- */

/* The services member `name` announced, as a JSON array of strings. */
static json_t *services_json(herd_control_t *d, const char *name)
{
    json_t *list = json_array();
    herd_service_list_t *l = malloc(sizeof(*l));
    if (l && herd_cluster_member_services(d->node, herd_node_id_of(name), l) == 0)
        for (uint32_t i = 0; i < l->count; i++)
            json_array_append_new(list, json_string(l->names[i]));
    free(l);
    return list;
}

static int cmd_members(void *data, json_t *args, json_t **result, char *msg, size_t cap)
{
    (void)args;
    herd_control_t *d = data;
    member_names_t mn;
    member_names_load(d, &mn);
    herd_member_info_t *info = mn.info;
    int n = mn.count;
    if (info == NULL)
        return snprintf(msg, cap, "not in a cluster"), HERD_ENOENT;
    json_t *list = json_array();
    char address[4 * sizeof(info[0].address)]; /* learnt from gossip: shown escaped */
    for (int i = 0; i < n; i++)
        json_array_append_new(
            list, json_pack("{s:s, s:s, s:I, s:s, s:I, s:I, s:o}", "name", info[i].name,
                            "address", herd_log_escape(info[i].address, address, sizeof(address)),
                            "incarnation",
                            (json_int_t)info[i].incarnation, "state",
                            herd_member_state_name(info[i].state), "weight",
                            (json_int_t)info[i].weight, "last_heard_ms",
                            (json_int_t)info[i].last_heard_ms, "services",
                            services_json(d, info[i].name)));
    free(info);
    *result = list;
    return 0;
}

/* The live ring's members and weights: ringctl builds the same ring from them. */
static int cmd_ring(void *data, json_t *args, json_t **result, char *msg, size_t cap)
{
    (void)args;
    herd_control_t *d = data;
    const herd_ring_t *r = herd_cluster_ring(d->node);
    if (r == NULL)
        return snprintf(msg, cap, "not in a cluster"), HERD_ENOENT;
    json_t *list = json_array();
    herd_ring_member_info_t m;
    for (size_t i = 0; herd_ring_member_at(r, i, &m) == 0; i++)
        json_array_append_new(list, json_pack("{s:s, s:I}", "name", m.name, "weight",
                                              (json_int_t)m.weight));
    *result = json_pack("{s:o}", "members", list);
    return 0;
}

/* What the runtime dropped: late replies, forwarded messages that failed. */
static json_t *runtime_stats_json(herd_node_t *n)
{
    herd_node_stats_t s;
    herd_node_stats(n, &s);
    return json_pack("{s:I, s:I, s:I}", "late_replies", (json_int_t)s.late_replies,
                     "forward_dropped", (json_int_t)s.forward_dropped,
                     "forward_failed_calls", (json_int_t)s.forward_failed_calls);
}

/* What the supervisor's moves did, failures included (absent without one). */
static json_t *handoff_stats_json(herd_node_t *n)
{
    herd_handoff_stats_t h;
    if (herd_handoff_stats(n, &h) != 0)
        return json_object();
    return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
                     "started",
                     (json_int_t)h.started, "committed", (json_int_t)h.committed, "aborted",
                     (json_int_t)h.aborted, "rejected", (json_int_t)h.rejected, "received",
                     (json_int_t)h.received, "promoted", (json_int_t)h.promoted, "forwarded",
                     (json_int_t)h.forwarded, "send_failed", (json_int_t)h.send_failed,
                     "too_big", (json_int_t)h.too_big, "rejected_parts",
                     (json_int_t)h.rejected_parts, "claimed", (json_int_t)h.claimed,
                     "in_flight", (json_int_t)h.in_flight, "malformed", (json_int_t)h.malformed,
                     "specs_relayed", (json_int_t)h.specs_relayed);
}

/* Replicated state (herd_repl_stats): what this node put to its children's
 * replicas and took from other owners, the copies it holds, what went
 * wrong; settled: a crash of any one node now loses no reply this node's
 * children sent (herd_repl_settled: a pass over them, as `children` makes).
 * Empty without a supervisor. */
static json_t *repl_stats_json(herd_node_t *n)
{
    herd_repl_stats_t r;
    if (herd_repl_stats(n, &r) != 0)
        return json_object();
    json_t *o = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "puts_out",
                          (json_int_t)r.puts_out, "puts_in", (json_int_t)r.puts_in, "acks_in",
                          (json_int_t)r.acks_in, "refused", (json_int_t)r.refused, "bytes_out",
                          (json_int_t)r.bytes_out, "bytes_in", (json_int_t)r.bytes_in,
                          "send_failed", (json_int_t)r.send_failed, "unreplicated",
                          (json_int_t)r.unreplicated, "too_big", (json_int_t)r.too_big,
                          "promoted", (json_int_t)r.promoted);
    json_object_update_new(
        o, json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:b}", "queries",
                     (json_int_t)r.queries, "query_timeouts", (json_int_t)r.query_timeouts,
                     "held", (json_int_t)r.held, "held_bytes", (json_int_t)r.held_bytes,
                     "collected", (json_int_t)r.collected, "handed_over",
                     (json_int_t)r.handed_over, "merged_in", (json_int_t)r.merged_in,
                     "others_dropped", (json_int_t)r.others_dropped, "reputs",
                     (json_int_t)r.reputs, "refusing", (json_int_t)r.refusing, "malformed",
                     (json_int_t)r.malformed, "settled", herd_repl_settled(n) != 0));
    json_object_update_new(
        o, json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "deltas_out",
                     (json_int_t)r.deltas_out, "delta_bytes_out", (json_int_t)r.delta_bytes_out,
                     "deltas_in", (json_int_t)r.deltas_in, "delta_gaps", (json_int_t)r.delta_gaps,
                     "no_room", (json_int_t)r.no_room, "members_full",
                     (json_int_t)r.members_full, "lagging", (json_int_t)r.lagging, "lag_ms",
                     (json_int_t)r.lag_ms));
    json_object_update_new(o, json_pack("{s:I, s:I, s:I}", "batches_out",
                                        (json_int_t)r.batches_out, "puts_waited",
                                        (json_int_t)r.puts_waited, "inflight_expired",
                                        (json_int_t)r.inflight_expired));
    return o;
}

/* The registry's sync traffic and causal context, the same keys in `stats`
 * (registry.*) and `crdt`. */
static json_t *registry_sync_json(const herd_registry_stats_t *r)
{
    return json_pack(
        "{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:s}", "bytes_out",
        (json_int_t)r->bytes_out, "bytes_in", (json_int_t)r->bytes_in, "send_failed",
        (json_int_t)r->send_failed, "repairs", (json_int_t)r->repairs, "pieces_split",
        (json_int_t)r->pieces_split, "context_trimmed", (json_int_t)r->context_trimmed,
        "contexts_joined", (json_int_t)r->contexts_joined, "cc_replicas",
        (json_int_t)r->cc_replicas, "cc_cloud_dots", (json_int_t)r->cc_cloud_dots,
        "cc_cloud_max", (json_int_t)r->cc_cloud_max, "syncs_under_way",
        (json_int_t)r->syncs_under_way, "longest_us", (json_int_t)r->longest_us,
        "longest_what", r->longest_what ? r->longest_what : "");
}

/* The registry's repairs (entries claimed or put back, merges sent on), its
 * sync traffic and the size of its causal context. */
static json_t *registry_stats_json(herd_node_t *n)
{
    herd_registry_stats_t r;
    if (herd_registry_stats(n, &r) != 0)
        return json_object();
    json_t *o = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}", "conflicts_resolved",
                          (json_int_t)r.conflicts_resolved, "reregistered",
                          (json_int_t)r.reregistered, "claimed", (json_int_t)r.claimed,
                          "merges_redirected", (json_int_t)r.merges_redirected,
                          "merges_abandoned", (json_int_t)r.merges_abandoned,
                          "merges_stale", (json_int_t)r.merges_stale);
    json_object_update_new(o, registry_sync_json(&r));
    return o;
}

/* The cluster port's guard (herd_cluster_conn_stats): inbound connections
 * kept, the limits, what was shut as over them (absent when unguarded). */
static json_t *conn_stats_json(herd_node_t *n)
{
    herd_conn_stats_t s;
    if (herd_cluster_conn_stats(n, &s) != 0)
        return json_object();
    return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "inbound",
                     (json_int_t)s.inbound, "limit_per_addr", (json_int_t)s.limit_per_addr,
                     "limit_total", (json_int_t)s.limit_total, "fds_open",
                     (json_int_t)s.fds_open, "fd_limit", (json_int_t)s.fd_limit,
                     "shed_per_addr", (json_int_t)s.shed_per_addr, "shed_total",
                     (json_int_t)s.shed_total, "shed_missed", (json_int_t)s.shed_missed,
                     "checks", (json_int_t)s.checks, "scans", (json_int_t)s.scans);
}

/* What lost members and late copies did to calls and requests between
 * nodes (runtime/PROTOCOL.md, "Calls and lost members"). */
static json_t *calls_stats_json(const herd_cluster_stats_t *s)
{
    return json_pack("{s:I, s:I, s:I, s:I, s:I}", "withdrawn", (json_int_t)s->withdrawn,
                     "not_applied", (json_int_t)s->calls_not_applied, "uncertain",
                     (json_int_t)s->calls_uncertain, "expired", (json_int_t)s->calls_expired,
                     "duplicate", (json_int_t)s->calls_duplicate);
}

static int cmd_stats(void *data, json_t *args, json_t **result, char *msg, size_t cap)
{
    (void)args;
    herd_control_t *d = data;
    herd_cluster_stats_t s;
    int rc = herd_cluster_stats(d->node, &s);
    if (rc)
        return snprintf(msg, cap, "not in a cluster"), rc;
    json_t *rejected = json_object();
    for (int i = 1; herd_cluster_reject_name(i); i++)
        json_object_set_new(rejected, herd_cluster_reject_name(i),
                            json_integer((json_int_t)s.rejected[i]));
    int members = herd_cluster_members(d->node, NULL, 0);
    *result = json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:i, s:I, s:o, s:I, s:I, s:i,"
                        " s:I, s:o}",
                        "name", herd_node_name(d->node),
                        "frames_in", (json_int_t)s.frames_in, "frames_out",
                        (json_int_t)s.frames_out, "bytes_in", (json_int_t)s.bytes_in,
                        "bytes_out", (json_int_t)s.bytes_out, "dropped_out",
                        (json_int_t)s.dropped_out, "peers", (json_int_t)s.peers, "members",
                        members, "processes",
                        (json_int_t)herd_node_process_count(d->node), "rejected", rejected,
                        "blocked_in", (json_int_t)s.blocked_in, "blocked_out",
                        (json_int_t)s.blocked_out, "blocked_peers", (int)s.blocked_peers,
                        "messages_dropped", (json_int_t)s.msgs_dropped, "runtime",
                        runtime_stats_json(d->node));
    json_object_set_new(*result, "replies_relayed", json_integer((json_int_t)s.replies_relayed));
    json_object_set_new(*result, "calls", calls_stats_json(&s));
    json_object_set_new(*result, "oversize_out", json_integer((json_int_t)s.oversize_out));
    json_object_set_new(*result, "seeds_silent", json_integer((json_int_t)s.seeds_silent));
    json_object_set_new(*result, "multicasts_out", json_integer((json_int_t)s.multicasts_out));
    json_object_set_new(*result, "multicasts_in", json_integer((json_int_t)s.multicasts_in));
    json_object_set_new(*result, "prompt_beats", json_integer((json_int_t)s.prompt_beats));
    json_object_set_new(*result, "prompt_beats_deferred",
                        json_integer((json_int_t)s.prompt_beats_deferred));
    json_object_set_new(*result, "membership_effects_lost",
                        json_integer((json_int_t)s.membership_effects_lost));
    json_object_set_new(*result, "handoff", handoff_stats_json(d->node));
    json_object_set_new(*result, "registry", registry_stats_json(d->node));
    json_object_set_new(*result, "replication", repl_stats_json(d->node));
    json_object_set_new(*result, "memory", herdd_memory_json(d->memory));
    json_object_set_new(*result, "connections", conn_stats_json(d->node));
    return 0;
}

static json_t *name_json(const member_names_t *mn, const char *name, herd_pid_t pid,
                         const herd_meta_t *meta)
{
    char node[80], pidtext[160];
    node_name_of(mn, pid.node, node, sizeof(node));
    snprintf(pidtext, sizeof(pidtext), "%s/%llu/%llu", node,
             (unsigned long long)pid.incarnation, (unsigned long long)pid.serial);
    json_t *m = json_object();
    for (uint8_t i = 0; meta && i < meta->count; i++)
        json_object_set_new(m, meta->kv[i].key, json_string(meta->kv[i].value));
    return json_pack("{s:s, s:s, s:s, s:o}", "name", name, "node", node, "pid", pidtext, "meta",
                     m);
}

static int cmd_whereis(void *data, json_t *args, json_t **result, char *msg, size_t cap)
{
    herd_control_t *d = data;
    const char *name = json_string_value(json_object_get(args, "name"));
    if (name == NULL)
        return snprintf(msg, cap, "whereis needs a name"), HERD_EINVAL;
    herd_pid_t pid;
    herd_meta_t meta;
    int rc = herd_whereis(d->node, name, &pid, &meta);
    if (rc == HERD_ENOENT)
        return snprintf(msg, cap, "no process is registered as '%.200s'", name), rc;
    if (rc)
        return snprintf(msg, cap, "%s", herd_strerror(rc)), rc;
    member_names_t mn;
    member_names_load(d, &mn);
    *result = name_json(&mn, name, pid, &meta);
    free(mn.info);
    json_object_set_new(*result, "replica_nodes", herdd_replica_nodes_json(d, name));
    return 0;
}

typedef struct names_list {
    herd_control_t *d;
    const char *prefix; /* NULL: any */
    size_t plen;
    const herd_meta_t *where; /* NULL: any metadata */
} names_list_t;

typedef struct names_fill {
    const names_list_t *l;
    control_snap_t *snap;
    int rc;
} names_fill_t;

static int add_name(void *data, const char *name, herd_pid_t pid, const herd_meta_t *meta)
{
    (void)pid;
    (void)meta;
    names_fill_t *f = data;
    if (f->l->where && f->l->prefix && strncmp(name, f->l->prefix, f->l->plen) != 0)
        return 0; /* a selection by metadata: the prefix checked here */
    f->rc = control_snap_add(f->snap, name, 0);
    return f->rc != 0;
}

static int names_fill(void *data, control_snap_t *s)
{
    names_list_t *l = data;
    names_fill_t f = {l, s, 0};
    int rc = l->where ? herd_registry_select(l->d->node, l->where, add_name, &f)
                      : herd_registry_list(l->d->node, l->prefix, add_name, &f);
    return rc < 0 ? rc : f.rc;
}

static json_t *names_item(void *data, const char *name, int tag)
{
    (void)tag;
    names_list_t *l = data;
    herd_pid_t pid;
    herd_meta_t meta;
    if (herd_whereis(l->d->node, name, &pid, &meta) != 0)
        return NULL; /* gone since the snapshot */
    if (!herd_meta_holds(&meta, l->where))
        return NULL; /* its metadata changed since */
    return name_json(members_now(l->d), name, pid, &meta);
}

static const control_list_ops_t names_ops = {names_fill, NULL, names_item};

/* args.where (absent or null: none), an object of strings, into *where. */
static int where_from_json(json_t *obj, herd_meta_t *where, char *msg, size_t cap)
{
    memset(where, 0, sizeof(*where));
    if (obj == NULL || json_is_null(obj))
        return 0;
    if (!json_is_object(obj))
        return snprintf(msg, cap, "where must be an object of strings"), HERD_EINVAL;
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        if (!json_is_string(v))
            return snprintf(msg, cap, "where '%.40s' is not a string", key), HERD_EINVAL;
        if (herd_meta_set(where, key, json_string_value(v)) != 0)
            return snprintf(msg, cap,
                            "where holds at most %u keys of 1-%u bytes with values of at "
                            "most %u bytes",
                            HERD_META_MAX, HERD_META_KEY_MAX, HERD_META_VALUE_MAX),
                   HERD_EINVAL;
    }
    return 0;
}

/* The names (starting with args.prefix, their metadata holding every pair
 * of args.where), sorted, page by page (control_list.h). Every page's
 * request carries the same arguments. */
static int cmd_names(void *data, json_t *args, json_t **result, char *msg, size_t cap)
{
    json_t *jprefix = json_object_get(args, "prefix");
    if (jprefix && !json_is_null(jprefix) && !json_is_string(jprefix))
        return snprintf(msg, cap, "prefix must be a string"), HERD_EINVAL;
    herd_meta_t where;
    int rc = where_from_json(json_object_get(args, "where"), &where, msg, cap);
    if (rc)
        return rc;
    const char *prefix = json_string_value(jprefix);
    names_list_t l = {data, prefix && prefix[0] ? prefix : NULL, prefix ? strlen(prefix) : 0,
                      where.count ? &where : NULL};
    return herdd_list_serve(data, args, &names_ops, &l, result, msg, cap);
}

/* Per peer: the registry's exchanges and the stream under them. */
static int cmd_crdt(void *data, json_t *args, json_t **result, char *msg, size_t cap)
{
    (void)args;
    herd_control_t *d = data;
    herd_registry_stats_t rs;
    int rc = herd_registry_stats(d->node, &rs);
    if (rc)
        return snprintf(msg, cap, "no registry"), rc;
    member_names_t mn;
    member_names_load(d, &mn);
    json_t *peers = json_array();
    uint64_t now = herd_node_wall_ms(d->node), self = herd_node_id_of(herd_node_name(d->node));
    for (int i = 0; i < mn.count; i++) {
        uint64_t id = herd_node_id_of(mn.info[i].name);
        if (id == self)
            continue;
        herd_registry_peer_t p = {0};
        herd_stream_stats_t st = {0};
        herd_registry_peer_stats(d->node, id, &p);
        herd_cluster_stream_stats(d->node, id, &st);
        json_t *o = json_pack(
            "{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "node", mn.info[i].name,
            "acked_seq", (json_int_t)st.acked_seq, "sent_seq", (json_int_t)st.sent_seq,
            "pending", (json_int_t)st.pending, "pending_bytes",
            (json_int_t)st.pending_bytes, "deltas_out", (json_int_t)p.deltas_out,
            "deltas_in", (json_int_t)p.deltas_in, "digest_syncs",
            (json_int_t)p.digest_syncs, "last_sync_ms_ago",
            p.last_sync_ms ? (json_int_t)(now - p.last_sync_ms) : (json_int_t)-1);
        json_object_update_new(o, json_pack("{s:I, s:I, s:I}", "bytes_out",
                                            (json_int_t)p.bytes_out, "bytes_in",
                                            (json_int_t)p.bytes_in, "send_failed",
                                            (json_int_t)p.send_failed));
        json_array_append_new(peers, o);
    }
    free(mn.info);
    *result = json_pack("{s:I, s:I, s:I, s:I, s:I, s:o}", "names", (json_int_t)rs.names,
                        "entries", (json_int_t)rs.entries, "conflicts_resolved",
                        (json_int_t)rs.conflicts_resolved, "reregistered",
                        (json_int_t)rs.reregistered, "rejected", (json_int_t)rs.rejected,
                        "peers", peers);
    json_object_update_new(*result, registry_sync_json(&rs));
    return 0;
}

/* The commands' way to the node and the socket (herdd_debug.h,
 * herdd_children.h): their `data` is the herd_control_t. */
herd_node_t *herdd_node(void *data)
{
    return ((herd_control_t *)data)->node;
}

control_t *herdd_control(void *data)
{
    return ((herd_control_t *)data)->ctl;
}

json_t *herdd_name_json(void *data, const char *name, herd_pid_t pid, const herd_meta_t *meta)
{
    return name_json(members_now(data), name, pid, meta);
}

void herdd_member_name(void *data, uint64_t id, char *out, size_t cap)
{
    node_name_of(members_now(data), id, out, cap);
}

int herdd_list_serve(void *data, json_t *args, const control_list_ops_t *ops, void *opsdata,
                     json_t **result, char *msg, size_t cap)
{
    herd_control_t *d = data;
    return control_list_serve(d->lists, herd_node_now(d->node), args, ops, opsdata, result,
                              msg, cap);
}

static const control_command_t commands[] = {
    {"start", herdd_cmd_start},       /* herdd_children.h */
    {"call", herdd_cmd_call},         /* herdd_children.h */
    {"stop", herdd_cmd_stop},         /* herdd_children.h */
    {"children", herdd_cmd_children}, /* herdd_children.h */
    {"handoffs", herdd_cmd_handoffs}, /* herdd_children.h */
    {"drain", herdd_cmd_drain},       /* herdd_children.h */
    {"block", herdd_cmd_block},           /* herdd_debug.h */
    {"unblock", herdd_cmd_unblock},       /* herdd_debug.h */
    {"register", herdd_cmd_register},     /* herdd_debug.h */
    {"unregister", herdd_cmd_unregister}, /* herdd_debug.h */
    {"events", herdd_cmd_events},         /* control_events.h */
    {"groups", herdd_cmd_groups},               /* herdd_groups.h */
    {"group_members", herdd_cmd_group_members}, /* herdd_groups.h */
    {"publish", herdd_cmd_publish},             /* herdd_groups.h */
    {"join", herdd_cmd_join},                   /* herdd_groups.h */
    {"leave", herdd_cmd_leave},                 /* herdd_groups.h */
    {"crdt", cmd_crdt},
    {"whereis", cmd_whereis},
    {"names", cmd_names},
    {"members", cmd_members},
    {"ring", cmd_ring},
    {"stats", cmd_stats},
};

call_list_t *herdd_calls(void *data)
{
    return &((herd_control_t *)data)->calls;
}

holder_list_t *herdd_holders(void *data)
{
    return &((herd_control_t *)data)->holders;
}

control_events_t *herdd_events(void *data)
{
    return ((herd_control_t *)data)->events;
}

int herd_control_default_address(const char *cluster, const char *node, char *out, size_t cap)
{
    cluster = cluster ? cluster : "herd";
    if (node == NULL || !node[0] || strchr(node, '/') || strchr(cluster, '/') || out == NULL)
        return HERD_EINVAL;
    int n = snprintf(NULL, 0, "ipc:///tmp/herd-%s-%s.ctl", cluster, node);
    if (n < 0 || (size_t)n >= cap)
        return HERD_ERANGE;
    snprintf(out, cap, "ipc:///tmp/herd-%s-%s.ctl", cluster, node);
    return 0;
}

int herd_control_start(herd_node_t *node, const char *address, herd_control_t **out)
{
    herd_control_t *d = calloc(1, sizeof(*d));
    if (d == NULL)
        return HERD_ENOMEM;
    d->node = node;
    d->lists = control_lists_new();
    int rc = d->lists ? 0 : HERD_ENOMEM;
    if (rc == 0)
        rc = control_start(herd_node_loop(node), address, commands,
                           sizeof(commands) / sizeof(commands[0]), d, &d->ctl);
    if (rc == 0 && (rc = control_events_start(d, &d->events)) != 0)
        control_stop(d->ctl);
    if (rc) {
        control_lists_free(d->lists);
        free(d);
        return rc;
    }
    d->memory = herdd_memory_start(herd_node_loop(node));
    *out = d;
    return 0;
}

control_t *node_control_socket(herd_control_t *d)
{
    return d->ctl;
}

control_events_t *node_control_events(herd_control_t *d)
{
    return d->events;
}

void herd_control_stop(herd_control_t *d)
{
    if (d == NULL)
        return;
    herdd_calls_orphan(&d->calls);
    herdd_holders_orphan(&d->holders);
    herdd_memory_stop(d->memory);
    control_events_stop(d->events); /* its waiting requests answered, before the socket goes */
    d->events = NULL;
    control_stop(d->ctl);
    d->ctl = NULL;
    control_lists_free(d->lists);
    free(d->members.info);
    free(d);
}
