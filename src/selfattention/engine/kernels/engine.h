/* What the engine's C files share with each other and with their loader: the structs and every
 * exported function. engine/library.py mirrors the structs with ctypes and, when it loads a
 * library, checks SELFATTENTION_ABI_VERSION and each struct's size and each field's offset
 * (abi.c) against its mirrors, refusing a library that disagrees.
 *
 * Change a struct or a prototype here: raise SELFATTENTION_ABI_VERSION, and change the mirrors
 * and ABI_VERSION in library.py with it.
 */
#ifndef SELFATTENTION_ENGINE_H
#define SELFATTENTION_ENGINE_H

#include <stdint.h>

#define SELFATTENTION_ABI_VERSION 2

/* A (B, H, T, Dh) operand's strides, in floats; the last dimension (the head width) is contiguous. */
typedef struct {
    int64_t b, h, t;
} strides3;

/* A Linear layer's weight: float32 packed (scales NULL), or int8 packed with a scale and a sum per column. */
typedef struct {
    const void *w;
    const float *bias;   /* (n) or NULL */
    const float *scales; /* (n) for int8, else NULL */
    const int32_t *sums; /* (n) for int8 */
} weight_t;

/* The decoder's settings and its weights outside the layers; every layer shares the settings. */
typedef struct {
    int64_t d, heads, ff, vocab, layers;
    int32_t norm_first, activation, final_norm, pad_;
    float eps, embed_scale;
    const float *embed; /* (V, D) */
    const float *final_w, *final_b;
    weight_t out; /* (V, D) */
} model_t;

/* One decoder layer's weights. */
typedef struct {
    weight_t qkv; /* (3D, D): W_Q, W_K, W_V stacked */
    weight_t self_out, cross_q, cross_out, up, down;
    const float *norm1_w, *norm1_b, *norm2_w, *norm2_b, *norm3_w, *norm3_b;
} layer_t;

/* One encoder layer's weights. */
typedef struct {
    weight_t qkv; /* (3D, D): W_Q, W_K, W_V stacked */
    weight_t out, up, down;
    const float *norm1_w, *norm1_b, *norm2_w, *norm2_b;
} encoder_layer_t;

enum { ACT_NONE = 0, ACT_RELU = 1, ACT_GELU = 2, ACT_SILU = 3 };

/* abi.c: what a loader asks before it calls anything else. */
int64_t selfattention_abi_version(void);
int64_t selfattention_struct_size(const char *name);                    /* -1: no such struct */
int64_t selfattention_field_offset(const char *name, const char *field); /* -1: no such field */
int selfattention_cpu_supports(const char *feature); /* this processor: 1 or 0; -1: a feature not asked about */
int selfattention_built_with(const char *feature);   /* this library's code uses it: 1 or 0; -1 likewise */
const char *selfattention_sources(void);             /* the digest of the sources it was built from */

/* few_queries.c: softmax(q k^T * scale) v for a few query rows per (row, head). */
int selfattention_few_queries(
    const float *q, strides3 sq, const float *k, strides3 sk, const float *v, strides3 sv,
    const uint8_t *mask, int64_t mask_stride_b, int64_t mask_stride_s, float *out,
    int64_t batch, int64_t heads, int64_t queries, int64_t keys, int64_t width, float scale);
int selfattention_few_queries_traced(
    const float *q, strides3 sq, const float *k, strides3 sk, const float *v, strides3 sv,
    const uint8_t *mask, int64_t mask_stride_b, int64_t mask_stride_s, float *out,
    int64_t batch, int64_t heads, int64_t queries, int64_t keys, int64_t width, float scale,
    const int64_t *key_rows, int64_t rows_stride);

/* products.c: packing and products. */
int64_t selfattention_packed_size(int64_t n, int64_t k);
void selfattention_pack(const float *w, int64_t n, int64_t k, float *packed);
int64_t selfattention_packed_size_int8(int64_t n, int64_t k);
void selfattention_pack_int8(const int8_t *w, int64_t n, int64_t k, int8_t *packed, int32_t *sums);
int selfattention_linear(const float *x, int64_t m, int64_t k, const weight_t *w, int64_t n, float *y); /* Int8Linear */

/* encoder.c: the encoder, and the decoder's cross-attention keys and values of its output. */
int selfattention_encode(const model_t *model, const encoder_layer_t *layers, const float *positions,
                         const int64_t *tokens, int64_t sources, int64_t source_len, const uint8_t *source_mask,
                         float *memory);
int selfattention_cross_kv(const model_t *model, const weight_t *kv, const float *memory, int64_t sources,
                           int64_t source_len, float *cross_kv);

/* native_step.c: the decoding step, the best tokens. */
int selfattention_step(
    const model_t *model, const layer_t *layers, const float *positions, const int64_t *tokens, int64_t rows,
    int64_t position, float *self_kv, int64_t capacity, int64_t max_len, int64_t *history,
    const float *cross_kv, int64_t sources, int64_t source_len, const uint8_t *source_mask, float *logits);
int selfattention_best(float *logits, int64_t rows, int64_t vocab, int64_t k, const int64_t *banned,
                       int64_t banned_count, int64_t eos, float *values, int64_t *indices, float *eos_out);

#endif
