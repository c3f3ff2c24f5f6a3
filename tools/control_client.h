/*
 * control_client.h - asking a node's control socket (control.h) a question.
 */
#ifndef HERD_CONTROL_CLIENT_H
#define HERD_CONTROL_CLIENT_H

#include <stddef.h>

#include <jansson.h>

/* Outcome of a request. */
typedef enum control_outcome {
    CONTROL_OK,          /* *result holds the node's answer */
    CONTROL_REFUSED,     /* the node answered with an error: code and message */
    CONTROL_UNREACHABLE, /* no answer within the timeout, or a bad address */
} control_outcome_t;

typedef struct control_reply {
    control_outcome_t outcome;
    /* the request left for the node: an UNREACHABLE outcome then means no
     * answer in time, and the node may have acted on it */
    int sent;
    json_t *result;    /* CONTROL_OK: a new reference */
    char code[32];     /* CONTROL_REFUSED: e.g. "ENOENT" */
    int app_code;      /* CONTROL_REFUSED "EAPP": the service's own error code */
    char message[512]; /* what went wrong, for people */
} control_reply_t;

/* The largest request a node takes (its control socket answers a larger
 * one with ETOOBIG); control_request refuses one itself. */
#define CONTROL_MAX_REQUEST_BYTES (64u << 10)

/* Send {"id", "cmd", "args"} to `address` and wait up to timeout_ms for the
 * answer. Request ids are random per process plus a counter. `args` may be
 * NULL; it is not stolen. Free reply->result with json_decref. */
void control_request(const char *address, const char *cmd, json_t *args, int timeout_ms,
                     control_reply_t *reply);

/* Answers up to CONTROL_ANSWER_MAX bytes are taken (nanomsg's own limit is
 * 1 MiB); long listings come in pages well under it. */
#define CONTROL_ANSWER_MAX (64 << 20)
/* Pages asked for by control_request_list. */
#define CONTROL_LIST_LIMIT 1000

/* A listing command (`names`, `children`: control_list.h) fetched page after
 * page, CONTROL_LIST_LIMIT items each, every page within timeout_ms; on
 * CONTROL_OK reply->result is the array of every item, as one un-paged
 * answer would hold. */
void control_request_list(const char *address, const char *cmd, json_t *args, int timeout_ms,
                          control_reply_t *reply);

#endif
