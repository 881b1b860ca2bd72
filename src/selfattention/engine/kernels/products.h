/* The products and norms products.c shares with the other kernels of the library (not exported). */
#ifndef SELFATTENTION_PRODUCTS_H
#define SELFATTENTION_PRODUCTS_H

#include <stdint.h>

#include "engine.h"

#define HIDDEN __attribute__((visibility("hidden")))

/* y (m, n), row stride ldy = act(x (m, k) . W^T + bias), either kind of weight; q, s: int8 scratch
 * (m * (k + 3) bytes, m floats). */
HIDDEN void sa_linear(const float *x, int64_t m, int64_t k, const weight_t *w, int64_t n, float *y, int64_t ldy,
                      int act, uint8_t *q, float *s);

/* x (m, d) = LayerNorm(x + add), in place; `add` may be NULL; w, b NULL: 1 and 0. */
HIDDEN void sa_add_norm(float *x, const float *add, int64_t m, int64_t d, const float *w, const float *b, float eps);

/* out (m, d) = LayerNorm(x). */
HIDDEN void sa_norm_into(float *out, const float *x, int64_t m, int64_t d, const float *w, const float *b, float eps);

/* A sublayer's input (model_t's placement): LayerNorm(x) into `scratch` before the sublayer (pre-LN), or x itself
 * (post-LN). */
HIDDEN const float *sa_sublayer_input(float *scratch, const float *x, int64_t m, int64_t d, int norm_first,
                                      const float *w, const float *b, float eps);

/* The residual connection after a sublayer whose output is `out`: x += out (pre-LN), or x = LayerNorm(x + out)
 * (post-LN). */
HIDDEN void sa_residual(float *x, const float *out, int64_t m, int64_t d, int norm_first, const float *w,
                        const float *b, float eps);

#endif
