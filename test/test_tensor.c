// The tensor layer: shapes, creation, views, scopes and refcounts, copies, the seeded
// random stream, the storage cache.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/threads.h"
#include "tensor/error.h"
#include "tensor/tensor.h"
#include "test/test_util.h"

START_TEST(test_shape_helpers) {
    Shape s = shape3(2, 3, 5);
    ck_assert_int_eq(shape_numel(s), 30);
    char buf[64];
    ck_assert_str_eq(shape_str(s, buf, sizeof buf), "(2, 3, 5)");
    int64_t d4[4], st4[4];
    shape_to4(s, d4);
    shape_strides4(s, st4);
    ck_assert(d4[0] == 1 && d4[1] == 2 && d4[2] == 3 && d4[3] == 5);
    ck_assert(st4[0] == 30 && st4[1] == 15 && st4[2] == 5 && st4[3] == 1);
    ck_assert_int_eq(shape_axis(s, -1), 2);
    Shape b;
    ck_assert(shape_broadcast(shape2(4, 1), shape1(7), &b) && shape_equal(b, shape2(4, 7)));
    ck_assert(shape_broadcast(shape3(2, 1, 5), shape3(1, 3, 1), &b) &&
              shape_equal(b, shape3(2, 3, 5)));
    ck_assert(!shape_broadcast(shape2(4, 3), shape1(5), &b));
}
END_TEST

START_TEST(test_creation) {
    tensor_scope_begin();
    Tensor *z = tensor_zeros(shape2(3, 7), DEVICE_CPU);
    Tensor *o = tensor_ones(shape1(5), DEVICE_CPU);
    Tensor *f = tensor_full(shape4(2, 1, 3, 2), -2.5f, DEVICE_CPU);
    Tensor *r = tensor_arange(9, 1.0f, 0.5f, DEVICE_CPU);
    for (int i = 0; i < 21; i++) ck_assert_float_eq(tensor_f32(z)[i], 0.0f);
    for (int i = 0; i < 5; i++) ck_assert_float_eq(tensor_f32(o)[i], 1.0f);
    for (int i = 0; i < 12; i++) ck_assert_float_eq(tensor_f32(f)[i], -2.5f);
    for (int i = 0; i < 9; i++) ck_assert_float_eq(tensor_f32(r)[i], 1.0f + 0.5f * (float)i);
    float data[6] = {1, 2, 3, 4, 5, 6};
    Tensor *d = tensor_from_floats(shape2(2, 3), data, DEVICE_CPU);
    ck_assert(memcmp(tensor_f32(d), data, sizeof data) == 0);
    int32_t idx[3] = {7, -1, 42};
    Tensor *ix = tensor_from_ints(shape1(3), idx, DEVICE_CPU);
    ck_assert_int_eq(ix->dtype, DTYPE_I32);
    ck_assert(memcmp(tensor_i32(ix), idx, sizeof idx) == 0);
    ck_assert_float_eq(tensor_item(tensor_full(shape1(1), 3.25f, DEVICE_CPU)), 3.25f);
    tensor_scope_end();
}
END_TEST

START_TEST(test_views_share_storage) {
    tensor_scope_begin();
    Tensor *t = tensor_arange(24, 0.0f, 1.0f, DEVICE_CPU);
    Tensor *v = tensor_view(t, shape3(2, 3, 4));
    ck_assert_ptr_eq(tensor_f32(v), tensor_f32(t));
    Tensor *rows = tensor_rows(v, 1, 1); // the second (3, 4) block
    ck_assert(shape_equal(rows->shape, shape3(1, 3, 4)));
    ck_assert_float_eq(tensor_f32(rows)[0], 12.0f);
    tensor_f32(rows)[0] = -1.0f; // a view writes through to its storage
    ck_assert_float_eq(tensor_f32(t)[12], -1.0f);
    Tensor *c = tensor_clone(t);
    tensor_f32(c)[0] = 99.0f;
    ck_assert_float_eq(tensor_f32(t)[0], 0.0f);
    tensor_scope_end();
}
END_TEST

START_TEST(test_copy_read_write_fill) {
    tensor_scope_begin();
    float src[5] = {1, -2, 3, -4, 5}, dst[5];
    Tensor *a = tensor_from_floats(shape1(5), src, DEVICE_CPU);
    Tensor *b = tensor_empty(shape1(5), DTYPE_F32, DEVICE_CPU);
    tensor_copy_into(b, a);
    tensor_read(b, dst);
    ck_assert(memcmp(src, dst, sizeof src) == 0);
    tensor_fill(b, 0.5f);
    tensor_read(b, dst);
    for (int i = 0; i < 5; i++) ck_assert_float_eq(dst[i], 0.5f);
    ck_assert_ptr_eq(tensor_to(a, DEVICE_CPU), a);
    tensor_scope_end();
}
END_TEST

// Every compiled device: host -> device -> host returns the same bits.
START_TEST(test_device_round_trip) {
    tensor_scope_begin();
    float src[37], back[37];
    test_fill_uniform(src, 37, test_seed_for("device_round_trip"), -3, 3);
    Tensor *host = tensor_from_floats(shape1(37), src, DEVICE_CPU);
    for (int d = 0; d < DEVICE_COUNT; d++) {
        if (!backend_get((Device)d)) continue;
        Tensor *dev = tensor_to(host, (Device)d);
        ck_assert_int_eq(dev->device, d);
        tensor_read(tensor_to(dev, DEVICE_CPU), back);
        ck_assert(memcmp(src, back, sizeof src) == 0);
    }
    tensor_scope_end();
}
END_TEST

START_TEST(test_scope_releases_and_retain_keeps) {
    StorageStats before = storage_stats(DEVICE_CPU);
    Tensor *kept;
    tensor_scope_begin();
    tensor_zeros(shape2(100, 100), DEVICE_CPU);
    kept = tensor_retain(tensor_ones(shape1(1000), DEVICE_CPU));
    tensor_scope_begin();
    tensor_zeros(shape1(50000), DEVICE_CPU);
    tensor_scope_end();
    tensor_scope_end();
    ck_assert_float_eq(tensor_f32(kept)[999], 1.0f); // outlived both scopes
    ck_assert_uint_gt(storage_stats(DEVICE_CPU).bytes_in_use, before.bytes_in_use);
    tensor_release(kept);
    ck_assert_uint_eq(storage_stats(DEVICE_CPU).bytes_in_use, before.bytes_in_use);
}
END_TEST

// After one iteration of a loop with fixed shapes, every storage request is served by the
// cache: no backend allocation in the steady state.
START_TEST(test_storage_cache_steady_state) {
    uint64_t allocs = 0;
    for (int step = 0; step < 4; step++) {
        tensor_scope_begin();
        Tensor *a = tensor_zeros(shape2(64, 33), DEVICE_CPU);
        Tensor *b = tensor_ones(shape3(3, 17, 5), DEVICE_CPU);
        tensor_clone(a);
        tensor_clone(b);
        tensor_scope_end();
        if (step == 1) allocs = storage_stats(DEVICE_CPU).allocations;
    }
    ck_assert_uint_eq(storage_stats(DEVICE_CPU).allocations, allocs);
    storage_cache_clear();
    ck_assert_uint_eq(storage_stats(DEVICE_CPU).bytes_cached, 0);
}
END_TEST

// The same seed gives the same tensor whatever the thread count; draws advance the stream.
START_TEST(test_rng_seeded_and_thread_independent) {
    tensor_scope_begin();
    int64_t n = 100003;
    float *one = malloc((size_t)n * sizeof *one), *two = malloc((size_t)n * sizeof *two);
    threads_set(1);
    Rng r1 = rng_make(2024);
    tensor_read(tensor_normal(shape1(n), &r1, 0.0f, 1.0f, DEVICE_CPU), one);
    threads_set(2);
    Rng r2 = rng_make(2024);
    tensor_read(tensor_normal(shape1(n), &r2, 0.0f, 1.0f, DEVICE_CPU), two);
    ck_assert(memcmp(one, two, (size_t)n * sizeof *one) == 0);
    ck_assert_uint_eq(r1.offset, r2.offset);
    ck_assert_uint_eq(r1.offset, (uint64_t)((n + 3) / 4));
    // the next draw continues the stream: different numbers
    tensor_read(tensor_normal(shape1(n), &r2, 0.0f, 1.0f, DEVICE_CPU), two);
    ck_assert(memcmp(one, two, (size_t)n * sizeof *one) != 0);
    double mean = 0, var = 0;
    for (int64_t i = 0; i < n; i++) mean += one[i];
    mean /= (double)n;
    for (int64_t i = 0; i < n; i++) var += (one[i] - mean) * (one[i] - mean);
    var /= (double)n;
    ck_assert_msg(fabs(mean) < 0.02 && fabs(var - 1.0) < 0.03, "mean %g var %g", mean, var);
    Rng u = rng_make(7);
    tensor_read(tensor_uniform(shape1(n), &u, -2.0f, 3.0f, DEVICE_CPU), one);
    for (int64_t i = 0; i < n; i++) ck_assert(one[i] >= -2.0f && one[i] <= 3.0f);
    free(one);
    free(two);
    threads_set(0);
    tensor_scope_end();
}
END_TEST

START_TEST(test_rng_host_draws_and_fork) {
    Rng a = rng_make(5), b = rng_make(5);
    for (int i = 0; i < 100; i++) {
        float u = rng_uniform_float(&a);
        ck_assert(u > 0.0f && u <= 1.0f);
        ck_assert_float_eq(u, rng_uniform_float(&b));
    }
    int counts[7] = {0};
    for (int i = 0; i < 7000; i++) counts[rng_below(&a, 7)]++;
    for (int i = 0; i < 7; i++) ck_assert_msg(counts[i] > 850 && counts[i] < 1150, "%d", counts[i]);
    Rng f1 = rng_fork(&a, 1), f2 = rng_fork(&a, 2), f1b = rng_fork(&a, 1);
    ck_assert_uint_ne(f1.seed, f2.seed);
    ck_assert_uint_eq(f1.seed, f1b.seed);
}
END_TEST

START_TEST(test_error_message) {
    Error err;
    ck_assert_int_eq(error_set(&err, "%s: field '%s' expected %d", "x.ini", "lr", 3), -1);
    ck_assert_str_eq(err.msg, "x.ini: field 'lr' expected 3");
    ck_assert_int_eq(error_set(NULL, "ignored"), -1);
}
END_TEST

int main(void) {
    Suite *s = suite_create("tensor");
    TCase *tc = tcase_create("tensor");
    tcase_add_test(tc, test_shape_helpers);
    tcase_add_test(tc, test_creation);
    tcase_add_test(tc, test_views_share_storage);
    tcase_add_test(tc, test_copy_read_write_fill);
    tcase_add_test(tc, test_device_round_trip);
    tcase_add_test(tc, test_scope_releases_and_retain_keeps);
    tcase_add_test(tc, test_storage_cache_steady_state);
    tcase_add_test(tc, test_rng_seeded_and_thread_independent);
    tcase_add_test(tc, test_rng_host_draws_and_fork);
    tcase_add_test(tc, test_error_message);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
