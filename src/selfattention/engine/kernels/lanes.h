/* Vectors of LANES floats for the C kernels (GCC/Clang vector extensions: one AVX-512 register
 * where the processor has them, smaller registers or plain code elsewhere), and the few
 * operations on them that the kernels share. */
#ifndef SELFATTENTION_LANES_H
#define SELFATTENTION_LANES_H

#include <stdint.h>
#include <string.h>

#define LANES 16
typedef float vec __attribute__((vector_size(LANES * sizeof(float)), aligned(sizeof(float))));
typedef int32_t ivec __attribute__((vector_size(LANES * sizeof(int32_t)), aligned(sizeof(int32_t))));
typedef float half_vec __attribute__((vector_size(LANES / 2 * sizeof(float)), aligned(sizeof(float))));
typedef float quarter_vec __attribute__((vector_size(LANES / 4 * sizeof(float)), aligned(sizeof(float))));

/* The sum of the lanes, pairwise (halves, then quarters): a few vector additions, not 16 scalar ones. */
static inline float sum_lanes(vec x) {
    half_vec lo, hi;
    memcpy(&lo, &x, sizeof lo);
    memcpy(&hi, (const char *)&x + sizeof lo, sizeof hi);
    const half_vec half = lo + hi;
    quarter_vec a, b;
    memcpy(&a, &half, sizeof a);
    memcpy(&b, (const char *)&half + sizeof a, sizeof b);
    const quarter_vec quarter = a + b;
    return (quarter[0] + quarter[2]) + (quarter[1] + quarter[3]);
}

/* e^x in each lane, to a few float32 ulps (range reduction by ln 2, a degree-6 polynomial);
 * lanes below -87.3 (-inf among them) give 0. */
static inline vec exp_lanes(vec x) {
    const vec zero = {0.0f}, magic = zero + 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
    const vec ceiling = zero + 88.3f, floor_ = zero - 87.3f;
    const ivec high = x > ceiling, low = x < floor_;
    x = (vec)(((ivec)x & ~high) | ((ivec)ceiling & high));
    x = (vec)(((ivec)x & ~low) | ((ivec)floor_ & low));
    const vec t = x * 1.44269504088896341f + magic, n = t - magic;
    const vec r = x - n * 0.693359375f - n * -2.12194440e-4f;
    vec poly = zero + 1.9875691500e-4f;
    poly = poly * r + 1.3981999507e-3f;
    poly = poly * r + 8.3334519073e-3f;
    poly = poly * r + 4.1665795894e-2f;
    poly = poly * r + 1.6666665459e-1f;
    poly = poly * r + 5.0000001201e-1f;
    const vec y = poly * r * r + r + 1.0f;
    const ivec power = ((ivec)t - (ivec)magic + 127) << 23; /* 2^n */
    return (vec)((ivec)(y * (vec)power) & ~low);
}

#endif
