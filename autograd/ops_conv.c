// 2-d convolution as im2col + GEMM, nearest-neighbour upsampling, average pooling.
//
// A convolution over a chunk of n images is one GEMM: Y' (oc, n*L) = W (oc, c*kh*kw) @ col,
// with col (c*kh*kw, n*L) the unfolded patches and L = oh*ow. The column buffer is kh*kw
// times the size of the input, so images go through in chunks that keep it near
// COL_CHUNK_BYTES, and the backward unfolds x again rather than keeping the forward's
// columns: the memory of a convolution stays bounded whatever the batch.
#include "autograd/ops_internal.h"

#define COL_CHUNK_BYTES ((int64_t)64 << 20)

// x (n, c, h, w), weight (oc, c, kh, kw) -> the geometry of one image
static ConvGeometry conv_geometry(const Tensor *x, const Tensor *weight, int64_t stride,
                                  int64_t pad) {
    ConvGeometry g = {
        .c = x->shape.dim[1], .h = x->shape.dim[2], .w = x->shape.dim[3],
        .kh = weight->shape.dim[2], .kw = weight->shape.dim[3], .stride = stride, .pad = pad,
    };
    g.oh = (g.h + 2 * pad - g.kh) / stride + 1;
    g.ow = (g.w + 2 * pad - g.kw) / stride + 1;
    return g;
}

// Images per chunk: as many as fit COL_CHUNK_BYTES of columns, at least one.
static int64_t chunk_images(const ConvGeometry *g, int64_t images) {
    int64_t col_bytes = g->c * g->kh * g->kw * g->oh * g->ow * (int64_t)sizeof(float);
    int64_t n = col_bytes > 0 ? COL_CHUNK_BYTES / col_bytes : images;
    return n < 1 ? 1 : n < images ? n : images;
}

// Moves a chunk between the GEMM's layout (oc, n, L) and the tensor's (n, oc, L).
static void permute_chunk(const Backend *be, float *dst, const float *src, int64_t n,
                          int64_t oc, int64_t l, bool to_tensor) {
    const int64_t shape[KERNEL_MAX_DIMS] = {1, n, oc, l};
    const int64_t gemm_stride[KERNEL_MAX_DIMS] = {0, l, n * l, 1};
    const int64_t tensor_stride[KERNEL_MAX_DIMS] = {0, oc * l, l, 1};
    be->copy_strided(be, dst, to_tensor ? tensor_stride : gemm_stride, src,
                     to_tensor ? gemm_stride : tensor_stride, shape);
}

// dy (n, oc, oh, ow) -> dx (n, c, h, w), dweight (oc, c, kh, kw), dbias (oc)
static void conv2d_backward(AutogradNode *node, Tensor *dy) {
    Tensor *x = node->inputs[0], *weight = node->inputs[1], *bias = node->inputs[2];
    bool need_x = autograd_needs_grad(node, 0), need_w = autograd_needs_grad(node, 1);
    const Backend *be = tensor_backend(dy);
    GemmFn gemm = ops_gemm(be, node->precision);
    ConvGeometry g = conv_geometry(x, weight, node->iarg[0], node->iarg[1]);
    int64_t images = x->shape.dim[0], oc = weight->shape.dim[0], l = g.oh * g.ow;
    int64_t ckk = g.c * g.kh * g.kw, image_size = g.c * g.h * g.w;
    int64_t chunk = chunk_images(&g, images);
    Tensor *dx = need_x ? ops_empty_like(x) : NULL;
    Tensor *dw = need_w ? tensor_zeros(weight->shape, weight->device) : NULL; // sums chunks

    if (need_x || need_w) {
        tensor_scope_begin(); // the chunk buffers go back to the cache when the loop ends
        Tensor *dyp = tensor_empty(shape2(oc, chunk * l), DTYPE_F32, dy->device);
        Tensor *col = need_w ? tensor_empty(shape2(ckk, chunk * l), DTYPE_F32, dy->device) : NULL;
        Tensor *dcol = need_x ? tensor_empty(shape2(ckk, chunk * l), DTYPE_F32, dy->device) : NULL;
        for (int64_t i0 = 0; i0 < images; i0 += chunk) {
            int64_t n = images - i0 < chunk ? images - i0 : chunk;
            permute_chunk(be, tensor_f32(dyp), tensor_f32(dy) + i0 * oc * l, n, oc, l, false);
            if (need_w) { // dW (oc, ckk) += dY' (oc, n*L) @ col^T
                be->im2col(be, tensor_f32(col), tensor_f32(x) + i0 * image_size, n, &g);
                gemm(be, tensor_f32(dw), tensor_f32(dyp), tensor_f32(col), 1, oc, ckk, n * l,
                     false, true, 1.0f, 1.0f, 0, 0, 0);
            }
            if (need_x) { // dcol (ckk, n*L) = W^T @ dY', folded back onto the images
                gemm(be, tensor_f32(dcol), tensor_f32(weight), tensor_f32(dyp), 1, ckk, n * l,
                     oc, true, false, 1.0f, 0.0f, 0, 0, 0);
                be->col2im(be, tensor_f32(dx) + i0 * image_size, tensor_f32(dcol), n, &g);
            }
        }
        tensor_scope_end();
    }
    autograd_accumulate(x, dx);
    autograd_accumulate(weight, dw);
    if (autograd_needs_grad(node, 2)) { // dbias = dy summed over images and positions
        Tensor *db = ops_empty_like(bias);
        int64_t shape[KERNEL_MAX_DIMS] = {1, images, oc, l};
        be->reduce(be, REDUCE_SUM, tensor_f32(db), tensor_f32(dy), shape, (1u << 1) | (1u << 3));
        autograd_accumulate(bias, db);
    }
}

// x (n, c, h, w), weight (oc, c, kh, kw), bias (oc) or NULL -> y (n, oc, oh, ow)
Tensor *op_conv2d(Tensor *x, Tensor *weight, Tensor *bias, int stride, int pad) {
    Tensor *in[3] = {x, weight, bias};
    ops_check_f32("conv2d", 3, in);
    OPS_CHECK_SHAPES(x->shape.ndim == 4 && weight->shape.ndim == 4 &&
                         weight->shape.dim[1] == x->shape.dim[1],
                     "conv2d", x, weight);
    DMDR_CHECK(stride >= 1 && pad >= 0, "conv2d: stride %d, pad %d", stride, pad);
    OPS_CHECK_SHAPES(x->shape.dim[2] + 2 * pad >= weight->shape.dim[2] &&
                         x->shape.dim[3] + 2 * pad >= weight->shape.dim[3],
                     "conv2d", x, weight);
    int64_t oc = weight->shape.dim[0];
    if (bias)
        OPS_CHECK_SHAPES(bias->shape.ndim == 1 && bias->shape.dim[0] == oc, "conv2d", weight, bias);
    const Backend *be = tensor_backend(x);
    GemmFn gemm = ops_gemm(be, autograd_precision());
    ConvGeometry g = conv_geometry(x, weight, stride, pad);
    int64_t images = x->shape.dim[0], l = g.oh * g.ow;
    int64_t ckk = g.c * g.kh * g.kw, image_size = g.c * g.h * g.w;
    int64_t chunk = chunk_images(&g, images);
    Tensor *y = tensor_empty(shape4(images, oc, g.oh, g.ow), DTYPE_F32, x->device);

    tensor_scope_begin(); // the chunk buffers go back to the cache when the loop ends
    Tensor *col = tensor_empty(shape2(ckk, chunk * l), DTYPE_F32, x->device);
    Tensor *yp = tensor_empty(shape2(oc, chunk * l), DTYPE_F32, x->device);
    for (int64_t i0 = 0; i0 < images; i0 += chunk) {
        int64_t n = images - i0 < chunk ? images - i0 : chunk;
        be->im2col(be, tensor_f32(col), tensor_f32(x) + i0 * image_size, n, &g);
        gemm(be, tensor_f32(yp), tensor_f32(weight), tensor_f32(col), 1, oc, n * l, ckk,
             false, false, 1.0f, 0.0f, 0, 0, 0);
        permute_chunk(be, tensor_f32(y) + i0 * oc * l, tensor_f32(yp), n, oc, l, true);
    }
    tensor_scope_end();

    if (bias) { // in place: the binary kernel allows y to alias its full-shaped input
        Shape planes = shape3(images, oc, l);
        Broadcast bc = ops_broadcast(planes, planes, shape2(oc, 1));
        be->binary(be, BINARY_ADD, tensor_f32(y), tensor_f32(y), tensor_f32(bias), &bc);
    }
    AutogradNode *node = autograd_record(y, "conv2d", conv2d_backward, 3, in);
    if (node) {
        node->iarg[0] = stride;
        node->iarg[1] = pad;
    }
    return y;
}

// ---- resampling -------------------------------------------------------------------------------
// Nearest upsampling and average pooling share one node type: each of their four kernels
// takes the input's (planes, h, w) and the factor.

typedef void (*PlaneKernel)(const Backend *be, float *y, const float *x, int64_t planes, int64_t h,
                            int64_t w, int64_t f);

// dy (n, c, h*f, w*f) or (n, c, h/k, w/k) -> dx (n, c, h, w)
static void resample_backward(AutogradNode *node, Tensor *dy) {
    Tensor *x = node->inputs[0];
    const Backend *be = tensor_backend(dy);
    PlaneKernel kernel = node->iarg[1] ? be->upsample_nearest_backward : be->avgpool_backward;
    Tensor *dx = ops_empty_like(x);
    const int64_t *dim = x->shape.dim;
    kernel(be, tensor_f32(dx), tensor_f32(dy), dim[0] * dim[1], dim[2], dim[3], node->iarg[0]);
    autograd_accumulate(x, dx);
}

// x (n, c, h, w) -> y (n, c, h*f, w*f) when upsampling, else y (n, c, h/f, w/f)
static Tensor *resample(const char *name, Tensor *x, int factor, bool upsample) {
    ops_check_f32(name, 1, &x);
    DMDR_CHECK(x->shape.ndim == 4, "%s: x must be (N, C, H, W), got rank %d", name,
               x->shape.ndim);
    DMDR_CHECK(factor >= 1, "%s: factor %d", name, factor);
    const int64_t *dim = x->shape.dim;
    char s[64];
    DMDR_CHECK(upsample || (dim[2] % factor == 0 && dim[3] % factor == 0),
               "%s: window %d does not divide %s", name, factor,
               tensor_shape_str(x, s, sizeof s));
    Shape out = x->shape;
    for (int d = 2; d < 4; d++) out.dim[d] = upsample ? dim[d] * factor : dim[d] / factor;
    Tensor *y = tensor_empty(out, DTYPE_F32, x->device);
    const Backend *be = tensor_backend(x);
    PlaneKernel kernel = upsample ? be->upsample_nearest : be->avgpool;
    kernel(be, tensor_f32(y), tensor_f32(x), dim[0] * dim[1], dim[2], dim[3], factor);
    AutogradNode *node = autograd_record(y, name, resample_backward, 1, &x);
    if (node) {
        node->iarg[0] = factor;
        node->iarg[1] = upsample;
    }
    return y;
}

Tensor *op_upsample_nearest(Tensor *x, int factor) {
    return resample("upsample_nearest", x, factor, true);
}
Tensor *op_avgpool(Tensor *x, int k) { return resample("avgpool", x, k, false); }
