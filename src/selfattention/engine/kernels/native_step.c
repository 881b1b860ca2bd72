/* One decoding step of a Transformer decoder, for every live row at once, in plain C.
 *
 * What model.decode(tokens, memory, mask, state=...) computes for one new position, on float32
 * weights laid out once for the matrix products here: the token's embedding and position, then
 * per layer masked self-attention over the cached keys and values (this step's appended), cross-
 * attention over the source's keys and values, the feed-forward sublayer, each with its residual
 * connection and LayerNorm (post-LN or pre-LN), and the projection to the vocabulary's logits.
 * The attention itself is few_queries.c's kernel, linked into the same library.
 *
 * Shapes: R live rows, D model width, H heads, Dh = D / H, F feed-forward width, V vocabulary,
 * L cache capacity (positions), S source length; a source row serves G = R / (source rows)
 * consecutive rows (beam search's hypotheses of one sentence).
 *
 * Its products and norms are products.c's.
 *
 * selfattention_best: beam search's use of the logits, each row's log-softmax and its k best
 * tokens, in one pass (a vector exp; chunks of 16 with nothing above the k-th best are skipped).
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "engine.h"
#include "lanes.h"
#include "products.h"

/* Logits (rows, V) for the next token after `tokens` (rows) at `position`; `positions` (P, D) is the
 * search's table of position vectors, P > position. The model and its layers are only read: searches
 * on one model may run at once, each with its own positions, caches and history.
 * self_kv: (layers, 2, capacity, H, L, Dh), position < L, rows <= capacity; row r's keys and values for this
 * position are written into cache row r at `position`. history (rows, L): row r's earlier positions p lie in
 * cache row history[r][p]; this step sets history[r][position] = r. A cache row's position is written
 * once, so keeping some hypotheses (rows of history, by whoever calls) moves no cache row.
 * cross_kv: (layers, 2, sources, H, S, Dh); source_mask (sources, S), nonzero = a real token; rows = G x sources.
 * Returns 0, or 1 when scratch memory cannot be had. */
int selfattention_step(
    const model_t *model, const layer_t *layers, const float *positions, const int64_t *tokens, int64_t rows,
    int64_t position, float *self_kv, int64_t capacity, int64_t max_len, int64_t *history,
    const float *cross_kv, int64_t sources, int64_t source_len, const uint8_t *source_mask, float *logits)
{
    const int64_t d = model->d, heads = model->heads, dh = d / heads, ff = model->ff;
    const int64_t groups = rows / sources;
    const float scale = 1.0f / sqrtf((float)dh);
    const int64_t widest = (ff > d ? ff : d) + 3;
    float *x = malloc(sizeof(float) * (size_t)(rows * (6 * d + ff + 1)) + (size_t)(rows * widest));
    if (x == NULL) {
        return 1;
    }
    float *h = x + rows * d, *qkv = h + rows * d, *att = qkv + rows * 3 * d, *hidden = att + rows * d;
    float *qs = hidden + rows * ff;             /* int8 products: each row's scale */
    uint8_t *qx = (uint8_t *)(qs + rows);       /* and its quantised values */
    for (int64_t r = 0; r < rows; ++r) {
        const float *e = model->embed + tokens[r] * d, *p = positions + position * d;
        for (int64_t j = 0; j < d; ++j) {
            x[r * d + j] = e[j] * model->embed_scale + p[j];
        }
        history[r * max_len + position] = r; /* every layer writes this position into cache row r */
    }
    const int64_t self_block = capacity * heads * max_len * dh, cross_block = sources * heads * source_len * dh;
    for (int64_t l = 0; l < model->layers; ++l) {
        const layer_t *w = layers + l;
        float *keys = self_kv + 2 * l * self_block, *values = keys + self_block;
        const float *source_keys = cross_kv + 2 * l * cross_block, *source_values = source_keys + cross_block;
        /* Self-attention over positions 0..position, this one's keys and values appended to the cache. */
        const float *in = sa_sublayer_input(h, x, rows, d, model->norm_first, w->norm1_w, w->norm1_b, model->eps);
        sa_linear(in, rows, d, &w->qkv, 3 * d, qkv, 3 * d, ACT_NONE, qx, qs);
        for (int64_t r = 0; r < rows; ++r) {
            for (int64_t head = 0; head < heads; ++head) {
                const int64_t at = ((r * heads + head) * max_len + position) * dh;
                memcpy(keys + at, qkv + r * 3 * d + d + head * dh, sizeof(float) * (size_t)dh);
                memcpy(values + at, qkv + r * 3 * d + 2 * d + head * dh, sizeof(float) * (size_t)dh);
            }
        }
        const strides3 sq = {3 * d, dh, 0}, skv = {heads * max_len * dh, max_len * dh, dh};
        if (selfattention_few_queries_traced(qkv, sq, keys, skv, values, skv, NULL, 0, 0, att,
                                             rows, heads, 1, position + 1, dh, scale, history, max_len)) {
            free(x);
            return 1;
        }
        sa_linear(att, rows, d, &w->self_out, d, h, d, ACT_NONE, qx, qs);
        sa_residual(x, h, rows, d, model->norm_first, w->norm1_w, w->norm1_b, model->eps);
        /* Cross-attention: the G rows of a source attend to it as G queries. */
        in = sa_sublayer_input(h, x, rows, d, model->norm_first, w->norm2_w, w->norm2_b, model->eps);
        sa_linear(in, rows, d, &w->cross_q, d, qkv, d, ACT_NONE, qx, qs);
        const strides3 cq = {groups * d, dh, d}, ckv = {heads * source_len * dh, source_len * dh, dh};
        if (selfattention_few_queries(qkv, cq, source_keys, ckv, source_values, ckv, source_mask, source_len, 1,
                                      att, sources, heads, groups, source_len, dh, scale)) {
            free(x);
            return 1;
        }
        sa_linear(att, rows, d, &w->cross_out, d, h, d, ACT_NONE, qx, qs);
        sa_residual(x, h, rows, d, model->norm_first, w->norm2_w, w->norm2_b, model->eps);
        /* Feed-forward. */
        in = sa_sublayer_input(h, x, rows, d, model->norm_first, w->norm3_w, w->norm3_b, model->eps);
        sa_linear(in, rows, d, &w->up, ff, hidden, ff, model->activation, qx, qs);
        sa_linear(hidden, rows, ff, &w->down, d, h, d, ACT_NONE, qx, qs);
        sa_residual(x, h, rows, d, model->norm_first, w->norm3_w, w->norm3_b, model->eps);
    }
    if (model->final_norm) {
        sa_add_norm(x, NULL, rows, d, model->final_w, model->final_b, model->eps);
    }
    sa_linear(x, rows, d, &model->out, model->vocab, logits, model->vocab, ACT_NONE, qx, qs);
    free(x);
    return 0;
}

/* Whether any lane of x is above t. */
static inline int any_above(vec x, float t) {
#if defined(__AVX512F__)
    __m512 v;
    memcpy(&v, &x, sizeof v);
    return _mm512_cmp_ps_mask(v, _mm512_set1_ps(t), _CMP_GT_OQ) != 0;
#else
    const ivec above = x > ((vec){0.0f} + t);
    int any = 0;
    for (int lane = 0; lane < LANES; ++lane) {
        any |= above[lane];
    }
    return any;
#endif
}

/* Each row of logits (rows, vocab): the log-probabilities (log-softmax over the whole row:
 * x - max - log sum e^(x - max)) of its k <= 64 best columns other than the `banned` ones, best
 * first (ties: the lower column), into values and indices (rows, k), and of column `eos` into
 * eos_out (rows); the banned columns are left at -inf. Returns 0, or 1 for a k out of range. */
int selfattention_best(float *logits, int64_t rows, int64_t vocab, int64_t k, const int64_t *banned,
                       int64_t banned_count, int64_t eos, float *values, int64_t *indices, float *eos_out)
{
    if (k < 1 || k > 64 || k + banned_count > vocab) {
        return 1;
    }
    for (int64_t r = 0; r < rows; ++r) {
        float *row = logits + r * vocab;
        /* The row's maximum and sum of e^(x - max), banned columns included (they are possible tokens, only not chosen). */
        vec most = (vec){0.0f} - INFINITY;
        int64_t i = 0;
        for (; i + LANES <= vocab; i += LANES) {
            vec chunk;
            memcpy(&chunk, row + i, sizeof chunk);
            most = (vec)(((ivec)most & (most >= chunk)) | ((ivec)chunk & ~(most >= chunk)));
        }
        float top = -INFINITY;
        for (int lane = 0; lane < LANES; ++lane) {
            top = most[lane] > top ? most[lane] : top;
        }
        for (; i < vocab; ++i) {
            top = row[i] > top ? row[i] : top;
        }
        float log_sum = 0.0f;
        if (top != -INFINITY) {
            vec sums = {0.0f};
            for (i = 0; i + LANES <= vocab; i += LANES) {
                vec chunk;
                memcpy(&chunk, row + i, sizeof chunk);
                sums += exp_lanes(chunk - top);
            }
            float sum = 0.0f;
            for (int lane = 0; lane < LANES; ++lane) {
                sum += sums[lane];
            }
            for (; i < vocab; ++i) {
                sum += expf(row[i] - top);
            }
            log_sum = logf(sum);
        }
        eos_out[r] = row[eos] - top - log_sum;
        for (int64_t b = 0; b < banned_count; ++b) {
            row[banned[b]] = -INFINITY;
        }
        /* The k best: a chunk with nothing above the k-th best so far is skipped whole. */
        float best[64];
        int64_t at[64];
        int64_t count = 0;
        for (i = 0; i < vocab; i += LANES) {
            const int64_t end = i + LANES <= vocab ? i + LANES : vocab;
            if (count == k && end - i == LANES) {
                vec chunk;
                memcpy(&chunk, row + i, sizeof chunk);
                if (!any_above(chunk, best[k - 1])) {
                    continue;
                }
            }
            for (int64_t j = i; j < end; ++j) {
                const float v = row[j];
                if (count == k && !(v > best[k - 1])) {
                    continue;
                }
                int64_t slot = count < k ? count++ : k - 1;
                while (slot > 0 && v > best[slot - 1]) {
                    best[slot] = best[slot - 1];
                    at[slot] = at[slot - 1];
                    --slot;
                }
                best[slot] = v;
                at[slot] = j;
            }
        }
        for (int64_t j = 0; j < k; ++j) {
            values[r * k + j] = top == -INFINITY ? -INFINITY : best[j] - top - log_sum;
            indices[r * k + j] = at[j];
        }
        if (top == -INFINITY) {
            eos_out[r] = -INFINITY;
        }
    }
    return 0;
}
