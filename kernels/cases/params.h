// The sizes and scalars of each op's cases (kernels/cases/cases.h): one struct per op family,
// each described where its builder is.
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "kernels/backend.h"

#define CASE_MAX_ARRAYS 5 // sum_squares: arrays per call

typedef struct {
    int64_t src_offset, dst_offset, count; // floats
} CopyParams;

typedef struct {
    int64_t n;
    float value;
} FillParams;

typedef struct {
    int64_t shape[KERNEL_MAX_DIMS], src_stride[KERNEL_MAX_DIMS], dst_stride[KERNEL_MAX_DIMS];
    int64_t src_offset, dst_offset;
} StridedParams;

typedef struct {
    BinaryOp op;
    Broadcast bc;
    int alias;   // forward: 0 y apart, 1 y is a, 2 y is b
    int outputs; // backward: bit 0 da, bit 1 db
} BinaryParams;

typedef struct {
    int op; // UnaryOp or ScalarOp
    int64_t n;
    float s; // scalar ops
} ElementwiseParams;

typedef struct {
    ReduceOp op;
    int64_t shape[KERNEL_MAX_DIMS];
    unsigned mask;
} ReduceParams;

typedef struct {
    int count;
    int64_t n[CASE_MAX_ARRAYS];
} SumSquaresParams;

typedef struct {
    int64_t batch, m, n, k;
    int64_t stride_a, stride_b, stride_c;
    float alpha, beta;
    bool trans_a, trans_b;
    Precision precision; // matmul, or matmul_bf16
} MatmulParams;

typedef struct {
    int64_t rows, cols;
    bool log;
} RowsParams;

typedef struct {
    int64_t n;
    float scale;
    int outputs; // backward: bit 0 da, bit 1 db
} SquaredErrorParams;

typedef struct {
    int64_t n, c, hw, groups; // a layer norm is hw = 1, groups = 1
    float eps;
    bool affine, param_grads; // weight and bias; dweight and dbias wanted (backward)
    float lo, hi;             // x in [lo, hi]
} NormParams;

typedef struct {
    int64_t images, out_channels; // out_channels: conv2d only
    ConvGeometry g;
    Precision precision; // conv2d's GEMM: matmul, or matmul_bf16
} ConvParams;

typedef struct {
    int64_t planes, h, w, f; // h, w as the kernel takes them
} ResampleParams;

typedef struct {
    int64_t vocab, dim, n;
} EmbeddingParams;

typedef struct {
    int64_t b, t, heads, d;
    bool packed; // q, k, v are thirds of one (b, t, 3, heads, d) projection
} AttentionParams;

typedef struct {
    int64_t n;
    int first_step, steps;
    int half_scale_step; // this step's gradients are scaled by 0.5 (clipping); 0: none
    float lr, beta1, beta2, eps, weight_decay;
} AdamWParams;

typedef union {
    CopyParams copy;
    FillParams fill;
    StridedParams strided;
    BinaryParams binary;
    ElementwiseParams elementwise;
    ReduceParams reduce;
    SumSquaresParams sum_squares;
    MatmulParams matmul;
    RowsParams rows;
    SquaredErrorParams squared_error;
    NormParams norm;
    ConvParams conv;
    ResampleParams resample;
    EmbeddingParams embedding;
    AttentionParams attention;
    AdamWParams adamw;
} CaseParams;
