/* Scaled dot-product attention for a few query rows per (batch row, head): a decoding step.
 *
 * softmax(q k^T / sqrt(Dh)) v for each of the T query rows of each of the B x H (row, head) pairs,
 * over S keys, with an optional per-key mask (nonzero = may attend). The operands are read through
 * their strides (the key/value caches are views of wider tensors; each vector is contiguous); the output is written as
 * (B, T, H, Dh) contiguous: the heads already merged, as the output projection reads them.
 *
 * Built and loaded by few_queries.py with GCC or Clang (their vector extensions: a `vec` is
 * LANES floats, one AVX-512 register where the processor has them). Nothing here runs on more than
 * one thread.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define LANES 16
typedef float vec __attribute__((vector_size(LANES * sizeof(float)), aligned(sizeof(float))));

typedef struct { /* in floats; the last dimension (the head width) is contiguous */
    int64_t b, h, t;
} strides3;

static inline float sum_lanes(vec x) {
    float total = 0.0f;
    for (int j = 0; j < LANES; ++j) {
        total += x[j];
    }
    return total;
}

/* q . k over `width` contiguous floats. */
static float dot(const float *q, const float *k, int64_t width) {
    vec lanes = {0.0f};
    int64_t d = 0;
    for (; d + LANES <= width; d += LANES) {
        lanes += *(const vec *)(q + d) * *(const vec *)(k + d);
    }
    float total = sum_lanes(lanes);
    for (; d < width; ++d) {
        total += q[d] * k[d];
    }
    return total;
}

int selfattention_few_queries(
    const float *q, strides3 sq,
    const float *k, strides3 sk,
    const float *v, strides3 sv,
    const uint8_t *mask, int64_t mask_stride_b, int64_t mask_stride_s,
    float *out,
    int64_t batch, int64_t heads, int64_t queries, int64_t keys, int64_t width, float scale)
{
    float *weights = malloc(sizeof(float) * (size_t)(keys > 0 ? keys : 1));
    if (weights == NULL) {
        return 1;
    }
    for (int64_t b = 0; b < batch; ++b) {
        const uint8_t *allowed = mask == NULL ? NULL : mask + b * mask_stride_b;
        for (int64_t h = 0; h < heads; ++h) {
            const float *kh = k + b * sk.b + h * sk.h;
            const float *vh = v + b * sv.b + h * sv.h;
            for (int64_t t = 0; t < queries; ++t) {
                const float *qt = q + b * sq.b + h * sq.h + t * sq.t;
                float *o = out + ((b * queries + t) * heads + h) * width;
                /* Steps 1 and 2: the scaled scores, and their largest for a stable softmax. */
                float best = -INFINITY;
                for (int64_t s = 0; s < keys; ++s) {
                    if (allowed != NULL && !allowed[s * mask_stride_s]) {
                        weights[s] = -INFINITY;
                        continue;
                    }
                    weights[s] = dot(qt, kh + s * sk.t, width) * scale;
                    best = weights[s] > best ? weights[s] : best;
                }
                if (best == -INFINITY) { /* nothing may be attended: a zero output, never NaN */
                    memset(o, 0, sizeof(float) * (size_t)width);
                    continue;
                }
                /* Step 3: softmax. */
                float total = 0.0f;
                for (int64_t s = 0; s < keys; ++s) {
                    weights[s] = expf(weights[s] - best); /* a masked key's -inf gives 0 */
                    total += weights[s];
                }
                const float inverse = 1.0f / total;
                /* Step 4: the weighted sum of the values, LANES output floats at a time. */
                int64_t d0 = 0;
                for (; d0 + LANES <= width; d0 += LANES) {
                    vec lanes = {0.0f};
                    for (int64_t s = 0; s < keys; ++s) {
                        lanes += weights[s] * *(const vec *)(vh + s * sv.t + d0);
                    }
                    lanes *= inverse;
                    memcpy(o + d0, &lanes, sizeof lanes);
                }
                for (int64_t d = d0; d < width; ++d) {
                    float sum = 0.0f;
                    for (int64_t s = 0; s < keys; ++s) {
                        sum += weights[s] * vh[s * sv.t + d];
                    }
                    o[d] = sum * inverse;
                }
            }
        }
    }
    free(weights);
    return 0;
}
