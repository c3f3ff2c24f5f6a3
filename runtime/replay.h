/*
 * replay.h - refuse replayed frames.
 *
 * Every frame carries its sender's incarnation and a sequence number that the
 * sender increments per frame. A receiver keeps, per sender, the greatest
 * sequence number accepted and a 64-frame window below it, so frames that
 * arrive reordered within the window are still accepted once each, while a
 * recorded frame sent again (same incarnation and sequence), one older than
 * the window, or one from an older incarnation is refused. A higher
 * incarnation (the sender restarted) resets the window, but only from a
 * frame addressed to the receiver's current start: a HELLO (addressed to
 * nobody in particular, so possibly recorded before this start) must not
 * move a window to a new incarnation, or a second node with a live member's
 * name, or a recording, would shut the live member's frames out.
 */
#ifndef HERD_REPLAY_H
#define HERD_REPLAY_H

#include <stdint.h>

#define REPLAY_WINDOW 64

typedef struct replay_window {
    uint64_t incarnation; /* 0: nothing accepted yet */
    uint64_t top;         /* greatest sequence accepted */
    uint64_t seen;        /* bit i: top - i was accepted */
} replay_window_t;

/* 1: accept (and remember) the frame; 0: refuse it. Sequence 0 and
 * incarnation 0 are never valid. A zeroed window is an empty one. */
int replay_accept(replay_window_t *w, uint64_t incarnation, uint64_t seq);

/* The same for a HELLO: at the window's incarnation it is replay_accept;
 * from a higher incarnation (or on an empty window) it is accepted and the
 * window left as it is, so the same HELLO may be accepted again (its answers
 * are rate-limited, membership.h); from a lower one it is refused. */
int replay_accept_hello(replay_window_t *w, uint64_t incarnation, uint64_t seq);

#endif
