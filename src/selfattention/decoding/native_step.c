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
 * Products: y (M, N) = x (M, K) . W^T + b with W (N, K) packed by selfattention_pack into panels
 * of NR output columns, each K x NR (zero-padded), so the inner loop reads W sequentially. The
 * micro-kernel keeps MR x NR sums in registers (GCC/Clang vector extensions; a `vec` is one
 * AVX-512 register where there is one). Nothing here runs on more than one thread.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define LANES 16
#define NR 32 /* output columns per panel: two vecs */
#define MR 8  /* rows per micro-kernel call */
typedef float vec __attribute__((vector_size(LANES * sizeof(float)), aligned(sizeof(float))));
typedef int32_t ivec __attribute__((vector_size(LANES * sizeof(int32_t)), aligned(sizeof(int32_t))));

enum { ACT_NONE = 0, ACT_RELU = 1, ACT_GELU = 2, ACT_SILU = 3 };

typedef struct { int64_t b, h, t; } strides3; /* as in few_queries.c */

int selfattention_few_queries(
    const float *q, strides3 sq, const float *k, strides3 sk, const float *v, strides3 sv,
    const uint8_t *mask, int64_t mask_stride_b, int64_t mask_stride_s, float *out,
    int64_t batch, int64_t heads, int64_t queries, int64_t keys, int64_t width, float scale);

/* The packed size, in floats, of an (n, k) weight. */
int64_t selfattention_packed_size(int64_t n, int64_t k) { return (n + NR - 1) / NR * NR * k; }

void selfattention_pack(const float *w, int64_t n, int64_t k, float *packed) {
    const int64_t panels = (n + NR - 1) / NR;
    for (int64_t p = 0; p < panels; ++p) {
        for (int64_t i = 0; i < k; ++i) {
            for (int64_t j = 0; j < NR; ++j) {
                const int64_t row = p * NR + j;
                packed[(p * k + i) * NR + j] = row < n ? w[row * k + i] : 0.0f;
            }
        }
    }
}

static inline float activate(float x, int act) {
    switch (act) {
    case ACT_RELU: return x > 0.0f ? x : 0.0f;
    case ACT_GELU: return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
    case ACT_SILU: return x / (1.0f + expf(-x));
    default: return x;
    }
}

/* rows x NR (or `cols` < NR at the last panel) of y; inlined for each constant `rows`. */
static inline __attribute__((always_inline)) void micro(
    int rows, const float *x, int64_t ldx, const float *panel, int64_t k, float *y, int64_t ldy,
    const float *bias, int64_t cols, int act)
{
    vec sum[MR][2];
    for (int r = 0; r < rows; ++r) {
        sum[r][0] = (vec){0.0f};
        sum[r][1] = (vec){0.0f};
    }
    for (int64_t i = 0; i < k; ++i) {
        const vec w0 = *(const vec *)(panel + i * NR), w1 = *(const vec *)(panel + i * NR + LANES);
        for (int r = 0; r < rows; ++r) {
            const float a = x[r * ldx + i];
            sum[r][0] += a * w0;
            sum[r][1] += a * w1;
        }
    }
    if (cols == NR && (act == ACT_NONE || act == ACT_RELU)) { /* a whole panel, in vectors */
        const vec zero = {0.0f};
        const vec b0 = bias == NULL ? zero : *(const vec *)bias;
        const vec b1 = bias == NULL ? zero : *(const vec *)(bias + LANES);
        for (int r = 0; r < rows; ++r) {
            vec lo = sum[r][0] + b0, hi = sum[r][1] + b1;
            if (act == ACT_RELU) {
                lo = (vec)((ivec)lo & (lo > zero));
                hi = (vec)((ivec)hi & (hi > zero));
            }
            memcpy(y + r * ldy, &lo, sizeof lo);
            memcpy(y + r * ldy + LANES, &hi, sizeof hi);
        }
        return;
    }
    for (int r = 0; r < rows; ++r) {
        float out[NR];
        memcpy(out, &sum[r][0], sizeof sum[r][0]);
        memcpy(out + LANES, &sum[r][1], sizeof sum[r][1]);
        for (int64_t j = 0; j < cols; ++j) {
            y[r * ldy + j] = activate(out[j] + (bias == NULL ? 0.0f : bias[j]), act);
        }
    }
}

#define MICRO(ROWS) \
    static void micro##ROWS(const float *x, int64_t ldx, const float *p, int64_t k, float *y, int64_t ldy, \
                            const float *b, int64_t cols, int act) { micro(ROWS, x, ldx, p, k, y, ldy, b, cols, act); }
MICRO(1) MICRO(2) MICRO(3) MICRO(4) MICRO(5) MICRO(6) MICRO(7) MICRO(8)
typedef void (*micro_fn)(const float *, int64_t, const float *, int64_t, float *, int64_t, const float *, int64_t, int);
static const micro_fn MICROS[MR + 1] = {NULL, micro1, micro2, micro3, micro4, micro5, micro6, micro7, micro8};

/* y (m, n), row stride ldy = act(x (m, k) . W^T + bias), W packed. */
static void linear(const float *x, int64_t m, int64_t k, const float *packed, const float *bias, int64_t n,
                   float *y, int64_t ldy, int act)
{
    const int64_t panels = (n + NR - 1) / NR;
    for (int64_t p = 0; p < panels; ++p) {
        const int64_t cols = n - p * NR < NR ? n - p * NR : NR;
        for (int64_t r = 0; r < m; r += MR) {
            const int64_t rows = m - r < MR ? m - r : MR;
            MICROS[rows](x + r * k, k, packed + p * k * NR, k, y + r * ldy + p * NR, ldy,
                         bias == NULL ? NULL : bias + p * NR, cols, act);
        }
    }
}

/* x (m, d) = LayerNorm(x + add), in place; `add` may be NULL. */
static void add_norm(float *x, const float *add, int64_t m, int64_t d, const float *w, const float *b, float eps) {
    for (int64_t r = 0; r < m; ++r) {
        float *row = x + r * d;
        if (add != NULL) {
            for (int64_t j = 0; j < d; ++j) {
                row[j] += add[r * d + j];
            }
        }
        float mean = 0.0f, var = 0.0f;
        for (int64_t j = 0; j < d; ++j) {
            mean += row[j];
        }
        mean /= (float)d;
        for (int64_t j = 0; j < d; ++j) {
            const float c = row[j] - mean;
            var += c * c;
        }
        const float inv = 1.0f / sqrtf(var / (float)d + eps);
        for (int64_t j = 0; j < d; ++j) {
            const float y = (row[j] - mean) * inv;
            row[j] = y * (w == NULL ? 1.0f : w[j]) + (b == NULL ? 0.0f : b[j]);
        }
    }
}

/* out (m, d) = LayerNorm(x). */
static void norm_into(float *out, const float *x, int64_t m, int64_t d, const float *w, const float *b, float eps) {
    memcpy(out, x, sizeof(float) * (size_t)(m * d));
    add_norm(out, NULL, m, d, w, b, eps);
}

typedef struct {
    int64_t d, heads, ff, vocab, layers;
    int32_t norm_first, activation, final_norm, pad_;
    float eps, embed_scale;
    const float *embed;     /* (V, D) */
    const float *positions; /* (P, D), P > the step's position */
    const float *out, *out_bias; /* packed (V, D); bias (V) or NULL */
    const float *final_w, *final_b;
} model_t;

typedef struct {
    const float *qkv, *qkv_b; /* packed (3D, D): W_Q, W_K, W_V stacked */
    const float *self_out, *self_out_b, *norm1_w, *norm1_b;
    const float *cross_q, *cross_q_b, *cross_out, *cross_out_b, *norm2_w, *norm2_b;
    const float *up, *up_b, *down, *down_b, *norm3_w, *norm3_b;
} layer_t;

/* Logits (rows, V) for the next token after `tokens` (rows) at `position`.
 * self_kv: (layers, 2, capacity, H, L, Dh), position < L; this step's keys and values are written at `position`.
 * cross_kv: (layers, 2, sources, H, S, Dh); source_mask (sources, S), nonzero = a real token; rows = G x sources.
 * Returns 0, or 1 when scratch memory cannot be had. */
int selfattention_step(
    const model_t *model, const layer_t *layers, const int64_t *tokens, int64_t rows, int64_t position,
    float *self_kv, int64_t capacity, int64_t max_len,
    const float *cross_kv, int64_t sources, int64_t source_len, const uint8_t *source_mask,
    float *logits)
{
    const int64_t d = model->d, heads = model->heads, dh = d / heads, ff = model->ff;
    const int64_t groups = rows / sources;
    const float scale = 1.0f / sqrtf((float)dh);
    float *x = malloc(sizeof(float) * (size_t)(rows * (6 * d + ff)));
    if (x == NULL) {
        return 1;
    }
    float *h = x + rows * d, *qkv = h + rows * d, *att = qkv + rows * 3 * d, *hidden = att + rows * d;
    for (int64_t r = 0; r < rows; ++r) {
        const float *e = model->embed + tokens[r] * d, *p = model->positions + position * d;
        for (int64_t j = 0; j < d; ++j) {
            x[r * d + j] = e[j] * model->embed_scale + p[j];
        }
    }
    const int64_t self_block = capacity * heads * max_len * dh, cross_block = sources * heads * source_len * dh;
    for (int64_t l = 0; l < model->layers; ++l) {
        const layer_t *w = layers + l;
        float *keys = self_kv + 2 * l * self_block, *values = keys + self_block;
        const float *source_keys = cross_kv + 2 * l * cross_block, *source_values = source_keys + cross_block;
        /* Self-attention over positions 0..position, this one's keys and values appended to the cache. */
        const float *in = x;
        if (model->norm_first) {
            norm_into(h, x, rows, d, w->norm1_w, w->norm1_b, model->eps);
            in = h;
        }
        linear(in, rows, d, w->qkv, w->qkv_b, 3 * d, qkv, 3 * d, ACT_NONE);
        for (int64_t r = 0; r < rows; ++r) {
            for (int64_t head = 0; head < heads; ++head) {
                const int64_t at = ((r * heads + head) * max_len + position) * dh;
                memcpy(keys + at, qkv + r * 3 * d + d + head * dh, sizeof(float) * (size_t)dh);
                memcpy(values + at, qkv + r * 3 * d + 2 * d + head * dh, sizeof(float) * (size_t)dh);
            }
        }
        const strides3 sq = {3 * d, dh, 0}, skv = {heads * max_len * dh, max_len * dh, dh};
        if (selfattention_few_queries(qkv, sq, keys, skv, values, skv, NULL, 0, 0, att,
                                      rows, heads, 1, position + 1, dh, scale)) {
            free(x);
            return 1;
        }
        linear(att, rows, d, w->self_out, w->self_out_b, d, h, d, ACT_NONE);
        if (model->norm_first) {
            for (int64_t i = 0; i < rows * d; ++i) x[i] += h[i];
        } else {
            add_norm(x, h, rows, d, w->norm1_w, w->norm1_b, model->eps);
        }
        /* Cross-attention: the G rows of a source attend to it as G queries. */
        in = x;
        if (model->norm_first) {
            norm_into(h, x, rows, d, w->norm2_w, w->norm2_b, model->eps);
            in = h;
        }
        linear(in, rows, d, w->cross_q, w->cross_q_b, d, qkv, d, ACT_NONE);
        const strides3 cq = {groups * d, dh, d}, ckv = {heads * source_len * dh, source_len * dh, dh};
        if (selfattention_few_queries(qkv, cq, source_keys, ckv, source_values, ckv, source_mask, source_len, 1,
                                      att, sources, heads, groups, source_len, dh, scale)) {
            free(x);
            return 1;
        }
        linear(att, rows, d, w->cross_out, w->cross_out_b, d, h, d, ACT_NONE);
        if (model->norm_first) {
            for (int64_t i = 0; i < rows * d; ++i) x[i] += h[i];
        } else {
            add_norm(x, h, rows, d, w->norm2_w, w->norm2_b, model->eps);
        }
        /* Feed-forward. */
        in = x;
        if (model->norm_first) {
            norm_into(h, x, rows, d, w->norm3_w, w->norm3_b, model->eps);
            in = h;
        }
        linear(in, rows, d, w->up, w->up_b, ff, hidden, ff, model->activation);
        linear(hidden, rows, ff, w->down, w->down_b, d, h, d, ACT_NONE);
        if (model->norm_first) {
            for (int64_t i = 0; i < rows * d; ++i) x[i] += h[i];
        } else {
            add_norm(x, h, rows, d, w->norm3_w, w->norm3_b, model->eps);
        }
    }
    if (model->final_norm) {
        add_norm(x, NULL, rows, d, model->final_w, model->final_b, model->eps);
    }
    linear(x, rows, d, model->out, model->out_bias, model->vocab, logits, model->vocab, ACT_NONE);
    free(x);
    return 0;
}

/* Row i of each of the `blocks` caches (capacity, H, L, Dh) becomes the old row index[i], for the
 * first `used` positions; rows may repeat (hypotheses of one sentence sharing a prefix). Every old
 * row is read before any is written, and a row that stays in place is not copied. Returns 0,
 * or 1 when scratch memory cannot be had. */
int selfattention_reorder(float *caches, int64_t blocks, int64_t capacity, int64_t heads, int64_t max_len,
                          int64_t width, const int64_t *index, int64_t rows, int64_t used)
{
    const int64_t span = used * width, row_size = heads * max_len * width;
    float *scratch = malloc(sizeof(float) * (size_t)(rows * heads * span > 0 ? rows * heads * span : 1));
    if (scratch == NULL) {
        return 1;
    }
    for (int64_t block = 0; block < blocks; ++block) {
        float *cache = caches + block * capacity * row_size;
        for (int64_t i = 0; i < rows; ++i) {
            if (index[i] == i) {
                continue; /* a row that stays where it is */
            }
            for (int64_t h = 0; h < heads; ++h) {
                memcpy(scratch + (i * heads + h) * span, cache + index[i] * row_size + h * max_len * width,
                       sizeof(float) * (size_t)span);
            }
        }
        for (int64_t i = 0; i < rows; ++i) {
            if (index[i] == i) {
                continue;
            }
            for (int64_t h = 0; h < heads; ++h) {
                memcpy(cache + i * row_size + h * max_len * width, scratch + (i * heads + h) * span,
                       sizeof(float) * (size_t)span);
            }
        }
    }
    free(scratch);
    return 0;
}
