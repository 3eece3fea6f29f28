// The judge classifier: its structure and state_dict names, gradients with respect to its
// input (it is the reward model of the RL stage), freezing, its files and their errors, that
// it learns Fashion-MNIST, and eval_measure's plumbing from images to metrics.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "autograd/gradcheck.h"
#include "autograd/ops.h"
#include "nn/classifier.h"
#include "nn/optim.h"
#include "test/test_util.h"
#include "tools/data/dataset.h"
#include "tools/eval/eval.h"

// 1 channel, 8x8, 3 classes, width 4, 2 stages of 2 blocks, 2 groups. By hand:
//   stages.0.0: conv 4*1*9 = 36, norm 2*4     stages.0.1: conv 4*4*9 = 144, norm 8
//   stages.1.0: conv 8*4*9 = 288, norm 2*8    stages.1.1: conv 8*8*9 = 576, norm 16
//   head 3*8 + 3 = 27                          total 1119 in 4 * 3 + 2 = 14 tensors
// With hidden 5 (features from the flattened 8 x 4 x 4 last stage):
//   fc 5*128 + 5 = 645, head 3*5 + 3 = 18      total 1119 - 27 + 663 = 1755 in 16 tensors
static const ClassifierConfig small = {.in_channels = 1, .image_size = 8, .num_classes = 3,
                                       .width = 4, .stages = 2, .blocks = 2, .groups = 2};
static const ClassifierConfig small_fc = {.in_channels = 1, .image_size = 8, .num_classes = 3,
                                          .width = 4, .stages = 2, .blocks = 2, .groups = 2,
                                          .hidden = 5};
// Residual (ResNet basic blocks), hidden 0:
//   stages.0.0: conv1 4*1*9 = 36, norm1 8, conv2 4*4*9 = 144, norm2 8, skip 4*1 + 8: 208
//   stages.0.1: (144 + 8) * 2 = 304      stages.1.0: 288 + 16 + 576 + 16 + 32 + 16 = 944
//   stages.1.1: (576 + 16) * 2 = 1184    head 27: total 2667 in 9 + 6 + 9 + 6 + 2 = 32 tensors
static const ClassifierConfig small_res = {.in_channels = 1, .image_size = 8, .num_classes = 3,
                                           .width = 4, .stages = 2, .blocks = 2, .groups = 2,
                                           .residual = 1};
// the smallest with every kind of layer, for finite differences, without and with fc
static const ClassifierConfig tiny[3] = {
    {.in_channels = 1, .image_size = 4, .num_classes = 3, .width = 2, .stages = 2, .blocks = 1,
     .groups = 1},
    {.in_channels = 1, .image_size = 4, .num_classes = 3, .width = 2, .stages = 2, .blocks = 1,
     .groups = 1, .hidden = 3},
    {.in_channels = 1, .image_size = 4, .num_classes = 3, .width = 2, .stages = 2, .blocks = 1,
     .groups = 1, .residual = 1},
};

static Classifier *make(const ClassifierConfig *cfg, const char *label) {
    Rng rng = rng_make(test_seed_for(label));
    Error err = {""};
    Classifier *c = classifier_create(cfg, DEVICE_CPU, &rng, &err);
    ck_assert_msg(c != NULL, "%s: classifier_create: %s", label, err.msg);
    return c;
}

// (n, C, S, S) uniform in [-1, 1]
static Tensor *images(const ClassifierConfig *cfg, int64_t n, const char *label) {
    Shape s = shape4(n, cfg->in_channels, cfg->image_size, cfg->image_size);
    float *h = malloc((size_t)shape_numel(s) * sizeof *h);
    test_fill_uniform(h, shape_numel(s), test_seed_for(label), -1.0f, 1.0f);
    Tensor *x = tensor_from_floats(s, h, DEVICE_CPU);
    free(h);
    return x;
}

static float *host(const Tensor *t) {
    float *h = malloc((size_t)tensor_numel(t) * sizeof *h);
    tensor_read(t, h);
    return h;
}

static void scratch(const char *name, char *out, size_t n) {
    snprintf(out, n, "%s/%s", test_scratch_dir, name);
}

// ---- structure ----------------------------------------------------------------------------------

static const struct {
    const ClassifierConfig *cfg;
    int features, tensors, numel; // counted by hand above
} shape_cases[] = {{&small, 8, 14, 1119}, {&small_fc, 5, 16, 1755}, {&small_res, 8, 32, 2667}};

START_TEST(test_shapes) {
    const ClassifierConfig *cfg = shape_cases[_i].cfg;
    int features = shape_cases[_i].features;
    Classifier *c = make(cfg, "shapes");
    Tensor *f;
    Tensor *y = classifier_forward(c, images(cfg, 5, "shapes"), &f);
    char s[64];
    ck_assert_msg(shape_equal(y->shape, shape2(5, 3)), "logits %s", tensor_shape_str(y, s, 64));
    ck_assert_msg(shape_equal(f->shape, shape2(5, features)), "features %s, want (5, %d)",
                  tensor_shape_str(f, s, 64), features);
    ck_assert_int_eq(classifier_feature_dim(c), features);
    ck_assert_int_eq(classifier_params(c)->count, shape_cases[_i].tensors);
    ck_assert_int_eq(params_numel(classifier_params(c), true), shape_cases[_i].numel);
    classifier_free(c);
}
END_TEST

START_TEST(test_state_dict_names) {
    Classifier *c = make(&small_fc, "names");
    const ParamList *p = classifier_params(c);
    static const struct {
        const char *name;
        int ndim, dim[4];
    } want[] = {{"stages.0.0.conv.weight", 4, {4, 1, 3, 3}}, {"stages.0.1.norm.bias", 1, {4}},
                {"stages.1.0.conv.weight", 4, {8, 4, 3, 3}}, {"stages.1.1.norm.weight", 1, {8}},
                {"fc.weight", 2, {5, 128}},                  {"fc.bias", 1, {5}},
                {"head.weight", 2, {3, 5}},                  {"head.bias", 1, {3}}};
    char s[64];
    for (int i = 0; i < 8; i++) {
        const Param *q = params_find(p, want[i].name);
        ck_assert_msg(q != NULL, "no parameter %s", want[i].name);
        Shape w = {.ndim = want[i].ndim};
        for (int d = 0; d < want[i].ndim; d++) w.dim[d] = want[i].dim[d];
        ck_assert_msg(shape_equal(q->tensor->shape, w), "%s is %s", want[i].name,
                      tensor_shape_str(q->tensor, s, 64));
    }
    ck_assert_msg(params_find(p, "stages.0.0.conv.bias") == NULL, "the conv before a norm has "
                  "no bias");
    classifier_free(c);
    c = make(&small, "names");
    ck_assert_msg(params_find(classifier_params(c), "fc.weight") == NULL, "hidden 0 has no fc");
    classifier_free(c);
}
END_TEST

START_TEST(test_bad_configs) {
    struct {
        ClassifierConfig cfg;
        const char *message;
    } cases[] = {
        {{1, 28, 10, 12, 3, 1, 8, 0, 0}, "groups 8 does not divide width 12"},
        {{1, 28, 10, 8, 4, 1, 8, 0, 0}, "image_size 28 is not divisible by 2^(stages - 1) = 8"},
        {{1, 28, 0, 8, 3, 1, 8, 0, 0}, "num_classes is 0, expected an integer in [1, 100000]"},
        {{1, 28, 10, 8, 3, 0, 8, 0, 0}, "blocks is 0"},
        {{1, 28, 10, 8, 3, 1, 8, -1, 0}, "hidden is -1, expected an integer in [0, 65536]"},
        {{1, 1024, 10, 64, 1, 1, 8, 16, 0}, "the last stage flattens to 67108864 values"},
        {{1, 28, 10, 8, 3, 1, 8, 0, 2}, "residual is 2, expected an integer in [0, 1]"},
    };
    for (int i = 0; i < 7; i++) {
        Rng rng = rng_make(1);
        Error err = {""};
        ck_assert(classifier_create(&cases[i].cfg, DEVICE_CPU, &rng, &err) == NULL);
        ck_assert_msg(strstr(err.msg, cases[i].message), "got \"%s\", want \"%s\"", err.msg,
                      cases[i].message);
    }
}
END_TEST

// Each image is classified alone (GroupNorm normalises within an image), so batching and
// classifier_apply's chunks change nothing.
START_TEST(test_apply_chunks_and_rows) {
    Classifier *c = make(&small, "apply");
    Tensor *x = images(&small, 7, "apply");
    float *xs = host(x);
    Tensor *f;
    Tensor *y = classifier_forward(c, x, &f);
    float *want_y = host(y), *want_f = host(f);
    float got_y[7 * 3], got_f[7 * 8];
    classifier_apply(c, xs, 7, 2, got_y, got_f);
    ASSERT_CLOSE("logits in chunks of 2", got_y, want_y, 21, 1e-5, 1e-5);
    ASSERT_CLOSE("features in chunks of 2", got_f, want_f, 56, 1e-5, 1e-5);
    classifier_apply(c, xs + 3 * 64, 1, 0, got_y, NULL);
    ASSERT_CLOSE("image 3 alone", got_y, want_y + 9, 3, 1e-5, 1e-5);
    free(xs);
    free(want_y);
    free(want_f);
    classifier_free(c);
}
END_TEST

// ---- gradients ----------------------------------------------------------------------------------

static Tensor *run_forward(Tensor *const *inputs, void *ctx) {
    Tensor *f;
    Tensor *y = classifier_forward(ctx, inputs[0], &f);
    Tensor *both[2] = {y, f};
    return op_concat(both, 2, 1); // logits and features, both checked
}

START_TEST(test_gradcheck_input) {
    Classifier *c = make(&tiny[_i], "gradcheck");
    Tensor *x = images(&tiny[_i], 2, "gradcheck x");
    tensor_set_requires_grad(x, true);
    const Param *w = params_find(classifier_params(c), tiny[_i].residual
                                                           ? "stages.1.0.conv2.weight"
                                                           : "stages.1.0.conv.weight");
    Tensor *inputs[2] = {x, w->tensor};
    GradcheckOptions opt = gradcheck_defaults();
    opt.seed = test_seed_for("gradcheck w");
    char report[512] = "";
    ck_assert_msg(gradcheck(run_forward, c, inputs, 2, &opt, report, sizeof report),
                  "gradcheck hidden %d, residual %d (input 0: x, input 1: %s): %s",
                  tiny[_i].hidden, tiny[_i].residual, w->name, report);
    classifier_free(c);
}
END_TEST

// x.grad of the cross-entropy, and whether any parameter got a gradient.
static float *input_gradient(Classifier *c, Tensor *x, bool *param_grads) {
    tensor_zero_grad(x);
    int32_t labels[4] = {0, 2, 1, 2};
    Tensor *loss = op_cross_entropy(classifier_forward(c, x, NULL),
                                    tensor_from_ints(shape1(4), labels, DEVICE_CPU));
    autograd_backward(loss, NULL);
    *param_grads = false;
    const ParamList *p = classifier_params(c);
    for (int i = 0; i < p->count; i++) {
        *param_grads |= p->items[i].tensor->grad != NULL;
        tensor_zero_grad(p->items[i].tensor);
    }
    return host(x->grad);
}

// Frozen, a backward reaches the image and no parameter; the image's gradient is unchanged.
START_TEST(test_frozen_reward_gradient) {
    Classifier *c = make(&small, "frozen");
    Tensor *x = images(&small, 4, "frozen");
    tensor_set_requires_grad(x, true);
    bool params_got;
    float *open = input_gradient(c, x, &params_got);
    ck_assert_msg(params_got, "the unfrozen classifier's parameters got no gradient");
    classifier_set_frozen(c, true);
    ck_assert_int_eq(params_numel(classifier_params(c), true), 0);
    float *frozen = input_gradient(c, x, &params_got);
    ck_assert_msg(!params_got, "a frozen parameter got a gradient");
    ASSERT_CLOSE("x.grad frozen vs not", frozen, open, 4 * 64, 0, 0);
    classifier_set_frozen(c, false);
    ck_assert_int_eq(params_numel(classifier_params(c), true), 1119);
    free(open);
    free(frozen);
    classifier_free(c);
}
END_TEST

// ---- files --------------------------------------------------------------------------------------

START_TEST(test_save_load_roundtrip) {
    Classifier *c = make(&small_fc, "roundtrip");
    char path[600];
    scratch("roundtrip.safetensors", path, sizeof path);
    Error err = {""};
    ck_assert_msg(classifier_save(c, path, 0, NULL, NULL, &err) == 0, "%s", err.msg);
    Classifier *d;
    ck_assert_msg(classifier_load(path, DEVICE_CPU, &d, &err) == 0, "%s", err.msg);
    ck_assert(memcmp(classifier_config(d), &small_fc, sizeof small_fc) == 0);
    Tensor *x = images(&small_fc, 3, "roundtrip");
    float *a = host(classifier_forward(c, x, NULL)), *b = host(classifier_forward(d, x, NULL));
    ASSERT_CLOSE("logits after the roundtrip", b, a, 9, 0, 0);
    free(a);
    free(b);
    classifier_free(c);
    classifier_free(d);
}
END_TEST

// The residual network's state_dict names (a projection skip only where a block widens), and
// its configuration through JSON; a file written before the field existed reads as plain.
START_TEST(test_residual_names_and_json) {
    Classifier *c = make(&small_res, "residual names");
    const ParamList *p = classifier_params(c);
    static const char *const present[] = {"stages.0.0.conv1.weight", "stages.0.0.norm2.bias",
                                          "stages.0.0.skip.conv.weight",
                                          "stages.1.0.skip.norm.weight", "stages.1.1.conv2.weight"};
    static const char *const absent[] = {"stages.0.1.skip.conv.weight", "stages.1.1.skip.conv.weight",
                                         "stages.0.0.conv.weight"};
    for (int i = 0; i < 5; i++) ck_assert_msg(params_find(p, present[i]), "no %s", present[i]);
    for (int i = 0; i < 3; i++) ck_assert_msg(!params_find(p, absent[i]), "has %s", absent[i]);
    classifier_free(c);
    char *json = classifier_config_to_json(&small_res);
    ClassifierConfig back;
    Error err = {""};
    ck_assert_msg(classifier_config_from_json(json, &back, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(back.residual, 1);
    free(json);
    const char *old = "{\"in_channels\": 1, \"image_size\": 8, \"num_classes\": 3, "
                      "\"width\": 4, \"stages\": 2, \"blocks\": 2, \"groups\": 2, "
                      "\"hidden\": 0}";
    ck_assert_msg(classifier_config_from_json(old, &back, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(back.residual, 0);
}
END_TEST

START_TEST(test_config_json) {
    char *json = classifier_config_to_json(&small_fc);
    ClassifierConfig back;
    Error err = {""};
    ck_assert_msg(classifier_config_from_json(json, &back, &err) == 0, "%s", err.msg);
    ck_assert(memcmp(&back, &small_fc, sizeof small_fc) == 0);
    free(json);
    static const struct {
        const char *json, *message;
    } bad[] = {
        {"[1, 2]", "not a JSON object"},
        {"{\"in_channels\": 1, \"image_size\": 8, \"num_classes\": 3, \"width\": 4, "
         "\"stages\": 2, \"blocks\": 2, \"hidden\": 0}", "field 'groups' is missing"},
        {"{\"in_channels\": 1, \"image_size\": 8, \"num_classes\": 3, \"width\": 4.5, "
         "\"stages\": 2, \"blocks\": 2, \"groups\": 2, \"hidden\": 0}",
         "field 'width' is not an integer"},
        {"{\"in_channels\": 1, \"image_size\": 8, \"num_classes\": 3, \"width\": 4, "
         "\"stages\": 2, \"blocks\": 2, \"groups\": 3, \"hidden\": 0}",
         "groups 3 does not divide width 4"},
    };
    for (int i = 0; i < 4; i++) {
        ck_assert(classifier_config_from_json(bad[i].json, &back, &err) != 0);
        ck_assert_msg(strstr(err.msg, bad[i].message), "got \"%s\", want \"%s\"", err.msg,
                      bad[i].message);
    }
}
END_TEST

static void expect_load_error(const char *path, const char *needle) {
    Classifier *c = (Classifier *)1;
    Error err = {""};
    ck_assert_msg(classifier_load(path, DEVICE_CPU, &c, &err) != 0, "%s loaded", path);
    ck_assert(c == NULL);
    ck_assert_msg(strstr(err.msg, path) && strstr(err.msg, needle),
                  "error \"%s\" should name %s and say \"%s\"", err.msg, path, needle);
}

START_TEST(test_load_errors) {
    char path[600];
    scratch("missing.safetensors", path, sizeof path);
    expect_load_error(path, "cannot open");

    scratch("garbage.safetensors", path, sizeof path);
    FILE *f = fopen(path, "wb");
    fputs("this is not a safetensors file at all", f);
    fclose(f);
    expect_load_error(path, "header length");

    // a velocity model's weights: tensors and metadata, but no classifier configuration
    Classifier *c = make(&small, "load errors");
    scratch("teacher.safetensors", path, sizeof path);
    Error err = {""};
    const char *keys[] = {"model_config"}, *values[] = {"{}"};
    ck_assert_msg(params_save(classifier_params(c), path, 1, keys, values, &err) == 0, "%s",
                  err.msg);
    expect_load_error(path, "not a classifier file (dmdr train-classifier writes them); this "
                            "one holds a velocity model");

    // the configuration says width 8, the tensors are of width 4
    ClassifierConfig wider = small;
    wider.width = 8;
    char *json = classifier_config_to_json(&wider);
    const char *ckeys[] = {CLASSIFIER_CONFIG_KEY}, *cvalues[] = {json};
    scratch("wrong-config.safetensors", path, sizeof path);
    ck_assert(params_save(classifier_params(c), path, 1, ckeys, cvalues, &err) == 0);
    free(json);
    expect_load_error(path, "parameter 'stages.0.0.conv.weight' has shape (4, 1, 3, 3) in the "
                            "file, the model wants (8, 1, 3, 3)");

    // a configuration that is not one
    const char *bad[] = {"{\"width\": 4}"};
    scratch("bad-config.safetensors", path, sizeof path);
    ck_assert(params_save(classifier_params(c), path, 1, ckeys, bad, &err) == 0);
    expect_load_error(path, "metadata 'classifier_config': classifier_config: field");

    // a good file cut short
    scratch("truncated.safetensors", path, sizeof path);
    ck_assert(classifier_save(c, path, 0, NULL, NULL, &err) == 0);
    ck_assert(truncate(path, 200) == 0);
    expect_load_error(path, "");
    classifier_free(c);
}
END_TEST

// ---- learning and measuring ---------------------------------------------------------------------

// A small network on 2000 Fashion-MNIST training images for five epochs of AdamW, measured
// on 1000 test images: far above the 10% of chance (it reaches ~70%; the bar is 50%).
START_TEST(test_learns_fashion_mnist) {
    Dataset train, test;
    Error err = {""};
    if (access(FASHION_MNIST_DIR "/train-images-idx3-ubyte.gz", R_OK) != 0) {
        fprintf(stderr, "learns: dataset-fashion-mnist is not installed, skipped\n");
        return;
    }
    ck_assert_msg(fashion_mnist_load(NULL, true, &train, &err) == 0, "%s", err.msg);
    ck_assert_msg(fashion_mnist_load(NULL, false, &test, &err) == 0, "%s", err.msg);
    train.count = 2000;
    test.count = 1000;
    ClassifierConfig cfg = {.in_channels = 1, .image_size = 28, .num_classes = 10, .width = 8,
                            .stages = 3, .blocks = 1, .groups = 4};
    Classifier *c = make(&cfg, "learns");
    AdamW opt;
    AdamWConfig ac = adamw_config_default();
    adamw_init(&opt, classifier_params(c), ac);
    DataLoader loader;
    dataloader_init(&loader, &train, 50, test_seed_for("learns data"));
    for (int step = 0; step < 200; step++) {
        tensor_scope_begin();
        Tensor *x, *y;
        dataloader_next(&loader, &x, &y, DEVICE_CPU);
        Tensor *loss = op_cross_entropy(classifier_forward(c, x, NULL), y);
        adamw_zero_grad(&opt);
        autograd_backward(loss, NULL);
        adamw_step(&opt, 1e-2f, 1.0f);
        tensor_scope_end();
    }
    float *logits = malloc((size_t)test.count * 10 * sizeof *logits);
    classifier_apply(c, test.data, test.count, 250, logits, NULL);
    int correct = 0;
    for (int64_t i = 0; i < test.count; i++) {
        int best = 0;
        for (int k = 1; k < 10; k++)
            if (logits[i * 10 + k] > logits[i * 10 + best]) best = k;
        correct += best == test.labels[i];
    }
    ck_assert_msg(correct >= 500, "%d of 1000 test images right after 200 steps", correct);
    free(logits);
    dataloader_free(&loader);
    adamw_free(&opt);
    classifier_free(c);
    dataset_free(&train);
    dataset_free(&test);
}
END_TEST

// A reference of 24 images (8 per class) measured against itself: the same feature
// statistics (FID 0), every image on the reference manifold and vice versa (precision and
// recall 1), and the accuracy and reward of the logits as computed here.
START_TEST(test_eval_measure_self) {
    Classifier *c = make(&small, "measure");
    Dataset d;
    dataset_alloc_images(&d, 24, 1, 8, 8, 3);
    test_fill_uniform(d.data, 24 * 64, test_seed_for("measure"), -1.0f, 1.0f);
    for (int i = 0; i < 24; i++) d.labels[i] = i % 3;
    EvalReference ref;
    Error err = {""};
    ck_assert_msg(eval_reference_init(&ref, c, &d, &err) == 0, "%s", err.msg);
    EvalMetrics m;
    ck_assert_msg(eval_measure(c, &ref, d.data, d.labels, 24, &m, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(m.count, 24);
    ck_assert_msg(m.fid < 1e-6 && m.fid > -1e-6, "FID of a set against itself: %g", m.fid);
    ck_assert_msg(m.precision == 1.0 && m.recall == 1.0, "precision %g, recall %g", m.precision,
                  m.recall);
    float logits[24 * 3];
    classifier_apply(c, d.data, 24, 0, logits, NULL);
    double reward = 0;
    int correct = 0;
    for (int i = 0; i < 24; i++) {
        const float *r = logits + 3 * i;
        int best = r[1] > r[0] ? 1 : 0;
        best = r[2] > r[best] ? 2 : best;
        correct += best == d.labels[i];
        reward += r[d.labels[i]] - log(exp(r[0]) + exp(r[1]) + exp(r[2]));
    }
    ck_assert_msg(fabs(m.accuracy - correct / 24.0) < 1e-12, "accuracy %g, want %g", m.accuracy,
                  correct / 24.0);
    ck_assert_msg(fabs(m.reward - reward / 24) < 1e-5, "reward %g, want %g", m.reward,
                  reward / 24);

    // too few images, a label the classifier does not know, more of a class than the test set
    ck_assert(eval_measure(c, &ref, d.data, d.labels, 3, &m, &err) != 0);
    ck_assert_msg(strstr(err.msg, "3 images are too few"), "%s", err.msg);
    d.labels[5] = 3;
    ck_assert(eval_measure(c, &ref, d.data, d.labels, 24, &m, &err) != 0);
    ck_assert_msg(strstr(err.msg, "image 5 is labelled 3"), "%s", err.msg);
    for (int i = 0; i < 12; i++) d.labels[i] = 0;
    ck_assert(eval_measure(c, &ref, d.data, d.labels, 12, &m, &err) != 0);
    ck_assert_msg(strstr(err.msg, "class 0"), "%s", err.msg);
    eval_reference_free(&ref);
    dataset_free(&d);
    classifier_free(c);
}
END_TEST

int main(void) {
    Suite *s = suite_create("classifier");
    TCase *tc = test_scoped_tcase(s, "classifier");
    tcase_add_unchecked_fixture(tc, test_scratch_setup, test_scratch_teardown);
    tcase_add_loop_test(tc, test_shapes, 0, 3);
    tcase_add_test(tc, test_residual_names_and_json);
    tcase_add_test(tc, test_state_dict_names);
    tcase_add_test(tc, test_bad_configs);
    tcase_add_test(tc, test_apply_chunks_and_rows);
    tcase_add_loop_test(tc, test_gradcheck_input, 0, 3);
    tcase_add_test(tc, test_frozen_reward_gradient);
    tcase_add_test(tc, test_save_load_roundtrip);
    tcase_add_test(tc, test_config_json);
    tcase_add_test(tc, test_load_errors);
    tcase_add_test(tc, test_learns_fashion_mnist);
    tcase_add_test(tc, test_eval_measure_self);
    return test_run_suite(s);
}
