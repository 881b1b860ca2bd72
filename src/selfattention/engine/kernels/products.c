/* Matrix products and LayerNorm for the engine's C model: the encoder (encoder.c) and the decoding
 * step (native_step.c) compute every Linear layer and every norm here. Nothing here runs on more
 * than one thread.
 *
 * Products: y (M, N) = x (M, K) . W^T + b with W (N, K) packed by selfattention_pack into panels
 * of NR output columns, each K x NR (zero-padded), so the inner loop reads W sequentially. The
 * micro-kernel keeps MR x NR sums in registers (GCC/Clang vector extensions; a `vec` is one
 * AVX-512 register where there is one).
 *
 * int8 products (a model quantised to int8): W is int8 with one scale per output column, packed
 * by selfattention_pack_int8 into panels of NR columns whose every 4 consecutive k share one
 * 32-bit lane. Each row of x is quantised on the fly, symmetrically, to q = round(x / s) in
 * [-127, 127] with s = max|x| / 127, and stored as q + 128 (unsigned); the sums over k are exact
 * integers (AVX-512 VNNI's vpdpbusd where the processor has it, plain C otherwise: the same
 * numbers), and y = s * scale[n] * (sum - 128 * sum_k W[n, k]) + b.
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
#include "products.h"

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

void sa_linear(const float *x, int64_t m, int64_t k, const weight_t *w, int64_t n, float *y, int64_t ldy,
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
    sa_linear(x, m, k, w, n, y, n, ACT_NONE, q, s);
    free(q);
    free(s);
    return 0;
}

void sa_add_norm(float *x, const float *add, int64_t m, int64_t d, const float *w, const float *b, float eps) {
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

void sa_norm_into(float *out, const float *x, int64_t m, int64_t d, const float *w, const float *b, float eps) {
    memcpy(out, x, sizeof(float) * (size_t)(m * d));
    sa_add_norm(out, NULL, m, d, w, b, eps);
}

const float *sa_sublayer_input(float *scratch, const float *x, int64_t m, int64_t d, int norm_first,
                               const float *w, const float *b, float eps)
{
    if (!norm_first) {
        return x;
    }
    sa_norm_into(scratch, x, m, d, w, b, eps);
    return scratch;
}

void sa_residual(float *x, const float *out, int64_t m, int64_t d, int norm_first, const float *w, const float *b,
                 float eps)
{
    if (norm_first) {
        for (int64_t i = 0; i < m * d; ++i) x[i] += out[i];
    } else {
        sa_add_norm(x, out, m, d, w, b, eps);
    }
}
