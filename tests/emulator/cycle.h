/* cycle: the default scripted value of a target, a deterministic cycle of
 * CYCLE_SECS seconds with a per-target phase derived from the seed and the
 * target name. Relative to the v2 thresholds (warn 100, critical 200) each
 * cycle goes PASS -> CRITICAL (a direct jump) -> WARN (a step down) ->
 * PASS, dwelling CYCLE_FIRING_SECS in CRITICAL and in WARN (longer than the
 * v2 repeat interval of 100 s). Values vary every second inside their band
 * and are never on or near a threshold. */
#ifndef EMU_CYCLE_H
#define EMU_CYCLE_H

#include <stdint.h>

#define CYCLE_SECS 300
#define CYCLE_FIRING_SECS 130

/* The value of target at elapsed seconds since start (elapsed >= 0). */
double cycle_value(uint64_t seed, const char *target, double elapsed);

/* The phase of target in seconds, in [0, CYCLE_SECS): the cycle position at
 * elapsed 0. Exposed for tests. */
double cycle_phase(uint64_t seed, const char *target);

#endif
