/* Scaled dot-product attention for a few query rows per (batch row, head): a decoding step.
 *
 * softmax(q k^T / sqrt(Dh)) v for each of the T query rows of each of the B x H (row, head) pairs,
 * over S keys, with an optional per-key mask (nonzero = may attend). The operands are read through
 * their strides (the key/value caches are views of wider tensors; each vector is contiguous); the output is written as
 * (B, T, H, Dh) contiguous: the heads already merged, as the output projection reads them.
 * selfattention_few_queries_traced reads key s of row b from row key_rows[b][s] of the keys and values
 * instead of row b: beam search's hypotheses read their history from the rows their parents wrote,
 * so that keeping a hypothesis moves no cache row.
 *
 * Linked into the engine's one library with native_step.c (the C decoding step calls it);
 * few_queries.py calls it from Python for tests. GCC or Clang (their vector extensions: a `vec` is
 * LANES floats, one AVX-512 register where the library is built for them). Nothing here runs on
 * more than one thread.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "lanes.h"

/* q . k over `width` contiguous floats (two chains of sums, then the lanes pairwise). */
static inline float dot(const float *q, const float *k, int64_t width) {
    vec even = {0.0f}, odd = {0.0f};
    int64_t d = 0;
    for (; d + 2 * LANES <= width; d += 2 * LANES) {
        even += *(const vec *)(q + d) * *(const vec *)(k + d);
        odd += *(const vec *)(q + d + LANES) * *(const vec *)(k + d + LANES);
    }
    if (d + LANES <= width) {
        even += *(const vec *)(q + d) * *(const vec *)(k + d);
        d += LANES;
    }
    float total = sum_lanes(even + odd);
    for (; d < width; ++d) {
        total += q[d] * k[d];
    }
    return total;
}

/* o (width) = sum_s weights[s] * v[v_at[s]] * inverse, the key loop outside so that each of the
 * WIDTH / LANES sums is its own chain; inlined for a constant width of a few vectors. */
static inline __attribute__((always_inline)) void weighted_sum(
    const float *weights, const float *v, const int64_t *v_at, int64_t keys, int64_t width, float inverse, float *o)
{
    enum { MOST = 8 }; /* vectors kept in registers: head widths up to 128 */
    if (width % LANES == 0 && width / LANES <= MOST) {
        const int64_t n = width / LANES;
        vec sums[MOST];
        for (int64_t j = 0; j < n; ++j) {
            sums[j] = (vec){0.0f};
        }
        for (int64_t s = 0; s < keys; ++s) {
            const float w = weights[s];
            const float *row = v + v_at[s];
            for (int64_t j = 0; j < n; ++j) {
                sums[j] += w * *(const vec *)(row + j * LANES);
            }
        }
        for (int64_t j = 0; j < n; ++j) {
            const vec out = sums[j] * inverse;
            memcpy(o + j * LANES, &out, sizeof out);
        }
        return;
    }
    for (int64_t d = 0; d < width; ++d) {
        o[d] = 0.0f;
    }
    for (int64_t s = 0; s < keys; ++s) {
        for (int64_t d = 0; d < width; ++d) {
            o[d] += weights[s] * v[v_at[s] + d];
        }
    }
    for (int64_t d = 0; d < width; ++d) {
        o[d] *= inverse;
    }
}

/* One query row's softmax(q k^T * scale) v into o, key s at kh + k_at[s] and its value at vh + v_at[s];
 * `weights` holds `keys` floats rounded up to LANES. */
static inline __attribute__((always_inline)) void attend(
    const float *qt, const float *kh, const int64_t *k_at, const float *vh, const int64_t *v_at,
    const uint8_t *allowed, int64_t mask_stride_s, int64_t keys, int64_t width, float scale, float *weights, float *o)
{
    /* Steps 1 and 2: the scaled scores, and their largest for a stable softmax. */
    float best = -INFINITY;
    for (int64_t s = 0; s < keys; ++s) {
        if (allowed != NULL && !allowed[s * mask_stride_s]) {
            weights[s] = -INFINITY;
            continue;
        }
        weights[s] = dot(qt, kh + k_at[s], width) * scale;
        best = weights[s] > best ? weights[s] : best;
    }
    if (best == -INFINITY) { /* nothing may be attended: a zero output, never NaN */
        memset(o, 0, sizeof(float) * (size_t)width);
        return;
    }
    /* Step 3: softmax, LANES exponentials at a time (a masked key's -inf gives 0). */
    const int64_t padded = (keys + LANES - 1) / LANES * LANES;
    for (int64_t s = keys; s < padded; ++s) {
        weights[s] = -INFINITY;
    }
    vec totals = {0.0f};
    for (int64_t s = 0; s < padded; s += LANES) {
        vec chunk;
        memcpy(&chunk, weights + s, sizeof chunk);
        chunk = exp_lanes(chunk - best);
        memcpy(weights + s, &chunk, sizeof chunk);
        totals += chunk;
    }
    /* Step 4: the weighted sum of the values. */
    weighted_sum(weights, vh, v_at, keys, width, 1.0f / sum_lanes(totals), o);
}

/* Both entry points: key s of row b in row key_rows[b * rows_stride + s], or in row b where key_rows is NULL. */
static int few_queries(
    const float *q, strides3 sq, const float *k, strides3 sk, const float *v, strides3 sv,
    const uint8_t *mask, int64_t mask_stride_b, int64_t mask_stride_s, float *out,
    int64_t batch, int64_t heads, int64_t queries, int64_t keys, int64_t width, float scale,
    const int64_t *key_rows, int64_t rows_stride)
{
    const int64_t padded = (keys + LANES - 1) / LANES * LANES + LANES;
    float *weights = malloc(sizeof(float) * (size_t)padded + 2 * sizeof(int64_t) * (size_t)(keys > 0 ? keys : 1));
    if (weights == NULL) {
        return 1;
    }
    int64_t *k_at = (int64_t *)(weights + padded), *v_at = k_at + keys; /* each key's offset, in floats */
    for (int64_t b = 0; b < batch; ++b) {
        const uint8_t *allowed = mask == NULL ? NULL : mask + b * mask_stride_b;
        for (int64_t s = 0; s < keys; ++s) {
            const int64_t row = key_rows == NULL ? b : key_rows[b * rows_stride + s];
            k_at[s] = row * sk.b + s * sk.t;
            v_at[s] = row * sv.b + s * sv.t;
        }
        for (int64_t h = 0; h < heads; ++h) {
            const float *kh = k + h * sk.h;
            const float *vh = v + h * sv.h;
            for (int64_t t = 0; t < queries; ++t) {
                const float *qt = q + b * sq.b + h * sq.h + t * sq.t;
                float *o = out + ((b * queries + t) * heads + h) * width;
                if (width == 64) { /* the common head width, inlined as a constant */
                    attend(qt, kh, k_at, vh, v_at, allowed, mask_stride_s, keys, 64, scale, weights, o);
                } else {
                    attend(qt, kh, k_at, vh, v_at, allowed, mask_stride_s, keys, width, scale, weights, o);
                }
            }
        }
    }
    free(weights);
    return 0;
}

int selfattention_few_queries(
    const float *q, strides3 sq,
    const float *k, strides3 sk,
    const float *v, strides3 sv,
    const uint8_t *mask, int64_t mask_stride_b, int64_t mask_stride_s,
    float *out,
    int64_t batch, int64_t heads, int64_t queries, int64_t keys, int64_t width, float scale)
{
    return few_queries(q, sq, k, sk, v, sv, mask, mask_stride_b, mask_stride_s, out, batch, heads, queries, keys,
                       width, scale, NULL, 0);
}

int selfattention_few_queries_traced(
    const float *q, strides3 sq, const float *k, strides3 sk, const float *v, strides3 sv,
    const uint8_t *mask, int64_t mask_stride_b, int64_t mask_stride_s, float *out,
    int64_t batch, int64_t heads, int64_t queries, int64_t keys, int64_t width, float scale,
    const int64_t *key_rows, int64_t rows_stride)
{
    return few_queries(q, sq, k, sk, v, sv, mask, mask_stride_b, mask_stride_s, out, batch, heads, queries, keys,
                       width, scale, key_rows, rows_stride);
}
