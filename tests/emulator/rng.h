/* rng: stateless, seeded pseudo-random numbers. Every draw is a pure
 * function of its inputs (seed, counter, target, ...), so concurrent
 * threads need no shared generator state and runs are reproducible. */
#ifndef EMU_RNG_H
#define EMU_RNG_H

#include <stdint.h>

/* The splitmix64 finaliser: a bijective 64-bit mix. */
uint64_t rng_mix(uint64_t x);

/* A number in [0, 1) derived from x (53 random bits). */
double rng_unit(uint64_t x);

#endif
