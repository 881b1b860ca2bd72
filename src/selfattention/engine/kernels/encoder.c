/* The encoder in C, for every source of a batch at once, and the decoder's cross-attention keys
 * and values of its output.
 *
 * selfattention_encode computes what model.encode(src) does at inference, on weights packed for
 * products.c: each token's embedding (scaled) plus its position, then per layer self-attention
 * over the sentence's real tokens (few_queries.c's kernel, every position a query) and the
 * feed-forward sublayer, each with its residual connection and LayerNorm (post-LN or pre-LN),
 * and the final LayerNorm where the model has one. Positions past a sentence's end (padding) are
 * computed like the others and attended to by nobody.
 *
 * selfattention_cross_kv projects that output once per search through each decoder layer's
 * cross-attention key and value weights, into the layout selfattention_step reads.
 *
 * Shapes: B sources, S positions each (padded), D model width, H heads, Dh = D / H, F
 * feed-forward width. The model and its layers are only read. Nothing here runs on more than one
 * thread.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "products.h"

/* memory (B, S, D): the encoder's output for tokens (B, S); source_mask (B, S), nonzero = a real
 * token; positions (P, D) with P >= S. Returns 0, or 1 when scratch memory cannot be had. */
int selfattention_encode(const model_t *model, const encoder_layer_t *layers, const float *positions,
                         const int64_t *tokens, int64_t sources, int64_t source_len, const uint8_t *source_mask,
                         float *memory)
{
    const int64_t d = model->d, heads = model->heads, dh = d / heads, ff = model->ff;
    const int64_t rows = sources * source_len;
    const float scale = 1.0f / sqrtf((float)dh);
    const int64_t widest = (ff > d ? ff : d) + 3;
    float *h = malloc(sizeof(float) * (size_t)(rows * (5 * d + ff + 1) + 1) + (size_t)(rows * widest));
    if (h == NULL) {
        return 1;
    }
    float *x = memory, *qkv = h + rows * d, *att = qkv + rows * 3 * d, *hidden = att + rows * d;
    float *qs = hidden + rows * ff;       /* int8 products: each row's scale */
    uint8_t *qx = (uint8_t *)(qs + rows); /* and its quantised values */
    for (int64_t r = 0; r < rows; ++r) {
        const float *e = model->embed + tokens[r] * d, *p = positions + (r % source_len) * d;
        for (int64_t j = 0; j < d; ++j) {
            x[r * d + j] = e[j] * model->embed_scale + p[j];
        }
    }
    for (int64_t l = 0; l < model->layers; ++l) {
        const encoder_layer_t *w = layers + l;
        const float *in = sa_sublayer_input(h, x, rows, d, model->norm_first, w->norm1_w, w->norm1_b, model->eps);
        sa_linear(in, rows, d, &w->qkv, 3 * d, qkv, 3 * d, ACT_NONE, qx, qs);
        /* Query t of source b, head j, lies at qkv[(b * S + t) * 3D + j * Dh]; its key at + D, value at + 2D. */
        const strides3 sqkv = {source_len * 3 * d, dh, 3 * d};
        if (selfattention_few_queries(qkv, sqkv, qkv + d, sqkv, qkv + 2 * d, sqkv, source_mask, source_len, 1, att,
                                      sources, heads, source_len, source_len, dh, scale)) {
            free(h);
            return 1;
        }
        sa_linear(att, rows, d, &w->out, d, h, d, ACT_NONE, qx, qs);
        sa_residual(x, h, rows, d, model->norm_first, w->norm1_w, w->norm1_b, model->eps);
        in = sa_sublayer_input(h, x, rows, d, model->norm_first, w->norm2_w, w->norm2_b, model->eps);
        sa_linear(in, rows, d, &w->up, ff, hidden, ff, model->activation, qx, qs);
        sa_linear(hidden, rows, ff, &w->down, d, h, d, ACT_NONE, qx, qs);
        sa_residual(x, h, rows, d, model->norm_first, w->norm2_w, w->norm2_b, model->eps);
    }
    if (model->final_norm) {
        sa_add_norm(x, NULL, rows, d, model->final_w, model->final_b, model->eps);
    }
    free(h);
    return 0;
}

/* cross_kv (layers, 2, B, H, S, Dh) from memory (B, S, D): layer l's keys (memory . K_l^T + b) and
 * values, each head's rows contiguous, as selfattention_step reads them; kv[l] is layer l's key
 * and value weights stacked, (2D, D). `model` is the decoder's (its width, heads and layers).
 * Returns 0, or 1 when scratch memory cannot be had. */
int selfattention_cross_kv(const model_t *model, const weight_t *kv, const float *memory, int64_t sources,
                           int64_t source_len, float *cross_kv)
{
    const int64_t d = model->d, heads = model->heads, dh = d / heads, rows = sources * source_len;
    float *both = malloc(sizeof(float) * (size_t)(rows * (2 * d + 1) + 1) + (size_t)(rows * (d + 3)));
    if (both == NULL) {
        return 1;
    }
    float *qs = both + rows * 2 * d;
    uint8_t *qx = (uint8_t *)(qs + rows);
    const int64_t block = sources * heads * source_len * dh; /* one layer's keys, or its values */
    for (int64_t l = 0; l < model->layers; ++l) {
        sa_linear(memory, rows, d, kv + l, 2 * d, both, 2 * d, ACT_NONE, qx, qs);
        for (int64_t kind = 0; kind < 2; ++kind) {
            float *out = cross_kv + (2 * l + kind) * block;
            for (int64_t b = 0; b < sources; ++b) {
                for (int64_t head = 0; head < heads; ++head) {
                    for (int64_t t = 0; t < source_len; ++t) {
                        memcpy(out + ((b * heads + head) * source_len + t) * dh,
                               both + (b * source_len + t) * 2 * d + kind * d + head * dh, sizeof(float) * (size_t)dh);
                    }
                }
            }
        }
    }
    free(both);
    return 0;
}
