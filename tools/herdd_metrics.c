/*
 * herdd_metrics.c - a node's figures as Prometheus text (herdd_metrics.h):
 * the loop's lag sampler, the snapshot read on the loop thread, and the
 * text made from a snapshot.
 *
 * Names follow Prometheus' conventions: herd_ and the thing, _total on
 * counters, base units (seconds, bytes), a label for what a family splits
 * by (reason, state, direction); every family has its HELP and TYPE lines
 * once, before its samples. Histograms are cumulative with le="+Inf",
 * _sum and _count.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "herd_version.h"
#include "herdd_metrics.h"

/* ---- the loop's lag ------------------------------------------------------------ */

static const uint64_t lag_bounds_us[HERDD_LAG_BOUNDS] = {1000,   5000,   10000,  50000,
                                                         100000, 500000, 1000000, 5000000};

uint64_t herdd_lag_bound_us(unsigned i)
{
    return i < HERDD_LAG_BOUNDS ? lag_bounds_us[i] : 0;
}

void herdd_lag_record(herdd_lag_figures_t *f, uint64_t lag_us)
{
    unsigned i = 0;
    while (i < HERDD_LAG_BOUNDS && lag_us > lag_bounds_us[i])
        i++;
    f->buckets[i]++;
    f->count++;
    f->sum_us += lag_us;
    f->last_us = lag_us;
}

static void on_lag_tick(uv_timer_t *t)
{
    herdd_lag_t *l = t->data;
    uint64_t now = uv_hrtime();
    herdd_lag_record(&l->fig, now > l->due_ns ? (now - l->due_ns) / 1000 : 0);
    l->due_ns = now + HERDD_LAG_EVERY_MS * 1000000ull;
    uv_timer_start(&l->timer, on_lag_tick, HERDD_LAG_EVERY_MS, 0);
}

void herdd_lag_start(herdd_lag_t *l, uv_loop_t *loop)
{
    memset(l, 0, sizeof(*l));
    uv_timer_init(loop, &l->timer);
    l->timer.data = l;
    l->due_ns = uv_hrtime() + HERDD_LAG_EVERY_MS * 1000000ull;
    uv_timer_start(&l->timer, on_lag_tick, HERDD_LAG_EVERY_MS, 0);
}

static void on_lag_closed(uv_handle_t *h)
{
    ((herdd_lag_t *)h->data)->closed = 1;
}

void herdd_lag_stop(herdd_lag_t *l)
{
    if (!uv_is_closing((uv_handle_t *)&l->timer))
        uv_close((uv_handle_t *)&l->timer, on_lag_closed);
}

/* ---- the snapshot -------------------------------------------------------------- */

static int count_member(void *data, const herd_member_info_t *m)
{
    herdd_metrics_snapshot_t *s = data;
    if ((unsigned)m->state < HERDD_MEMBER_STATES)
        s->members[m->state]++;
    return 0;
}

static int count_child(void *data, const herd_child_view_t *c)
{
    herdd_metrics_snapshot_t *s = data;
    if ((unsigned)c->state < HERD_CHILD_STATE_COUNT)
        s->children[c->state]++;
    return 0;
}

void herdd_metrics_collect(herd_node_t *n, herdd_metrics_snapshot_t *s)
{
    memset(s, 0, sizeof(*s));
    s->name = herd_node_name(n);
    s->version = herd_version();
    s->processes = herd_node_process_count(n);
    herd_node_stats(n, &s->node);
    s->in_cluster = herd_cluster_stats(n, &s->cluster) == 0;
    if (s->in_cluster) {
        herd_cluster_foreach_member(n, count_member, s);
        s->unconfirmed = herd_cluster_unconfirmed(n);
    }
    s->have_registry = herd_registry_stats(n, &s->registry) == 0;
    s->have_dsup = herd_handoff_stats(n, &s->handoff) == 0;
    if (s->have_dsup) {
        herd_which_children(n, count_child, s);
        herd_count_children(n, &s->child_counts);
        s->have_dsup = herd_repl_stats(n, &s->repl) == 0;
        s->repl_settled = herd_repl_settled(n) != 0;
    }
}

/* ---- the text ------------------------------------------------------------------ */

typedef struct mbuf {
    char *p;
    size_t len, cap;
    int oom;
} mbuf_t;

__attribute__((format(printf, 2, 3))) static void put(mbuf_t *b, const char *fmt, ...)
{
    if (b->oom)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = 1;
            return;
        }
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap * 2 > b->len + (size_t)n + 1 ? b->cap * 2 : b->len + (size_t)n + 1;
        char *p = realloc(b->p, cap);
        if (p == NULL) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
}

typedef enum { COUNTER, GAUGE } kind_t;

/* One figure of a family without labels. */
typedef struct metric {
    const char *name;
    kind_t kind;
    const char *help;
    uint64_t value;
} metric_t;

static void family(mbuf_t *b, const char *name, const char *type, const char *help)
{
    put(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void metrics(mbuf_t *b, const metric_t *m, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        family(b, m[i].name, m[i].kind == COUNTER ? "counter" : "gauge", m[i].help);
        put(b, "%s %llu\n", m[i].name, (unsigned long long)m[i].value);
    }
}

/* A family split by one label: values[i] under label=names[i]. */
static void labelled(mbuf_t *b, const char *name, kind_t kind, const char *help,
                     const char *label, const char *const *names, const uint64_t *values,
                     size_t n)
{
    family(b, name, kind == COUNTER ? "counter" : "gauge", help);
    for (size_t i = 0; i < n; i++)
        put(b, "%s{%s=\"%s\"} %llu\n", name, label, names[i], (unsigned long long)values[i]);
}

/* A label value as the format wants it: \ " and newline escaped. */
static void put_label_value(mbuf_t *b, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\')
            put(b, "\\\\");
        else if (*v == '"')
            put(b, "\\\"");
        else if (*v == '\n')
            put(b, "\\n");
        else
            put(b, "%c", *v);
    }
}

/* A histogram from per-bucket counts (not cumulative; the last one past
 * every bound) and bounds in µs; shown in seconds, cumulative. */
static void histogram(mbuf_t *b, const char *name, const char *help, const uint64_t *bounds_us,
                      const uint64_t *buckets, size_t nbounds, uint64_t sum_us)
{
    family(b, name, "histogram", help);
    uint64_t cum = 0;
    for (size_t i = 0; i < nbounds; i++) {
        cum += buckets[i];
        put(b, "%s_bucket{le=\"%g\"} %llu\n", name, (double)bounds_us[i] / 1e6,
            (unsigned long long)cum);
    }
    cum += buckets[nbounds];
    put(b, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.6f\n%s_count %llu\n", name,
        (unsigned long long)cum, name, (double)sum_us / 1e6, name, (unsigned long long)cum);
}

static void format_cluster(mbuf_t *b, const herdd_metrics_snapshot_t *s)
{
    const herd_cluster_stats_t *c = &s->cluster;
    const metric_t m[] = {
        {"herd_frames_in_total", COUNTER, "Cluster frames received.", c->frames_in},
        {"herd_frames_out_total", COUNTER, "Cluster frames sent.", c->frames_out},
        {"herd_frame_bytes_in_total", COUNTER, "Bytes of cluster frames received.", c->bytes_in},
        {"herd_frame_bytes_out_total", COUNTER, "Bytes of cluster frames sent.", c->bytes_out},
        {"herd_frames_dropped_out_total", COUNTER, "Frames the transport could not send.",
         c->dropped_out},
        {"herd_frames_oversize_out_total", COUNTER,
         "Frames refused on the way out as over the frame limit.", c->oversize_out},
        {"herd_seeds_silent_total", COUNTER,
         "Periods of 5 s with seeds to join and no authenticated frame from anyone.",
         c->seeds_silent},
        {"herd_peers", GAUGE, "Peer connections of the transport.", c->peers},
        {"herd_members_unconfirmed", GAUGE,
         "Nodes heard of from members but not heard from directly.", s->unconfirmed},
        {"herd_multicasts_out_total", COUNTER,
         "Casts to many processes sent to other nodes (one message per node and list).",
         c->multicasts_out},
        {"herd_multicasts_in_total", COUNTER,
         "Casts to many processes taken from other nodes.", c->multicasts_in},
        {"herd_membership_prompt_beats_total", COUNTER,
         "Heartbeats sent at once to a node newly heard of in gossip.", c->prompt_beats},
        {"herd_membership_prompt_beats_deferred_total", COUNTER,
         "Prompt heartbeats over the bound, left to the periodic heartbeat.",
         c->prompt_beats_deferred},
        {"herd_membership_effects_lost_total", COUNTER,
         "Membership effects lost for want of memory (heartbeats, members' changes).",
         c->membership_effects_lost},
        {"herd_messages_dropped_total", COUNTER,
         "Process messages from other nodes dropped on arrival (process gone, mailbox full).",
         c->msgs_dropped},
        {"herd_requests_withdrawn_total", COUNTER,
         "Requests queued for a member that was lost, never delivered.", c->withdrawn},
        {"herd_calls_not_applied_total", COUNTER,
         "Calls ended by a lost member before their request left.", c->calls_not_applied},
        {"herd_calls_uncertain_total", COUNTER,
         "Calls ended by a lost member after their request left.", c->calls_uncertain},
        {"herd_calls_expired_total", COUNTER,
         "Calls from other nodes dropped: sent after their caller's deadline.", c->calls_expired},
        {"herd_calls_duplicate_total", COUNTER,
         "Calls from other nodes dropped: a second copy of one being answered.",
         c->calls_duplicate},
    };
    metrics(b, m, sizeof(m) / sizeof(m[0]));
    const char *reasons[HERD_CLUSTER_REJECT_MAX];
    uint64_t counts[HERD_CLUSTER_REJECT_MAX];
    size_t n = 0;
    for (int i = 1; i < HERD_CLUSTER_REJECT_MAX && herd_cluster_reject_name(i); i++, n++) {
        reasons[n] = herd_cluster_reject_name(i);
        counts[n] = c->rejected[i];
    }
    labelled(b, "herd_frames_rejected_total", COUNTER, "Cluster frames refused, by reason.",
             "reason", reasons, counts, n);
    const char *states[HERDD_MEMBER_STATES];
    for (int i = 0; i < HERDD_MEMBER_STATES; i++)
        states[i] = herd_member_state_name((herd_member_state_t)i);
    labelled(b, "herd_members", GAUGE, "Cluster members as this node sees them, by state.",
             "state", states, s->members, HERDD_MEMBER_STATES);
}

static void format_registry(mbuf_t *b, const herd_registry_stats_t *r)
{
    const metric_t m[] = {
        {"herd_names", GAUGE, "Names in the registry (its size).", r->names},
        {"herd_registry_entries", GAUGE, "Entries in the registry's replica.", r->entries},
        {"herd_registry_conflicts_resolved_total", COUNTER,
         "Registrations this node stopped as losers of a name conflict.", r->conflicts_resolved},
        {"herd_registry_send_failed_total", COUNTER,
         "Sync messages a send refused (the peer is synced again).", r->send_failed},
        {"herd_registry_repairs_total", COUNTER,
         "Digest syncs started to repair a refused send.", r->repairs},
        {"herd_registry_rejected_total", COUNTER, "Malformed sync messages.", r->rejected},
        {"herd_registry_alloc_failed_total", COUNTER, "Allocations the registry saw fail.",
         r->alloc_failed},
        {"herd_registry_syncs_under_way", GAUGE, "Digest syncs under way now.",
         r->syncs_under_way},
    };
    metrics(b, m, sizeof(m) / sizeof(m[0]));
    static const char *const dir[] = {"out", "in"};
    labelled(b, "herd_registry_deltas_total", COUNTER, "Registry deltas sent and taken in.",
             "direction", dir, (const uint64_t[]){r->deltas_out, r->deltas_in}, 2);
    labelled(b, "herd_registry_digest_syncs_total", COUNTER,
             "Registry digest syncs (full syncs) offered and taken in.", "direction", dir,
             (const uint64_t[]){r->full_syncs_out, r->full_syncs_in}, 2);
    labelled(b, "herd_registry_sync_bytes_total", COUNTER, "Bytes of registry sync messages.",
             "direction", dir, (const uint64_t[]){r->bytes_out, r->bytes_in}, 2);
}

static void format_handoff(mbuf_t *b, const herdd_metrics_snapshot_t *s)
{
    const herd_handoff_stats_t *h = &s->handoff;
    const metric_t m[] = {
        {"herd_handoffs_started_total", COUNTER, "Moves of a child off this node started.",
         h->started},
        {"herd_handoffs_committed_total", COUNTER, "Moves committed.", h->committed},
        {"herd_handoffs_aborted_total", COUNTER, "Moves aborted.", h->aborted},
        {"herd_handoffs_rejected_total", COUNTER, "Moves the new owner rejected.", h->rejected},
        {"herd_handoffs_received_total", COUNTER, "Children moved to this node.", h->received},
        {"herd_handoffs_in_flight", GAUGE, "Moves under way now.", h->in_flight},
        {"herd_child_starts_total", COUNTER, "Children started here.", h->starts},
        {"herd_child_restarts_total", COUNTER, "Children restarted here after a crash.",
         h->restarts},
        {"herd_child_stops_total", COUNTER, "Children stopped here.", h->stops},
        {"herd_children_specs", GAUGE, "Children that must exist, cluster-wide.",
         s->child_counts.specs},
    };
    metrics(b, m, sizeof(m) / sizeof(m[0]));
    uint64_t bounds[HERD_HANDOFF_DURATION_BOUNDS];
    for (unsigned i = 0; i < HERD_HANDOFF_DURATION_BOUNDS; i++)
        bounds[i] = (uint64_t)herd_handoff_duration_bound_ms(i) * 1000;
    histogram(b, "herd_handoff_duration_seconds",
              "How long committed moves took, freeze of the old copy to commit.", bounds,
              h->duration_buckets, HERD_HANDOFF_DURATION_BOUNDS, h->duration_us_sum);
    const char *states[HERD_CHILD_STATE_COUNT];
    for (int i = 0; i < HERD_CHILD_STATE_COUNT; i++)
        states[i] = herd_child_state_name((herd_child_state_t)i);
    labelled(b, "herd_children", GAUGE, "Children this node runs, by state.", "state", states,
             s->children, HERD_CHILD_STATE_COUNT);
}

static void format_repl(mbuf_t *b, const herdd_metrics_snapshot_t *s)
{
    const herd_repl_stats_t *r = &s->repl;
    const metric_t m[] = {
        {"herd_replication_acks_total", COUNTER, "Acknowledgements of puts.", r->acks_in},
        {"herd_replication_refused_total", COUNTER, "Puts a replica refused.", r->refused},
        {"herd_replication_send_failed_total", COUNTER, "Puts the cluster refused.",
         r->send_failed},
        {"herd_replication_reputs_total", COUNTER, "Puts no acknowledgement answered in time.",
         r->reputs},
        {"herd_replication_unreplicated_total", COUNTER,
         "Replies let go with fewer copies than asked.", r->unreplicated},
        {"herd_replication_too_big_total", COUNTER, "States over the limit, not replicated.",
         r->too_big},
        {"herd_replication_promoted_total", COUNTER, "Children started from a replica's copy.",
         r->promoted},
        {"herd_replication_query_timeouts_total", COUNTER, "Replica queries that timed out.",
         r->query_timeouts},
        {"herd_replication_delta_gaps_total", COUNTER,
         "Deltas a replica could not apply (the whole state went).", r->delta_gaps},
        {"herd_replication_no_room_total", COUNTER, "Puts refused here for want of room.",
         r->no_room},
        {"herd_replication_batches_out_total", COUNTER,
         "Batches of puts sent (at most one in flight to a member).", r->batches_out},
        {"herd_replication_puts_waited_total", COUNTER,
         "Times a child waited for the batch in flight to a member of its set.", r->puts_waited},
        {"herd_replication_inflight_expired_total", COUNTER,
         "Batches unanswered for 10 ms: the next went without waiting more.",
         r->inflight_expired},
        {"herd_replication_malformed_total", COUNTER, "Replication messages that did not decode.",
         r->malformed},
        {"herd_replication_held", GAUGE, "Copies kept here for other owners.", r->held},
        {"herd_replication_held_bytes", GAUGE, "State bytes of those copies.", r->held_bytes},
        {"herd_replication_lagging", GAUGE,
         "Children here whose last put is not acknowledged.", r->lagging},
        {"herd_replication_settled", GAUGE,
         "1 when a crash of any one node loses no reply of this node's children.",
         (uint64_t)s->repl_settled},
    };
    metrics(b, m, sizeof(m) / sizeof(m[0]));
    family(b, "herd_replication_lag_seconds", "gauge", "Age of the oldest unacknowledged put.");
    put(b, "herd_replication_lag_seconds %.3f\n", (double)r->lag_ms / 1e3);
    static const char *const dir[] = {"out", "in"};
    labelled(b, "herd_replication_puts_total", COUNTER, "States put to replicas and taken.",
             "direction", dir, (const uint64_t[]){r->puts_out, r->puts_in}, 2);
    labelled(b, "herd_replication_deltas_total", COUNTER, "Puts sent and applied as a change.",
             "direction", dir, (const uint64_t[]){r->deltas_out, r->deltas_in}, 2);
    labelled(b, "herd_replication_bytes_total", COUNTER, "State bytes put and taken.",
             "direction", dir, (const uint64_t[]){r->bytes_out, r->bytes_in}, 2);
}

static void format_node(mbuf_t *b, const herdd_metrics_snapshot_t *s)
{
    family(b, "herd_node_info", "gauge", "This node: its name and herd's version.");
    put(b, "herd_node_info{name=\"");
    put_label_value(b, s->name ? s->name : "");
    put(b, "\",version=\"");
    put_label_value(b, s->version ? s->version : "");
    put(b, "\"} 1\n");
    const metric_t m[] = {
        {"herd_processes", GAUGE, "Processes on this node.", s->processes},
        {"herd_late_replies_total", COUNTER, "Replies that found their call no longer waiting.",
         s->node.late_replies},
        {"herd_forward_dropped_total", COUNTER,
         "Messages forwarded after a move that could not be delivered.",
         s->node.forward_dropped},
    };
    metrics(b, m, sizeof(m) / sizeof(m[0]));
    family(b, "herd_loop_lag_last_seconds", "gauge", "The loop's newest lag sample.");
    put(b, "herd_loop_lag_last_seconds %.6f\n", (double)s->lag.last_us / 1e6);
    uint64_t bounds[HERDD_LAG_BOUNDS];
    for (unsigned i = 0; i < HERDD_LAG_BOUNDS; i++)
        bounds[i] = herdd_lag_bound_us(i);
    histogram(b, "herd_loop_lag_seconds",
              "How late a timer due every 100 ms fired: time the loop was held.", bounds,
              s->lag.buckets, HERDD_LAG_BOUNDS, s->lag.sum_us);
}

static void format_discover(mbuf_t *b, const herdd_discover_stats_t *d)
{
    const metric_t m[] = {
        {"herd_discover_seeds", GAUGE, "Seeds --discover found, now.", d->seeds},
        {"herd_discover_resolves_total", COUNTER, "Discovery attempts that found addresses.",
         d->resolves},
        {"herd_discover_failures_total", COUNTER, "Discovery attempts that failed (logged).",
         d->failures},
        {"herd_discover_seed_changes_total", COUNTER, "Seeds added or dropped by discovery.",
         d->changes},
    };
    metrics(b, m, sizeof(m) / sizeof(m[0]));
}

int herdd_metrics_format(const herdd_metrics_snapshot_t *s, char **out, size_t *len)
{
    mbuf_t b = {.cap = 16384};
    b.p = malloc(b.cap);
    b.oom = b.p == NULL;
    format_node(&b, s);
    if (s->in_cluster)
        format_cluster(&b, s);
    if (s->have_registry)
        format_registry(&b, &s->registry);
    if (s->have_dsup) {
        format_handoff(&b, s);
        format_repl(&b, s);
    }
    if (s->have_discover)
        format_discover(&b, &s->discover);
    if (b.oom) {
        free(b.p);
        *out = NULL;
        *len = 0;
        return HERD_ENOMEM;
    }
    *out = b.p;
    *len = b.len;
    return 0;
}
