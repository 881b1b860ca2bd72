/* What a loader asks a library before it calls anything else (engine/library.py does, at load):
 *
 * - the ABI version and each struct's size and each field's offset, which it holds to its ctypes
 *   mirrors of engine.h's structs;
 * - which of the instruction sets the build variants use this processor has (the loader picks the
 *   best variant it can run) and which this library's code was compiled to use;
 * - the digest of the sources it was built from (setup.py passes it in), which the loader holds to
 *   the sources beside it: a checkout whose C changed since its last build is not run.
 */
#include <stddef.h>
#include <string.h>

#include "engine.h"

#ifndef SELFATTENTION_SOURCES
#define SELFATTENTION_SOURCES "unknown"
#endif

int64_t selfattention_abi_version(void) { return SELFATTENTION_ABI_VERSION; }

#define STRUCT(T) if (strcmp(name, #T) == 0) return (int64_t)sizeof(T);
int64_t selfattention_struct_size(const char *name) {
    STRUCT(strides3) STRUCT(weight_t) STRUCT(model_t) STRUCT(layer_t) STRUCT(encoder_layer_t)
    return -1;
}
#undef STRUCT

#define FIELD(T, F) if (strcmp(name, #T) == 0 && strcmp(field, #F) == 0) return (int64_t)offsetof(T, F);
int64_t selfattention_field_offset(const char *name, const char *field) {
    FIELD(strides3, b) FIELD(strides3, h) FIELD(strides3, t)
    FIELD(weight_t, w) FIELD(weight_t, bias) FIELD(weight_t, scales) FIELD(weight_t, sums)
    FIELD(model_t, d) FIELD(model_t, heads) FIELD(model_t, ff) FIELD(model_t, vocab) FIELD(model_t, layers)
    FIELD(model_t, norm_first) FIELD(model_t, activation) FIELD(model_t, final_norm) FIELD(model_t, pad_)
    FIELD(model_t, eps) FIELD(model_t, embed_scale) FIELD(model_t, embed) FIELD(model_t, final_w)
    FIELD(model_t, final_b) FIELD(model_t, out)
    FIELD(layer_t, qkv) FIELD(layer_t, self_out) FIELD(layer_t, cross_q) FIELD(layer_t, cross_out)
    FIELD(layer_t, up) FIELD(layer_t, down) FIELD(layer_t, norm1_w) FIELD(layer_t, norm1_b)
    FIELD(layer_t, norm2_w) FIELD(layer_t, norm2_b) FIELD(layer_t, norm3_w) FIELD(layer_t, norm3_b)
    FIELD(encoder_layer_t, qkv) FIELD(encoder_layer_t, out) FIELD(encoder_layer_t, up) FIELD(encoder_layer_t, down)
    FIELD(encoder_layer_t, norm1_w) FIELD(encoder_layer_t, norm1_b) FIELD(encoder_layer_t, norm2_w)
    FIELD(encoder_layer_t, norm2_b)
    return -1;
}
#undef FIELD

/* The instruction sets the variants are built for (engine/variants.py), by the names GCC and Clang
 * give them; __builtin_cpu_supports takes a literal, hence one line each. */
#if defined(__x86_64__) || defined(__i386__)
#define FEATURE(F) if (strcmp(feature, #F) == 0) return __builtin_cpu_supports(#F) ? 1 : 0;
int selfattention_cpu_supports(const char *feature) {
    __builtin_cpu_init();
    FEATURE(avx2) FEATURE(fma) FEATURE(avx512f) FEATURE(avx512bw) FEATURE(avx512dq) FEATURE(avx512vl)
    FEATURE(avx512vnni)
    return -1;
}
#undef FEATURE
#else
int selfattention_cpu_supports(const char *feature) {
    static const char *const known[] = {"avx2", "fma", "avx512f", "avx512bw", "avx512dq", "avx512vl", "avx512vnni"};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; ++i) {
        if (strcmp(feature, known[i]) == 0) {
            return 0; /* not an x86 processor */
        }
    }
    return -1;
}
#endif

/* A predefined macro expands to 1 where the compiler defines it and stays its own name elsewhere. */
#define STRING(x) #x
#define EXPANDED(x) STRING(x)
#define BUILT(F, MACRO) if (strcmp(feature, #F) == 0) return strcmp(EXPANDED(MACRO), "1") == 0;
int selfattention_built_with(const char *feature) {
    BUILT(avx2, __AVX2__) BUILT(fma, __FMA__) BUILT(avx512f, __AVX512F__) BUILT(avx512bw, __AVX512BW__)
    BUILT(avx512dq, __AVX512DQ__) BUILT(avx512vl, __AVX512VL__) BUILT(avx512vnni, __AVX512VNNI__)
    return -1;
}
#undef BUILT

const char *selfattention_sources(void) { return SELFATTENTION_SOURCES; }
