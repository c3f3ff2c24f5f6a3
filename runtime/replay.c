/*
 * replay.c - per-sender replay window (replay.h).
 *
 * How it works. For the current incarnation the window keeps `top`, the
 * greatest sequence number accepted, and a 64-bit mask `seen` whose bit i
 * says whether `top - i` was accepted (bit 0, top itself, always is). A
 * frame above top slides the window up: the mask shifts left by the distance
 * (cleared entirely when it is 64 or more) and bit 0 is set. A frame at or
 * below top is accepted only if it lies within the 64 below-and-including
 * top and its bit is clear. This is the IPsec anti-replay window (RFC 4303,
 * 3.4.3) with an incarnation in front: a higher one means the sender
 * restarted and numbers from 1 again, so the window starts over; a lower one
 * is a recording from before the restart.
 *
 * A HELLO never moves the window to another incarnation (replay.h says
 * why): only frames addressed to the receiver's current start do.
 *
 * Incarnation 0 and sequence 0 are never valid: 0 in the window means
 * "nothing accepted yet", and senders number from 1.
 */
#include "replay.h"

static int replay_reset(replay_window_t *w, uint64_t incarnation, uint64_t seq)
{
    w->incarnation = incarnation;
    w->top = seq;
    w->seen = 1;
    return 1;
}

int replay_accept(replay_window_t *w, uint64_t incarnation, uint64_t seq)
{
    if (seq == 0 || incarnation == 0 || incarnation < w->incarnation)
        return 0;
    if (incarnation > w->incarnation)
        return replay_reset(w, incarnation, seq);
    if (seq > w->top) {
        uint64_t shift = seq - w->top;
        w->seen = shift >= REPLAY_WINDOW ? 1 : (w->seen << shift) | 1;
        w->top = seq;
        return 1;
    }
    uint64_t back = w->top - seq;
    if (back >= REPLAY_WINDOW)
        return 0;
    uint64_t bit = UINT64_C(1) << back;
    if (w->seen & bit)
        return 0;
    w->seen |= bit;
    return 1;
}

int replay_accept_hello(replay_window_t *w, uint64_t incarnation, uint64_t seq)
{
    if (seq == 0 || incarnation == 0 || incarnation < w->incarnation)
        return 0;
    if (incarnation > w->incarnation)
        return 1; /* a start not admitted by a frame to us yet: the window stays */
    return replay_accept(w, incarnation, seq);
}
