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
 *
 * int8 products (a model quantised to int8): W is int8 with one scale per output column, packed
 * by selfattention_pack_int8 into panels of NR columns whose every 4 consecutive k share one
 * 32-bit lane. Each row of x is quantised on the fly, symmetrically, to q = round(x / s) in
 * [-127, 127] with s = max|x| / 127, and stored as q + 128 (unsigned); the sums over k are exact
 * integers (AVX-512 VNNI's vpdpbusd where the processor has it, plain C otherwise: the same
 * numbers), and y = s * scale[n] * (sum - 128 * sum_k W[n, k]) + b.
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
#if defined(__AVX512VNNI__) && defined(__AVX512F__)
#define HAVE_VNNI 1
#endif

#include "engine.h"
#include "lanes.h"

#define NR 32 /* output columns per panel: two vecs */
#define MR 8  /* rows per micro-kernel call */

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

/* The packed size, in bytes, of an (n, k) int8 weight: k is padded to a multiple of 4. */
int64_t selfattention_packed_size_int8(int64_t n, int64_t k) { return (n + NR - 1) / NR * NR * ((k + 3) / 4 * 4); }

/* w (n, k) int8 into panels of NR columns, 4 k per column at a time; sums[j] = sum_k w[j, k]. */
void selfattention_pack_int8(const int8_t *w, int64_t n, int64_t k, int8_t *packed, int32_t *sums) {
    const int64_t panels = (n + NR - 1) / NR, groups = (k + 3) / 4;
    for (int64_t p = 0; p < panels; ++p) {
        for (int64_t g = 0; g < groups; ++g) {
            for (int64_t j = 0; j < NR; ++j) {
                const int64_t row = p * NR + j;
                for (int64_t t = 0; t < 4; ++t) {
                    const int64_t i = 4 * g + t;
                    packed[((p * groups + g) * NR + j) * 4 + t] = row < n && i < k ? w[row * k + i] : 0;
                }
            }
        }
    }
    for (int64_t j = 0; j < n; ++j) {
        int32_t sum = 0;
        for (int64_t i = 0; i < k; ++i) {
            sum += w[j * k + i];
        }
        sums[j] = sum;
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

/* y (m, n), row stride ldy = act(x (m, k) . W^T + bias), W float32 packed. */
static void linear_float(const float *x, int64_t m, int64_t k, const float *packed, const float *bias, int64_t n,
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

/* Each row of x (m, k) as unsigned q + 128, k padded to kp with 128 (q = 0); its scale in s[r].
 * q = round(x / scale) to the nearest, ties to even (as nearbyintf), LANES at a time. */
static void quantize_rows(const float *x, int64_t m, int64_t k, int64_t kp, uint8_t *q, float *s) {
    typedef uint8_t bytes __attribute__((vector_size(LANES)));
    const vec zero = {0.0f}, magic = zero + 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
    const vec most = zero + 127.0f, least = zero - 127.0f;
    for (int64_t r = 0; r < m; ++r) {
        const float *row = x + r * k;
        vec tops = zero;
        int64_t i = 0;
        for (; i + LANES <= k; i += LANES) {
            vec chunk;
            memcpy(&chunk, row + i, sizeof chunk);
            const vec a = (vec)((ivec)chunk & 0x7fffffff);
            tops = (vec)(((ivec)tops & (tops >= a)) | ((ivec)a & ~(tops >= a)));
        }
        float top = 0.0f;
        for (int lane = 0; lane < LANES; ++lane) {
            top = tops[lane] > top ? tops[lane] : top;
        }
        for (; i < k; ++i) {
            const float a = fabsf(row[i]);
            top = a > top ? a : top;
        }
        const float scale = top > 0.0f ? top / 127.0f : 1.0f, inverse = 1.0f / scale;
        s[r] = scale;
        uint8_t *out = q + r * kp;
        for (i = 0; i + LANES <= k; i += LANES) {
            vec v;
            memcpy(&v, row + i, sizeof v);
            v *= inverse;
            v = (vec)(((ivec)v & (v <= most)) | ((ivec)most & ~(v <= most))); /* clamped before rounding: */
            v = (vec)(((ivec)v & (v >= least)) | ((ivec)least & ~(v >= least))); /* the bounds are integers */
            v = (v + magic) - magic;
            const bytes b = __builtin_convertvector(__builtin_convertvector(v, ivec) + 128, bytes);
            memcpy(out + i, &b, sizeof b);
        }
        for (; i < k; ++i) {
            float v = nearbyintf(row[i] * inverse);
            v = v > 127.0f ? 127.0f : (v < -127.0f ? -127.0f : v);
            out[i] = (uint8_t)((int)v + 128);
        }
        for (i = k; i < kp; ++i) {
            out[i] = 128;
        }
    }
}

/* rows (<= MR) x NR integer sums of one panel: sums[r][j] = sum_k q[r, k] * W[p * NR + j, k];
 * inlined for each constant `rows`, so that the sums stay in registers. */
static inline __attribute__((always_inline)) void micro_int8(
    int rows, const uint8_t *q, int64_t kp, const int8_t *panel, int32_t sums[MR][NR])
{
    const int64_t groups = kp / 4;
#ifdef HAVE_VNNI
    /* Sixteen named accumulators, not an array: GCC keeps them in registers then (an array was
     * copied between registers and spilled at every step of k). */
    const __m512i zero = _mm512_setzero_si512();
    __m512i a00 = zero, a01 = zero, a10 = zero, a11 = zero, a20 = zero, a21 = zero, a30 = zero, a31 = zero;
    __m512i a40 = zero, a41 = zero, a50 = zero, a51 = zero, a60 = zero, a61 = zero, a70 = zero, a71 = zero;
    for (int64_t g = 0; g < groups; ++g) {
        const __m512i w0 = _mm512_loadu_si512(panel + g * NR * 4), w1 = _mm512_loadu_si512(panel + g * NR * 4 + 64);
#define ROW_INT8(R)                                                   \
        if (rows > R) {                                               \
            int32_t four;                                             \
            memcpy(&four, q + R * kp + 4 * g, sizeof four);           \
            const __m512i a = _mm512_set1_epi32(four);                \
            a##R##0 = _mm512_dpbusd_epi32(a##R##0, a, w0);            \
            a##R##1 = _mm512_dpbusd_epi32(a##R##1, a, w1);            \
        }
        ROW_INT8(0) ROW_INT8(1) ROW_INT8(2) ROW_INT8(3) ROW_INT8(4) ROW_INT8(5) ROW_INT8(6) ROW_INT8(7)
#undef ROW_INT8
    }
    const __m512i acc[MR][2] = {{a00, a01}, {a10, a11}, {a20, a21}, {a30, a31},
                                {a40, a41}, {a50, a51}, {a60, a61}, {a70, a71}};
    for (int r = 0; r < rows; ++r) {
        _mm512_storeu_si512(sums[r], acc[r][0]);
        _mm512_storeu_si512(sums[r] + LANES, acc[r][1]);
    }
#else
    for (int r = 0; r < rows; ++r) {
        for (int64_t j = 0; j < NR; ++j) {
            sums[r][j] = 0;
        }
        for (int64_t g = 0; g < groups; ++g) {
            const uint8_t *a = q + r * kp + 4 * g;
            const int8_t *w = panel + g * NR * 4;
            for (int64_t j = 0; j < NR; ++j) {
                sums[r][j] += a[0] * w[4 * j] + a[1] * w[4 * j + 1] + a[2] * w[4 * j + 2] + a[3] * w[4 * j + 3];
            }
        }
    }
#endif
}

#define MICRO_INT8(ROWS) \
    static void micro_int8_##ROWS(const uint8_t *q, int64_t kp, const int8_t *panel, int32_t sums[MR][NR]) { \
        micro_int8(ROWS, q, kp, panel, sums); }
MICRO_INT8(1) MICRO_INT8(2) MICRO_INT8(3) MICRO_INT8(4) MICRO_INT8(5) MICRO_INT8(6) MICRO_INT8(7) MICRO_INT8(8)
typedef void (*micro_int8_fn)(const uint8_t *, int64_t, const int8_t *, int32_t[MR][NR]);
static const micro_int8_fn MICROS_INT8[MR + 1] = {
    NULL, micro_int8_1, micro_int8_2, micro_int8_3, micro_int8_4, micro_int8_5, micro_int8_6, micro_int8_7, micro_int8_8,
};

/* As linear_float, for an int8 weight; `q` holds m * kp bytes and `s` m floats of scratch. */
static void linear_int8(const float *x, int64_t m, int64_t k, const weight_t *w, int64_t n, float *y, int64_t ldy,
                        int act, uint8_t *q, float *s)
{
    const int64_t kp = (k + 3) / 4 * 4, panels = (n + NR - 1) / NR;
    quantize_rows(x, m, k, kp, q, s);
    int32_t sums[MR][NR];
    for (int64_t p = 0; p < panels; ++p) {
        const int64_t cols = n - p * NR < NR ? n - p * NR : NR;
        const int8_t *panel = (const int8_t *)w->w + p * kp * NR;
        for (int64_t r = 0; r < m; r += MR) {
            const int rows = (int)(m - r < MR ? m - r : MR);
            MICROS_INT8[rows](q + r * kp, kp, panel, sums);
            if (cols == NR && (act == ACT_NONE || act == ACT_RELU)) { /* a whole panel, in vectors */
                const int64_t c = p * NR;
                vec scale[2], bias[2];
                ivec offset[2];
                for (int half = 0; half < 2; ++half) {
                    memcpy(&scale[half], w->scales + c + half * LANES, sizeof(vec));
                    memcpy(&offset[half], w->sums + c + half * LANES, sizeof(ivec));
                    offset[half] *= 128;
                    bias[half] = (vec){0.0f};
                    if (w->bias != NULL) {
                        memcpy(&bias[half], w->bias + c + half * LANES, sizeof(vec));
                    }
                }
                for (int i = 0; i < rows; ++i) {
                    for (int half = 0; half < 2; ++half) {
                        ivec total;
                        memcpy(&total, sums[i] + half * LANES, sizeof total);
                        vec v = __builtin_convertvector(total - offset[half], vec) * (s[r + i] * scale[half]) + bias[half];
                        if (act == ACT_RELU) {
                            v = (vec)((ivec)v & (v > (vec){0.0f}));
                        }
                        memcpy(y + (r + i) * ldy + c + half * LANES, &v, sizeof v);
                    }
                }
                continue;
            }
            for (int i = 0; i < rows; ++i) {
                float *out = y + (r + i) * ldy + p * NR;
                for (int64_t j = 0; j < cols; ++j) {
                    const int64_t c = p * NR + j;
                    const float v = s[r + i] * w->scales[c] * (float)(sums[i][j] - 128 * w->sums[c]);
                    out[j] = activate(v + (w->bias == NULL ? 0.0f : w->bias[c]), act);
                }
            }
        }
    }
}

/* y (m, n) = act(x (m, k) . W^T + bias), either kind of weight; q, s: int8 scratch (m * (k + 3), m). */
static void linear(const float *x, int64_t m, int64_t k, const weight_t *w, int64_t n, float *y, int64_t ldy,
                   int act, uint8_t *q, float *s)
{
    if (w->scales == NULL) {
        linear_float(x, m, k, (const float *)w->w, w->bias, n, y, ldy, act);
    } else {
        linear_int8(x, m, k, w, n, y, ldy, act, q, s);
    }
}

/* y (m, n) = x (m, k) . W^T + bias for one packed weight: quantize.py's Int8Linear (the int8 layers the step
 * does not compute) and tests. Returns 1 when scratch cannot be had. */
int selfattention_linear(const float *x, int64_t m, int64_t k, const weight_t *w, int64_t n, float *y) {
    uint8_t *q = malloc((size_t)(m * (k + 3) + 1));
    float *s = malloc(sizeof(float) * (size_t)(m + 1));
    if (q == NULL || s == NULL) {
        free(q);
        free(s);
        return 1;
    }
    linear(x, m, k, w, n, y, n, ACT_NONE, q, s);
    free(q);
    free(s);
    return 0;
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
        /* The mean, then the variance, each summed in LANES chains (then pairwise). */
        vec sums = {0.0f};
        int64_t j = 0;
        for (; j + LANES <= d; j += LANES) {
            vec chunk;
            memcpy(&chunk, row + j, sizeof chunk);
            sums += chunk;
        }
        float mean = sum_lanes(sums), var = 0.0f;
        for (; j < d; ++j) {
            mean += row[j];
        }
        mean /= (float)d;
        sums = (vec){0.0f};
        for (j = 0; j + LANES <= d; j += LANES) {
            vec chunk;
            memcpy(&chunk, row + j, sizeof chunk);
            chunk -= mean;
            sums += chunk * chunk;
        }
        var = sum_lanes(sums);
        for (; j < d; ++j) {
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
        const float *in = x;
        if (model->norm_first) {
            norm_into(h, x, rows, d, w->norm1_w, w->norm1_b, model->eps);
            in = h;
        }
        linear(in, rows, d, &w->qkv, 3 * d, qkv, 3 * d, ACT_NONE, qx, qs);
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
        linear(att, rows, d, &w->self_out, d, h, d, ACT_NONE, qx, qs);
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
        linear(in, rows, d, &w->cross_q, d, qkv, d, ACT_NONE, qx, qs);
        const strides3 cq = {groups * d, dh, d}, ckv = {heads * source_len * dh, source_len * dh, dh};
        if (selfattention_few_queries(qkv, cq, source_keys, ckv, source_values, ckv, source_mask, source_len, 1,
                                      att, sources, heads, groups, source_len, dh, scale)) {
            free(x);
            return 1;
        }
        linear(att, rows, d, &w->cross_out, d, h, d, ACT_NONE, qx, qs);
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
        linear(in, rows, d, &w->up, ff, hidden, ff, model->activation, qx, qs);
        linear(hidden, rows, ff, &w->down, d, h, d, ACT_NONE, qx, qs);
        if (model->norm_first) {
            for (int64_t i = 0; i < rows * d; ++i) x[i] += h[i];
        } else {
            add_norm(x, h, rows, d, w->norm3_w, w->norm3_b, model->eps);
        }
    }
    if (model->final_norm) {
        add_norm(x, NULL, rows, d, model->final_w, model->final_b, model->eps);
    }
    linear(x, rows, d, &model->out, model->vocab, logits, model->vocab, ACT_NONE, qx, qs);
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
