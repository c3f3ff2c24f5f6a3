/*
 * ringctl - inspect and plan a herd ring.
 *
 * This version has the offline planning commands (ring, owner, diff), which
 * work on a member list given with --nodes and need no running cluster. Output
 * is a human table by default and one JSON document with --json, in the shapes
 * of the command-line contract (DESIGN.md). Exit codes: 0 done, 1 failed
 * (nothing took effect), 2 usage error, 3 outcome unknown (a change that may
 * or may not have taken effect).
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "control_client.h"
#include "herd_registry.h" /* the metadata limits of names --where */
#include "herd_version.h"
#include "herd_ring.h"
#include "ringctl.h"

/* Say what went wrong on stderr (and as JSON on stdout with --json); returns
 * `code` so callers can `return ctl_fail(...)`. */
int ctl_fail(const ctl_t *c, int code, const char *err_name, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fprintf(stderr, "ringctl: %s%s%s\n", c->cmd ? c->cmd : "", c->cmd ? ": " : "", msg);
    if (c->json) {
        json_t *doc = json_pack("{s:s, s:s}", "error", err_name, "message", msg);
        json_dumpf(doc, stdout, JSON_INDENT(2));
        fputc('\n', stdout);
        json_decref(doc);
    }
    return code;
}

int ctl_fail_app(const ctl_t *c, int app_code, const char *message)
{
    fprintf(stderr, "ringctl: %s%s%s\n", c->cmd ? c->cmd : "", c->cmd ? ": " : "", message);
    if (c->json) {
        json_t *doc = json_pack("{s:s, s:i, s:s}", "error", "EAPP", "app_code", app_code,
                                "message", message);
        json_dumpf(doc, stdout, JSON_INDENT(2));
        fputc('\n', stdout);
        json_decref(doc);
    }
    return EXIT_APP;
}

int ctl_usage(const ctl_t *c, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return ctl_fail(c, EXIT_USAGE, "EUSAGE", "%s (see ringctl %s%s--help)", msg,
                    c->cmd ? c->cmd : "", c->cmd ? " " : "");
}

int ctl_print_json(json_t *doc)
{
    int rc = json_dumpf(doc, stdout, JSON_INDENT(2));
    fputc('\n', stdout);
    json_decref(doc);
    return rc == 0 ? 0 : 1;
}

/* ---- member lists: "a,b:256,c" --------------------------------------------- */

/* Parse "NAME[:WEIGHT]" into name (buffer of HERD_RING_NAME_MAX+1) and weight. */
static int ctl_parse_member(const ctl_t *c, const char *spec, size_t len, char *name,
                            uint32_t *weight)
{
    const char *colon = memchr(spec, ':', len);
    size_t nlen = colon ? (size_t)(colon - spec) : len;
    if (nlen > HERD_RING_NAME_MAX)
        return ctl_usage(c, "member name '%.*s' is longer than %u bytes", (int)nlen, spec,
                         HERD_RING_NAME_MAX);
    memcpy(name, spec, nlen);
    name[nlen] = '\0';
    if (herd_ring_check_name(name) != 0)
        return ctl_usage(c, "bad member name '%s': use 1-%u of A-Za-z0-9_.-", name,
                         HERD_RING_NAME_MAX);
    *weight = HERD_RING_DEFAULT_WEIGHT;
    if (colon == NULL)
        return 0;
    char digits[16];
    size_t dlen = len - nlen - 1;
    if (dlen == 0 || dlen >= sizeof(digits) || strspn(colon + 1, "0123456789") < dlen)
        return ctl_usage(c, "bad weight in '%.*s': want a whole number 1-%u", (int)len, spec,
                         HERD_RING_MAX_WEIGHT);
    memcpy(digits, colon + 1, dlen);
    digits[dlen] = '\0';
    unsigned long w = strtoul(digits, NULL, 10);
    if (w == 0 || w > HERD_RING_MAX_WEIGHT)
        return ctl_usage(c, "weight %s of '%s' is out of range 1-%u", digits, name,
                         HERD_RING_MAX_WEIGHT);
    *weight = (uint32_t)w;
    return 0;
}

/* Add every member of a comma-separated list to `r`, in one go (one
 * rebuild of the ring, not one per member). */
static int ctl_add_members(const ctl_t *c, herd_ring_t *r, const char *list)
{
    const char *p = list;
    if (*p == '\0')
        return ctl_usage(c, "--nodes is empty");
    size_t n = 1, count = 0, bad;
    for (const char *q = list; *q; q++)
        n += *q == ',';
    char(*names)[HERD_RING_NAME_MAX + 1] = malloc(n * sizeof(*names));
    const char **ptrs = malloc(n * sizeof(*ptrs));
    uint32_t *weights = malloc(n * sizeof(*weights));
    int rc = names && ptrs && weights ? 0 : ctl_fail(c, 1, "ENOMEM", "out of memory");
    while (rc == 0) {
        size_t len = strcspn(p, ",");
        if (len == 0) {
            rc = ctl_usage(c, "empty member in list '%.200s'", list);
            break;
        }
        if ((rc = ctl_parse_member(c, p, len, names[count], &weights[count])) != 0)
            break;
        ptrs[count] = names[count];
        count++;
        if (p[len] == '\0')
            break;
        p += len + 1;
    }
    if (rc == 0 && (rc = herd_ring_add_many(r, ptrs, weights, count, &bad)) != 0) {
        if (rc == HERD_EEXIST)
            rc = ctl_usage(c, "member '%s' is listed twice", names[bad]);
        else if (rc == HERD_ERANGE && bad == count)
            rc = ctl_usage(c, "%zu members: at most %u", count, HERD_RING_MAX_MEMBERS);
        else
            rc = ctl_fail(c, 1, herd_err_name(rc), "cannot add '%s': %s",
                          bad < count ? names[bad] : "the members", herd_strerror(rc));
    }
    free(names);
    free(ptrs);
    free(weights);
    return rc;
}

#define CTL_TIMEOUT_MS 1500

/* Ask the node; on failure say why (exit 1, or 3: ctl_live_ask) and
 * return NULL. */
static json_t *ctl_live(const ctl_t *c, const char *cmd, int *rc)
{
    return ctl_live_args(c, cmd, NULL, rc);
}

json_t *ctl_live_args(const ctl_t *c, const char *cmd, json_t *args, int *rc)
{
    return ctl_live_wait(c, cmd, args, CTL_TIMEOUT_MS, rc);
}

/* Whether an error answer leaves the outcome unknown (exit 3): the node
 * said so (EUNCERTAIN, ETIMEDOUT), or, for a command that changes
 * something, its request left and no answer came. */
static int ctl_uncertain(const control_reply_t *r, int changes)
{
    if (r->outcome == CONTROL_UNREACHABLE)
        return changes && r->sent;
    return strcmp(r->code, "EUNCERTAIN") == 0 || strcmp(r->code, "ETIMEDOUT") == 0;
}

static json_t *ctl_live_ask(const ctl_t *c, const char *cmd, json_t *args, int timeout_ms,
                            int changes, int *rc)
{
    if (c->node == NULL) {
        *rc = ctl_usage(c, "no node to ask: give --node ADDR or set HERD_NODE");
        return NULL;
    }
    control_reply_t r;
    if (strcmp(cmd, "names") == 0 || strcmp(cmd, "children") == 0 ||
        strcmp(cmd, "groups") == 0 || strcmp(cmd, "group_members") == 0)
        control_request_list(c->node, cmd, args, timeout_ms, &r); /* page by page */
    else
        control_request(c->node, cmd, args, timeout_ms, &r);
    if (r.outcome == CONTROL_OK)
        return r.result;
    if (r.outcome == CONTROL_REFUSED && r.app_code) {
        *rc = ctl_fail_app(c, r.app_code, r.message);
        return NULL;
    }
    int uncertain = ctl_uncertain(&r, changes);
    const char *code = r.outcome != CONTROL_UNREACHABLE ? r.code
                       : uncertain                      ? "EUNCERTAIN"
                                                        : "EUNREACHABLE";
    *rc = ctl_fail(c, uncertain ? 3 : 1, code, "%s%s", r.message,
                   r.outcome == CONTROL_UNREACHABLE && uncertain
                       ? ": the request was sent, so it may or may not have taken effect"
                       : "");
    return NULL;
}

json_t *ctl_live_wait(const ctl_t *c, const char *cmd, json_t *args, int timeout_ms, int *rc)
{
    return ctl_live_ask(c, cmd, args, timeout_ms, 0, rc);
}

json_t *ctl_live_change(const ctl_t *c, const char *cmd, json_t *args, int timeout_ms,
                        int *rc)
{
    return ctl_live_ask(c, cmd, args, timeout_ms, 1, rc);
}

/* The live ring: the node sends its ring's members and weights, and the ring
 * built from them here is the node's (the ring is a function of the set). */
static herd_ring_t *ctl_ring_from_node(const ctl_t *c, int *rc)
{
    json_t *res = ctl_live(c, "ring", rc);
    if (res == NULL)
        return NULL;
    herd_ring_t *r = herd_ring_new();
    json_t *members = json_object_get(res, "members"), *m;
    size_t i;
    json_array_foreach(members, i, m)
    {
        const char *name = json_string_value(json_object_get(m, "name"));
        json_int_t w = json_integer_value(json_object_get(m, "weight"));
        if (r == NULL || name == NULL ||
            herd_ring_add(r, name, (uint32_t)(w > 0 && w <= HERD_RING_MAX_WEIGHT ? w : 0)) != 0) {
            *rc = ctl_fail(c, 1, "EBADFRAME", "the node's ring is malformed");
            herd_ring_free(r);
            json_decref(res);
            return NULL;
        }
    }
    json_decref(res);
    return r;
}

/* The ring of --nodes, or the live ring of --node; NULL with an exit code in
 * *rc on failure. */
static herd_ring_t *ctl_ring_from_nodes(const ctl_t *c, const char *nodes, int *rc)
{
    if (nodes == NULL && c->node == NULL) {
        *rc = ctl_usage(c, "give --nodes a,b,c (offline) or --node ADDR / HERD_NODE (live)");
        return NULL;
    }
    if (nodes == NULL)
        return ctl_ring_from_node(c, rc);
    herd_ring_t *r = herd_ring_new();
    if (r == NULL) {
        *rc = ctl_fail(c, 1, "ENOMEM", "out of memory");
        return NULL;
    }
    *rc = ctl_add_members(c, r, nodes);
    if (*rc) {
        herd_ring_free(r);
        return NULL;
    }
    return r;
}

/* ---- members and stats (live) ---------------------------------------------- */

static const char members_help[] =
    "usage: ringctl [--json] [--node ADDR] members\n"
    "\n"
    "The node's view of the cluster: every member with its address, incarnation,\n"
    "state (up, suspect, draining, down, left), how long ago it was last heard and\n"
    "the services it provides (a child runs only on a member that provides its\n"
    "service; \"-\" for none).\n"
    "JSON: [{\"name\",\"address\",\"incarnation\",\"state\",\"weight\",\"last_heard_ms\",\n"
    "\"services\":[NAME...]}]\n";

static const char stats_help[] =
    "usage: ringctl [--json] [--node ADDR] stats\n"
    "\n"
    "The node's counters: frames and bytes in and out, frames dropped on the way\n"
    "out, open peer links, members, processes, and frames rejected by reason\n"
    "(short, magic, version, length, oversize, reserved, mac, type, replay, body,\n"
    "cluster, services, sender, rate: HELLOs not answered as their sender was\n"
    "answered just before, name: frames from a second node of this node's name,\n"
    "memory: frames not taken in for want of memory, which their sender resends;\n"
    "frames over 1 MiB never reach herd: nanomsg drops them\n"
    "and closes the link, so the sender counts them instead in oversize_out);\n"
    "5-s periods with seeds to join and no authenticated frame from anyone\n"
    "(seeds_silent: the seeds are down, or use another cookie or cluster name);\n"
    "casts to many processes (a group's publish) sent to other nodes, one message\n"
    "per node and list, and taken from them (multicasts_out, multicasts_in);\n"
    "heartbeats sent at once to a node newly heard of in gossip, and those\n"
    "over the bound of 16 a heartbeat period (prompt_beats, prompt_beats_deferred);\n"
    "membership's effects lost for want of memory: heartbeats not sent, members'\n"
    "changes not passed on (membership_effects_lost, logged as errors);\n"
    "messages from other nodes dropped on arrival (their process "
    "gone\n"
    "or its mailbox full: casts are at most once); and what the runtime dropped:\n"
    "replies that came after their call gave up (runtime.late_replies), messages\n"
    "forwarded after a move that could not be delivered (runtime.forward_dropped;\n"
    "runtime.forward_failed_calls, whose callers got the error as their reply);\n"
    "replies passed on through the node that forwarded their call (replies_relayed);\n"
    "requests to other nodes and calls a lost member cost (calls.*: requests queued\n"
    "for a member declared down, withdrawn and never delivered, in withdrawn; calls\n"
    "that member's loss ended, not applied (ENOTCONN: the request never left) in\n"
    "not_applied and with their outcome unknown (EUNCERTAIN) in uncertain; calls\n"
    "from other nodes dropped unapplied on arrival, sent after their caller's\n"
    "deadline in expired, a second copy of one still being answered in duplicate);\n"
    "the supervisor's moves (handoff.*: protocol messages the cluster refused in\n"
    "send_failed, states over the size limit in too_big, children that registered\n"
    "themselves in claimed, messages from members that did not decode or arrived\n"
    "altered in malformed), replicated state (replication.*: states put to the\n"
    "replicas of this node's children and their bytes in puts_out and bytes_out,\n"
    "states taken for other owners in puts_in and bytes_in, acknowledgements in\n"
    "acks_in, puts a replica refused in refused and the cluster refused in\n"
    "send_failed, replies let go with fewer copies than asked in unreplicated,\n"
    "states too big to replicate in too_big, children started from a replica's\n"
    "copy in promoted, queries for the newest copy and those that timed out,\n"
    "copies held here for other owners and their bytes in held and held_bytes,\n"
    "copies dropped as no owner's replica set holds this node any more in\n"
    "collected, copies handed on as this node drained or left in handed_over,\n"
    "copies of another registration (two ran at once) merged into children here\n"
    "in merged_in and those kept here that found no room in others_dropped,\n"
    "puts put again as no acknowledgement answered them in 2 s in reputs,\n"
    "times a child began refusing calls (too few copies) in refusing,\n"
    "messages that did not decode in malformed, and settled: true when every\n"
    "reply this node's children sent is held by as many live copies as asked\n"
    "(or as the service's members can hold); puts sent as a change and their\n"
    "bytes in deltas_out and delta_bytes_out, changes applied here in deltas_in,\n"
    "changes a replica could not apply (the whole state went) in delta_gaps,\n"
    "puts refused here for want of room (max_replica_bytes) in no_room, and\n"
    "times a replica of this node's children had no room for a put (its replies\n"
    "went without it) in members_full; the replication lag: children of this\n"
    "node whose last put their replicas have not acknowledged in lagging, the\n"
    "oldest such put's age in lag_ms; batches of puts sent in batches_out (at\n"
    "most one in flight to a member), times a child waited for the one in\n"
    "flight in puts_waited, and batches unanswered for 10 ms, after which the\n"
    "next went anyway, in inflight_expired)\n"
    "and the registry's repairs and sync (registry.*: sync\n"
    "bytes out and in, sends refused in send_failed and the digest syncs that\n"
    "repaired them in repairs, messages split for size, contexts sent trimmed and\n"
    "contexts joined; the causal context's replicas and cloud dots, all and the\n"
    "largest one replica's, 0 at quiescence);\n"
    "the cluster port's guard against running out of file descriptors\n"
    "(connections.*: inbound connections kept, the limits per remote address\n"
    "and in all drawn from the open files limit, open files and the limit, and\n"
    "connections shut down as over the per-address limit (shed_per_addr), over\n"
    "the limit in all (shed_total), or gone before they could be (shed_missed);\n"
    "checks and scans count the guard's looks at the process's descriptors).\n"
    "JSON: {\"name\",\"frames_in\",\"frames_out\",\"bytes_in\",\"bytes_out\",\n"
    "\"dropped_out\",\"peers\",\"members\",\"processes\",\"rejected\":{REASON: n},\n"
    "\"messages_dropped\",\"runtime\":{\"late_replies\",\"forward_dropped\",\n"
    "\"forward_failed_calls\"},\"replies_relayed\",\"calls\":{\"withdrawn\",\n"
    "\"not_applied\",\"uncertain\",\"expired\",\"duplicate\"},\"oversize_out\",\n"
    "\"seeds_silent\",\"multicasts_out\",\"multicasts_in\",\"prompt_beats\",\n"
    "\"prompt_beats_deferred\",\"membership_effects_lost\",\n"
    "\"handoff\":{\"started\",\n"
    "\"committed\",\"aborted\",\"rejected\",\"received\",\"promoted\",\"forwarded\",\n"
    "\"send_failed\",\"too_big\",\"rejected_parts\",\"claimed\",\"in_flight\",\n"
    "\"malformed\"},\n"
    "\"registry\":{\"conflicts_resolved\",\"reregistered\",\"claimed\",\n"
    "\"merges_redirected\",\"merges_abandoned\",\"merges_stale\",\"bytes_out\",\n"
    "\"bytes_in\",\"send_failed\",\"repairs\",\"pieces_split\",\"context_trimmed\",\n"
    "\"contexts_joined\",\"cc_replicas\",\"cc_cloud_dots\",\"cc_cloud_max\",\n"
    "\"syncs_under_way\",\"longest_us\",\"longest_what\"},\n"
    "\"replication\":{\"puts_out\",\"puts_in\",\"acks_in\",\"refused\",\"bytes_out\",\n"
    "\"bytes_in\",\"send_failed\",\"unreplicated\",\"too_big\",\"promoted\",\"queries\",\n"
    "\"query_timeouts\",\"held\",\"held_bytes\",\"collected\",\"handed_over\",\n"
    "\"merged_in\",\"others_dropped\",\"reputs\",\"refusing\",\n"
    "\"malformed\",\"settled\":BOOL,\"deltas_out\",\"delta_bytes_out\",\"deltas_in\",\n"
    "\"delta_gaps\",\"no_room\",\"members_full\",\"lagging\",\"lag_ms\",\"batches_out\",\n"
    "\"puts_waited\",\"inflight_expired\"},\n"
    "\"connections\":{\"inbound\",\"limit_per_addr\",\"limit_total\",\"fds_open\",\n"
    "\"fd_limit\",\"shed_per_addr\",\"shed_total\",\"shed_missed\",\"checks\",\"scans\"}}\n";

/* "a,b,c", or "-" for none; then the end of the line. */
static void print_services(json_t *services)
{
    size_t i;
    json_t *s;
    if (json_array_size(services) == 0)
        fputs("-", stdout);
    json_array_foreach(services, i, s)
        printf("%s%s", i ? "," : "", json_string_value(s) ? json_string_value(s) : "?");
    putchar('\n');
}

static int ctl_print_members(const ctl_t *c, json_t *list)
{
    if (c->json)
        return ctl_print_json(list);
    printf("%-20s %-28s %20s %-9s %-12s %s\n", "NAME", "ADDRESS", "INCARNATION", "STATE",
           "LAST_HEARD", "SERVICES");
    size_t i;
    json_t *m;
    json_array_foreach(list, i, m)
    {
        char heard[32];
        snprintf(heard, sizeof(heard), "%lld ms",
                 (long long)json_integer_value(json_object_get(m, "last_heard_ms")));
        printf("%-20s %-28s %20lld %-9s %-12s ", json_string_value(json_object_get(m, "name")),
               json_string_value(json_object_get(m, "address")),
               (long long)json_integer_value(json_object_get(m, "incarnation")),
               json_string_value(json_object_get(m, "state")), heard);
        print_services(json_object_get(m, "services"));
    }
    json_decref(list);
    return 0;
}

static int ctl_print_stats(const ctl_t *c, json_t *st)
{
    if (c->json)
        return ctl_print_json(st);
    const char *key;
    json_t *v;
    json_object_foreach(st, key, v)
    {
        if (json_is_object(v)) {
            const char *k2;
            json_t *v2;
            json_object_foreach(v, k2, v2)
            {
                if (json_is_boolean(v2))
                    printf("%s.%s %s\n", key, k2, json_is_true(v2) ? "true" : "false");
                else if (json_is_string(v2))
                    printf("%s.%s %s\n", key, k2, json_string_value(v2));
                else
                    printf("%s.%s %lld\n", key, k2, (long long)json_integer_value(v2));
            }
        } else if (json_is_string(v)) {
            printf("%s %s\n", key, json_string_value(v));
        } else {
            printf("%s %lld\n", key, (long long)json_integer_value(v));
        }
    }
    json_decref(st);
    return 0;
}

static const char crdt_help[] =
    "usage: ringctl [--json] [--node ADDR] crdt\n"
    "\n"
    "The node's registry replica (names, entries, conflicts it settled, entries\n"
    "it put back, malformed sync messages), its causal context (replicas in its\n"
    "table, dots held in clouds above the version vectors, all and the largest\n"
    "one replica's: 0 at quiescence), its sync traffic (bytes out and in, sends\n"
    "refused and the digest syncs that repaired them, messages split for size,\n"
    "contexts sent trimmed, contexts joined, digest syncs under way), the longest\n"
    "it held the node's loop in one go and doing what, and, per peer, the stream the\n"
    "registry uses: the highest sequence sent and acknowledged, messages and\n"
    "bytes waiting for an acknowledgement, deltas out and in, digest syncs\n"
    "offered and how long ago the last one was (-1: never), sync bytes out and\n"
    "in and sends refused.\n"
    "JSON: {\"names\",\"entries\",\"conflicts_resolved\",\"reregistered\",\"rejected\",\n"
    "\"cc_replicas\",\"cc_cloud_dots\",\"cc_cloud_max\",\"bytes_out\",\"bytes_in\",\n"
    "\"send_failed\",\"repairs\",\"pieces_split\",\"context_trimmed\",\"contexts_"
    "joined\",\n"
    "\"syncs_under_way\",\"longest_us\",\"longest_what\",\n"
    "\"peers\":[{\"node\",\"acked_seq\",\"sent_seq\",\"pending\",\"pending_bytes\",\n"
    "\"deltas_out\",\"deltas_in\",\"digest_syncs\",\"last_sync_ms_ago\",\"bytes_out\",\n"
    "\"bytes_in\",\"send_failed\"}]}\n";

static long long int_of(json_t *o, const char *key)
{
    return (long long)json_integer_value(json_object_get(o, key));
}

static int ctl_print_crdt(const ctl_t *c, json_t *res)
{
    if (c->json)
        return ctl_print_json(res);
    printf("names %lld, entries %lld, conflicts settled %lld, put back %lld, rejected "
           "%lld\n",
           int_of(res, "names"), int_of(res, "entries"),
           int_of(res, "conflicts_resolved"), int_of(res, "reregistered"),
           int_of(res, "rejected"));
    printf("context: replicas %lld, cloud dots %lld (largest %lld)\n",
           int_of(res, "cc_replicas"), int_of(res, "cc_cloud_dots"),
           int_of(res, "cc_cloud_max"));
    printf("sync: bytes out %lld, in %lld, send failed %lld, repairs %lld, pieces split "
           "%lld, "
           "context trimmed %lld, contexts joined %lld\n",
           int_of(res, "bytes_out"), int_of(res, "bytes_in"), int_of(res, "send_failed"),
           int_of(res, "repairs"), int_of(res, "pieces_split"),
           int_of(res, "context_trimmed"), int_of(res, "contexts_joined"));
    const char *what = json_string_value(json_object_get(res, "longest_what"));
    printf("syncs under way %lld; longest hold of the loop %lld us (%s)\n",
           int_of(res, "syncs_under_way"), int_of(res, "longest_us"),
           what && *what ? what : "-");
    printf("%-20s %10s %10s %8s %10s %10s %10s %8s %14s %12s %12s %11s\n", "PEER",
           "ACKED", "SENT", "PENDING", "BYTES", "DELTAS_OUT", "DELTAS_IN", "SYNCS",
           "LAST_SYNC_AGO", "BYTES_OUT", "BYTES_IN", "SEND_FAILED");
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(res, "peers"), i, p)
    {
        printf("%-20s %10lld %10lld %8lld %10lld %10lld %10lld %8lld %11lld ms %12lld "
               "%12lld "
               "%11lld\n",
               json_string_value(json_object_get(p, "node")), int_of(p, "acked_seq"),
               int_of(p, "sent_seq"), int_of(p, "pending"), int_of(p, "pending_bytes"),
               int_of(p, "deltas_out"), int_of(p, "deltas_in"), int_of(p, "digest_syncs"),
               int_of(p, "last_sync_ms_ago"), int_of(p, "bytes_out"),
               int_of(p, "bytes_in"), int_of(p, "send_failed"));
    }
    json_decref(res);
    return 0;
}

static const char names_help[] =
    "usage: ringctl [--json] [--node ADDR] names [PREFIX] [--where KEY=VALUE]...\n"
    "\n"
    "The registered names (starting with PREFIX), with the node and pid of the\n"
    "process each names and its metadata. With --where (repeatable), only the\n"
    "names whose metadata holds every KEY=VALUE given (values compared exactly;\n"
    "VALUE may be empty or hold '='). At most 8 --where, each KEY of 1-31 bytes\n"
    "given once, each VALUE of at most 127 bytes: else a usage error (exit 2).\n"
    "The node looks at every name to select them (a pass over its registry).\n"
    "JSON: [{\"name\",\"node\",\"pid\",\"meta\":{...}}], pid as \"node/incarnation/serial\".\n";

static const char whereis_help[] =
    "usage: ringctl [--json] [--node ADDR] whereis NAME\n"
    "\n"
    "Where the process registered as NAME runs: node, pid, metadata; for a child\n"
    "started by name also where its state is kept: the ring's owner of NAME\n"
    "(among the members providing its service) and its replica set, as many\n"
    "nodes as the copies its spec asks for and the members allow. An unknown\n"
    "name is an error (exit 1).\n"
    "JSON: {\"name\",\"node\",\"pid\",\"meta\":{...},\"replica_nodes\":[OWNER,REPLICA...]}\n"
    "(replica_nodes null for a name that is no child)\n";

/* "owner X, replicas Y,Z" from replica_nodes [X, Y, Z]; nothing for null. */
static void ctl_print_replica_nodes(json_t *nodes)
{
    if (!json_is_array(nodes) || json_array_size(nodes) == 0)
        return;
    printf("replica set: owner %s, replicas ", json_string_value(json_array_get(nodes, 0)));
    if (json_array_size(nodes) == 1)
        fputs("none (1 copy)", stdout);
    for (size_t i = 1; i < json_array_size(nodes); i++)
        printf("%s%s", i > 1 ? "," : "", json_string_value(json_array_get(nodes, i)));
    putchar('\n');
}

static void ctl_print_name(json_t *o)
{
    printf("%-32s %-16s %-40s", json_string_value(json_object_get(o, "name")),
           json_string_value(json_object_get(o, "node")),
           json_string_value(json_object_get(o, "pid")));
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(o, "meta"), k, v)
    printf(" %s=%s", k, json_string_value(v));
    printf("\n");
}

/* Whether a listed name's metadata holds every pair of `where`: the node
 * selects them, and this checks again, so a node that does not know
 * `where` yet (it lists every name) gives the same answer. */
static int ctl_meta_holds(json_t *item, json_t *where)
{
    json_t *meta = json_object_get(item, "meta"), *v;
    const char *k;
    json_object_foreach(where, k, v)
    {
        const char *have = json_string_value(json_object_get(meta, k));
        if (have == NULL || strcmp(have, json_string_value(v)) != 0)
            return 0;
    }
    return 1;
}

static int ctl_run_names(const ctl_t *c, const char *arg, json_t *where)
{
    int rc = 0;
    int names = strcmp(c->cmd, "names") == 0;
    json_t *args = json_pack("{s:s?}", names ? "prefix" : "name", arg);
    if (where)
        json_object_set(args, "where", where);
    json_t *res = ctl_live_args(c, c->cmd, args, &rc);
    json_decref(args);
    if (res == NULL)
        return rc;
    if (names && where && json_is_array(res)) {
        json_t *kept = json_array(), *o;
        size_t i;
        json_array_foreach(res, i, o)
            if (ctl_meta_holds(o, where))
                json_array_append(kept, o);
        json_decref(res);
        res = kept;
    }
    if (c->json)
        return ctl_print_json(res);
    printf("%-32s %-16s %-40s %s\n", "NAME", "NODE", "PID", "META");
    if (names) {
        size_t i;
        json_t *o;
        json_array_foreach(res, i, o)
        ctl_print_name(o);
    } else {
        ctl_print_name(res);
        ctl_print_replica_nodes(json_object_get(res, "replica_nodes"));
    }
    json_decref(res);
    return 0;
}

static int ctl_run_live(const ctl_t *c)
{
    int rc = 0;
    json_t *res = ctl_live(c, c->cmd, &rc);
    if (res == NULL)
        return rc;
    if (strcmp(c->cmd, "members") == 0)
        return ctl_print_members(c, res);
    if (strcmp(c->cmd, "crdt") == 0)
        return ctl_print_crdt(c, res);
    return ctl_print_stats(c, res);
}

/* ---- ring ------------------------------------------------------------------- */

static const char ring_help[] =
    "usage: ringctl [--json] ring --nodes NAME[:WEIGHT],...\n"
    "       ringctl [--json] [--node ADDR] ring\n"
    "\n"
    "Show the ring of the given members (or the node's live ring): weight, points\n"
    "and the share of the key space each owns. Weight defaults to 128 points per\n"
    "member (1-4096).\n"
    "JSON: {\"members\":[{\"name\",\"weight\",\"points\",\"share\"}]}, share a fraction of 1.\n";

static int ctl_print_ring(const ctl_t *c, const herd_ring_t *r)
{
    herd_ring_member_info_t m;
    if (c->json) {
        json_t *members = json_array();
        for (size_t i = 0; herd_ring_member_at(r, i, &m) == 0; i++)
            json_array_append_new(members, json_pack("{s:s, s:I, s:I, s:f}", "name", m.name,
                                                     "weight", (json_int_t)m.weight, "points",
                                                     (json_int_t)m.points, "share", m.share));
        return ctl_print_json(json_pack("{s:o}", "members", members));
    }
    printf("%-24s %7s %7s %8s\n", "MEMBER", "WEIGHT", "POINTS", "SHARE");
    for (size_t i = 0; herd_ring_member_at(r, i, &m) == 0; i++)
        printf("%-24s %7u %7u %7.2f%%\n", m.name, m.weight, m.points, m.share * 100.0);
    printf("%zu members, %zu points\n", herd_ring_member_count(r), herd_ring_point_count(r));
    return 0;
}

/* ---- owner ------------------------------------------------------------------ */

static const char owner_help[] =
    "usage: ringctl [--json] owner KEY --nodes NAME[:WEIGHT],... [--replicas N]\n"
    "       ringctl [--json] [--node ADDR] owner KEY [--replicas N]\n"
    "\n"
    "Show which member owns KEY (the name of a process) on the given members or\n"
    "on the node's live ring. With --replicas N, also\n"
    "its successors: N distinct members counting the owner first, at most the\n"
    "member count.\n"
    "JSON: {\"key\",\"owner\",\"replicas\":[...]} with replicas starting with the owner.\n";

static int ctl_print_owner(const ctl_t *c, const herd_ring_t *r, const char *key,
                           unsigned long replicas)
{
    const char **names = calloc(replicas, sizeof(char *));
    if (names == NULL)
        return ctl_fail(c, 1, "ENOMEM", "out of memory");
    int n = herd_ring_owners(r, key, strlen(key), names, replicas);
    if (n < 0) {
        free(names);
        return ctl_fail(c, 1, herd_err_name(n), "%s", herd_strerror(n));
    }
    int rc = 0;
    if (c->json) {
        json_t *list = json_array();
        for (int i = 0; i < n; i++)
            json_array_append_new(list, json_string(names[i]));
        rc = ctl_print_json(json_pack("{s:s, s:s, s:o}", "key", key, "owner", names[0],
                                      "replicas", list));
    } else {
        printf("owner: %s\n", names[0]);
        if (replicas > 1) {
            printf("replicas:");
            for (int i = 0; i < n; i++)
                printf(" %s", names[i]);
            printf("\n");
        }
    }
    free(names);
    return rc;
}

/* ---- diff ------------------------------------------------------------------- */

static const char diff_help[] =
    "usage: ringctl [--json] diff --nodes NAME[:WEIGHT],... CHANGE...\n"
    "  CHANGE: --add NAME[:WEIGHT] | --remove NAME | --weight NAME:WEIGHT (repeatable)\n"
    "\n"
    "Show which share of the key space changes owner when the ring of --nodes\n"
    "changes as given, and from whom to whom.\n"
    "JSON: {\"moved_share\",\"moves\":[{\"from\",\"to\",\"share\"}]}; from/to is null\n"
    "where a side has no members.\n";

typedef struct ctl_change {
    int kind; /* 'a' add, 'r' remove, 'w' weight */
    const char *spec;
} ctl_change_t;

static int ctl_apply_change(const ctl_t *c, herd_ring_t *r, const ctl_change_t *ch)
{
    char name[HERD_RING_NAME_MAX + 1];
    uint32_t weight;
    int rc = ctl_parse_member(c, ch->spec, strlen(ch->spec), name, &weight);
    if (rc)
        return rc;
    if (ch->kind == 'a')
        rc = herd_ring_add(r, name, weight);
    else if (ch->kind == 'r')
        rc = herd_ring_remove(r, name);
    else if (strchr(ch->spec, ':') == NULL)
        return ctl_usage(c, "--weight wants NAME:WEIGHT, got '%s'", ch->spec);
    else
        rc = herd_ring_set_weight(r, name, weight);
    if (rc == HERD_EEXIST)
        return ctl_usage(c, "cannot add '%s': already a member", name);
    if (rc == HERD_ENOENT)
        return ctl_usage(c, "'%s' is not a member", name);
    if (rc)
        return ctl_fail(c, 1, herd_err_name(rc), "%s: %s", name, herd_strerror(rc));
    return 0;
}

static json_t *ctl_name_or_null(const herd_ring_diff_t *d, uint32_t i)
{
    return i == HERD_RING_NONE ? json_null() : json_string(d->names[i]);
}

static int ctl_print_diff(const ctl_t *c, const herd_ring_diff_t *d)
{
    if (c->json) {
        json_t *moves = json_array();
        for (size_t i = 0; i < d->total_count; i++) {
            const herd_ring_move_total_t *t = &d->totals[i];
            json_array_append_new(moves, json_pack("{s:o, s:o, s:f}", "from",
                                                   ctl_name_or_null(d, t->from), "to",
                                                   ctl_name_or_null(d, t->to), "share",
                                                   t->share));
        }
        return ctl_print_json(
            json_pack("{s:f, s:o}", "moved_share", d->moved_share, "moves", moves));
    }
    printf("moved: %.2f%% of the key space in %zu ranges\n", d->moved_share * 100.0,
           d->move_count);
    if (d->total_count == 0)
        return 0;
    printf("%-24s %-24s %8s\n", "FROM", "TO", "SHARE");
    for (size_t i = 0; i < d->total_count; i++) {
        const herd_ring_move_total_t *t = &d->totals[i];
        printf("%-24s %-24s %7.2f%%\n", t->from == HERD_RING_NONE ? "-" : d->names[t->from],
               t->to == HERD_RING_NONE ? "-" : d->names[t->to], t->share * 100.0);
    }
    return 0;
}

/* ---- command dispatch ------------------------------------------------------- */

typedef struct ctl_args {
    const char *nodes;
    const char *key;
    unsigned long replicas;
    ctl_change_t changes[64];
    size_t change_count;
    json_t *where; /* names --where: KEY -> VALUE; NULL when none given */
    int help;
} ctl_args_t;

static int ctl_parse_replicas(const ctl_t *c, const char *s, unsigned long *out)
{
    char *end;
    errno = 0;
    unsigned long n = strtoul(s, &end, 10);
    if (*s == '\0' || *end != '\0' || errno || n == 0 || n > HERD_RING_MAX_MEMBERS || *s == '-')
        return ctl_usage(c, "--replicas wants a whole number 1-%u, got '%s'",
                         HERD_RING_MAX_MEMBERS, s);
    *out = n;
    return 0;
}

/* One `names --where KEY=VALUE` into a->where, checked as the node's
 * metadata is (herd_meta_set): usage errors before any node is asked. */
static int ctl_parse_where(const ctl_t *c, const char *spec, ctl_args_t *a)
{
    const char *eq = strchr(spec, '=');
    if (eq == NULL || eq == spec)
        return ctl_usage(c, "--where wants KEY=VALUE, got '%.200s'", spec);
    size_t klen = (size_t)(eq - spec);
    if (klen > HERD_META_KEY_MAX)
        return ctl_usage(c, "--where key '%.*s...' is longer than %u bytes", 40, spec,
                         HERD_META_KEY_MAX);
    char key[HERD_META_KEY_MAX + 1];
    memcpy(key, spec, klen);
    key[klen] = '\0';
    if (strlen(eq + 1) > HERD_META_VALUE_MAX)
        return ctl_usage(c, "--where value of '%s' is longer than %u bytes", key,
                         HERD_META_VALUE_MAX);
    if (a->where == NULL && (a->where = json_object()) == NULL)
        return ctl_fail(c, 1, "ENOMEM", "out of memory");
    if (json_object_get(a->where, key))
        return ctl_usage(c, "--where key '%s' given twice", key);
    if (json_object_size(a->where) == HERD_META_MAX)
        return ctl_usage(c, "at most %u --where (metadata holds at most %u keys)",
                         HERD_META_MAX, HERD_META_MAX);
    json_t *v = json_string(eq + 1); /* NULL: not UTF-8, as no metadata can be */
    if (v == NULL || json_object_set_new(a->where, key, v) != 0)
        return ctl_usage(c, "--where '%.200s' is not UTF-8", spec);
    return 0;
}

/* Parse one command's options; positional KEY for `owner`. */
static int ctl_parse_args(const ctl_t *c, int argc, char **argv, ctl_args_t *a)
{
    static const struct option opts[] = {
        {"nodes", required_argument, NULL, 'n'},  {"replicas", required_argument, NULL, 'R'},
        {"add", required_argument, NULL, 'a'},    {"remove", required_argument, NULL, 'r'},
        {"weight", required_argument, NULL, 'w'}, {"help", no_argument, NULL, 'h'},
        {"where", required_argument, NULL, 'W'},  {NULL, 0, NULL, 0}};
    int is_diff = strcmp(c->cmd, "diff") == 0, opt, rc, idx = -1, seen_r = 0;
    optind = 0; /* re-initialise getopt for the command's own arguments */
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":", opts, &idx)) != -1) {
        if (opt == 'h') {
            a->help = 1;
        } else if (opt == 'n') {
            if (a->nodes)
                return ctl_usage(c, "--nodes given twice; give it once");
            a->nodes = optarg;
        } else if (opt == 'R' && strcmp(c->cmd, "owner") == 0) {
            if (seen_r++)
                return ctl_usage(c, "--replicas given twice; give it once");
            if ((rc = ctl_parse_replicas(c, optarg, &a->replicas)))
                return rc;
        } else if (opt == 'W' && strcmp(c->cmd, "names") == 0) {
            if ((rc = ctl_parse_where(c, optarg, a)))
                return rc;
        } else if ((opt == 'a' || opt == 'r' || opt == 'w') && is_diff) {
            if (a->change_count == sizeof(a->changes) / sizeof(a->changes[0]))
                return ctl_usage(c, "too many changes (at most 64)");
            a->changes[a->change_count++] = (ctl_change_t){opt, optarg};
        } else if (opt == ':') {
            return ctl_usage(c, "%s needs a value", argv[optind - 1]);
        } else if (opt != '?') {
            return ctl_usage(c, "option '--%s' does not apply to %s", opts[idx].name, c->cmd);
        } else {
            return ctl_usage(c, "unknown option '%s'", argv[optind - 1]);
        }
        idx = -1;
    }
    int want_key = strcmp(c->cmd, "owner") == 0 || strcmp(c->cmd, "whereis") == 0;
    int may_key = want_key || strcmp(c->cmd, "names") == 0;
    if (a->help)
        return 0;
    if (may_key && optind < argc)
        a->key = argv[optind++];
    if (want_key && a->key == NULL)
        return ctl_usage(c, strcmp(c->cmd, "owner") == 0 ? "missing KEY" : "missing NAME");
    if (optind < argc)
        return ctl_usage(c, "unexpected argument '%s'", argv[optind]);
    return 0;
}

static int ctl_run(const ctl_t *c, const ctl_args_t *a)
{
    int rc = 0;
    if (strcmp(c->cmd, "members") == 0 || strcmp(c->cmd, "stats") == 0 ||
        strcmp(c->cmd, "crdt") == 0)
        return ctl_run_live(c);
    if (strcmp(c->cmd, "names") == 0 || strcmp(c->cmd, "whereis") == 0)
        return ctl_run_names(c, a->key, a->where);
    if (strcmp(c->cmd, "diff") == 0 && a->change_count == 0)
        return ctl_usage(c, "give at least one --add, --remove or --weight");
    herd_ring_t *r = ctl_ring_from_nodes(c, a->nodes, &rc);
    if (r == NULL)
        return rc;
    if (strcmp(c->cmd, "ring") == 0) {
        rc = ctl_print_ring(c, r);
    } else if (strcmp(c->cmd, "owner") == 0) {
        rc = ctl_print_owner(c, r, a->key, a->replicas ? a->replicas : 1);
    } else {
        herd_ring_t *next = herd_ring_clone(r);
        herd_ring_diff_t d;
        for (size_t i = 0; next && rc == 0 && i < a->change_count; i++)
            rc = ctl_apply_change(c, next, &a->changes[i]);
        if (next == NULL)
            rc = ctl_fail(c, 1, "ENOMEM", "out of memory");
        else if (rc == 0 && (rc = herd_ring_compare(r, next, &d)) != 0)
            rc = ctl_fail(c, 1, herd_err_name(rc), "%s", herd_strerror(rc));
        else if (rc == 0)
            rc = ctl_print_diff(c, &d), herd_ring_diff_free(&d);
        herd_ring_free(next);
    }
    herd_ring_free(r);
    return rc;
}

static const char main_help[] =
    "usage: ringctl [--json] [--node ADDR] [--cookie-file FILE] COMMAND [ARGS]\n"
    "\n"
    "Planning (offline with --nodes; ring and owner ask the live node without it):\n"
    "  ring  [--nodes a,b:256,c]          members, points and ownership share\n"
    "  owner KEY [--nodes a,b,c] [--replicas N]   the owner of KEY and its successors\n"
    "  diff  --nodes a,b,c --add d        which share of the key space moves\n"
    "Live (ask the node at --node ADDR or HERD_NODE):\n"
    "  members                            the node's view of the cluster\n"
    "  stats                              frames in/out, rejected by reason, peers\n"
    "  names [PREFIX] [--where K=V]...    registered names, their nodes and pids\n"
    "  whereis NAME                       where the process registered as NAME runs\n"
    "  crdt                               the registry replica and its sync per peer\n"
    "  watch [--timeout-ms N]             the node's events as they happen, until interrupted\n"
    "Children (started by name; the ring's owner runs each):\n"
    "  start SERVICE NAME [ARG]           start a child, e.g. start counter c1\n"
    "        [--replicas N]               with N copies of its state (1-5)\n"
    "  call NAME REQUEST...               call it, e.g. call c1 incr 5\n"
    "  stop NAME                          terminate it (its spec goes)\n"
    "  children [NODE]                    every child, or those NODE runs, and replicas\n"
    "  handoffs                           moves in flight and recent, with timings\n"
    "  drain NODE [--off] [--timeout S]   move every child off NODE\n"
    "Faults and hand-made names:\n"
    "  block NODE / unblock NODE          drop / pass frames to and from NODE here\n"
    "  register NAME [KEY=VALUE...]       a holder process registered as NAME\n"
    "  unregister NAME                    remove NAME's registration\n"
    "Process groups:\n"
    "  groups [PREFIX]                    groups and their member counts\n"
    "  members GROUP                      a group's members: pid, node, metadata\n"
    "  publish GROUP MESSAGE...           cast MESSAGE to every member\n"
    "  join GROUP [KEY=VALUE...]          a holder process joined to GROUP\n"
    "  leave GROUP PID                    take PID out of GROUP\n"
    "\n"
    "Global options:\n"
    "  --json              one JSON document on stdout\n"
    "  --node ADDR         a node's control address (also HERD_NODE)\n"
    "  --cookie-file FILE  the cluster secret, for a TCP control address\n"
    "  --help              this text; 'ringctl COMMAND --help' for a command\n"
    "  --version           print ringctl's version (ringctl X.Y.Z) and exit\n"
    "Global options may also follow the command (ringctl stats --json); each\n"
    "option is given once (--add, --remove and --weight of diff repeat).\n"
    "\n"
    "Exit codes: 0 done, 1 failed (node unreachable, refused: nothing took\n"
    "effect), 2 usage error, 3 outcome unknown (EUNCERTAIN, ETIMEDOUT: a change\n"
    "that may or may not have taken effect, as a call whose callee's node went\n"
    "down after the request left, or a stop some member did not acknowledge).\n";

static const char *ctl_command_help(const char *cmd)
{
    if (strcmp(cmd, "ring") == 0)
        return ring_help;
    if (strcmp(cmd, "owner") == 0)
        return owner_help;
    if (strcmp(cmd, "diff") == 0)
        return diff_help;
    if (strcmp(cmd, "members") == 0)
        return members_help;
    if (strcmp(cmd, "stats") == 0)
        return stats_help;
    if (strcmp(cmd, "names") == 0)
        return names_help;
    if (strcmp(cmd, "crdt") == 0)
        return crdt_help;
    if (strcmp(cmd, "whereis") == 0)
        return whereis_help;
    if (strcmp(cmd, "watch") == 0)
        return ctl_watch_help;
    return NULL;
}

/* Take the global options --json, --node and --cookie-file out of argv
 * wherever they stand, before or after the command (`ringctl stats --json`),
 * up to a "--"; each may be given once. Returns -1 to go on, else an exit
 * code. */
static int ctl_take_globals(ctl_t *c, int *argc, char **argv)
{
    static const char *const names[] = {"--json", "--node", "--cookie-file"};
    int seen[3] = {0}, out = 1, i;
    for (i = 1; i < *argc && strcmp(argv[i], "--") != 0; i++) {
        int k = -1;
        const char *value = NULL;
        for (int j = 0; j < 3 && k < 0; j++) {
            size_t len = strlen(names[j]);
            if (strcmp(argv[i], names[j]) == 0)
                k = j;
            else if (j > 0 && strncmp(argv[i], names[j], len) == 0 && argv[i][len] == '=')
                k = j, value = argv[i] + len + 1;
        }
        if (k < 0) {
            argv[out++] = argv[i];
            continue;
        }
        if (seen[k]++)
            return ctl_usage(c, "%s given twice; give it once", names[k]);
        if (k > 0 && value == NULL) {
            if (i + 1 >= *argc)
                return ctl_usage(c, "%s needs a value", names[k]);
            value = argv[++i];
        }
        if (k == 0)
            c->json = 1;
        else if (k == 1)
            c->node = value;
        else
            c->cookie_file = value;
    }
    while (i < *argc)
        argv[out++] = argv[i++];
    argv[out] = NULL;
    *argc = out;
    return -1;
}

/* Global options, up to the command name. Returns -1 to go on, else an exit code. */
static int ctl_parse_global(ctl_t *c, int argc, char **argv)
{
    static const struct option opts[] = {{"json", no_argument, NULL, 'j'},
                                         {"node", required_argument, NULL, 'N'},
                                         {"cookie-file", required_argument, NULL, 'c'},
                                         {"help", no_argument, NULL, 'h'},
                                         {"version", no_argument, NULL, 'V'},
                                         {NULL, 0, NULL, 0}};
    int opt;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "+:", opts, NULL)) != -1) {
        if (opt == 'j')
            c->json = 1;
        else if (opt == 'N')
            c->node = optarg;
        else if (opt == 'c')
            c->cookie_file = optarg;
        else if (opt == 'h')
            return fputs(main_help, stdout), 0;
        else if (opt == 'V')
            return printf("ringctl %s\n", herd_version()), 0;
        else if (opt == ':')
            return ctl_usage(c, "%s needs a value", argv[optind - 1]);
        else
            return ctl_usage(c, "unknown option '%s'", argv[optind - 1]);
    }
    return -1;
}

int main(int argc, char **argv)
{
    ctl_t c = {0};
    c.node = getenv("HERD_NODE");
    int rc = ctl_take_globals(&c, &argc, argv);
    if (rc < 0)
        rc = ctl_parse_global(&c, argc, argv);
    if (rc >= 0)
        return rc;
    if (optind >= argc)
        return ctl_usage(&c, "missing COMMAND");
    const char *cmd = argv[optind];
    if (strcmp(cmd, "help") == 0) {
        const char *topic = optind + 1 < argc ? argv[optind + 1] : NULL;
        const char *h = topic == NULL                ? main_help
                        : ctl_children_help(topic)   ? ctl_children_help(topic)
                        : ctl_command_help(topic)    ? ctl_command_help(topic)
                                                     : ctl_groups_help(topic);
        fputs(h ? h : main_help, stdout);
        return 0;
    }
    if (ctl_children_help(cmd)) {
        c.cmd = cmd;
        return ctl_children_main(&c, argc - optind, argv + optind);
    }
    /* `members GROUP` is a group's members; `members` alone the cluster's */
    int group_members = strcmp(cmd, "members") == 0 && optind + 1 < argc &&
                        argv[optind + 1][0] != '-';
    if (ctl_groups_help(cmd) && (strcmp(cmd, "members") != 0 || group_members)) {
        c.cmd = cmd;
        return ctl_groups_main(&c, argc - optind, argv + optind);
    }
    const char *help = ctl_command_help(cmd);
    if (help == NULL)
        return ctl_usage(&c, "unknown command '%s'", cmd);
    c.cmd = cmd;
    if (strcmp(cmd, "watch") == 0)
        return ctl_watch_main(&c, argc - optind, argv + optind);
    ctl_args_t a = {0};
    rc = ctl_parse_args(&c, argc - optind, argv + optind, &a);
    if (rc == 0 && a.help)
        fputs(help, stdout);
    else if (rc == 0)
        rc = ctl_run(&c, &a);
    json_decref(a.where);
    return rc;
}
