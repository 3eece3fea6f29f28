// Fuzz target: a checkpoint or weights file turned into a model, as `dmdr sample` and
// `dmdr eval` do (load_sampling_model, tools/eval/sampling.c): the __metadata__ read
// (checkpoint_read_model_config, checkpoint_read_metadata), the model_config JSON
// (model_config_from_json), the generator keys, model_create of the DiT, UNet or MLP the
// config describes, and checkpoint_load_weights (names, shapes, the EMA choice).
//
// A config the library accepts may still be large (up to the memory the machine has: a real
// use, not a bug), and building it would only spend the fuzzer's memory limit and time on
// initialising weights: such inputs are skipped once the config has been read and checked.
#include <string.h>

#include "nn/checkpoint.h"
#include "tensor/tensor.h"
#include "test/fuzz/fuzz.h"
#include "tools/eval/sampling.h"

// 16 MiB of weights: far more than any seed, far below libFuzzer's -rss_limit_mb
#define MAX_PARAMETERS (4.0 * 1024 * 1024)

int fuzz_checkpoint(const uint8_t *data, size_t size) {
    char path[4096];
    fuzz_write_file(fuzz_path(path, sizeof path, "model.safetensors"), data, size);
    ModelConfig mc;
    Error err = {{0}};
    if (checkpoint_read_model_config(path, &mc, &err) == 0 &&
        model_parameter_count(&mc) > MAX_PARAMETERS)
        return 0;
    tensor_scope_begin();
    SamplingModel sm;
    if (load_sampling_model(path, DEVICE_CPU, true, &sm, &err) == 0) {
        if (!sm.model) fuzz_fail("load_sampling_model gives a model", NULL);
        model_free(sm.model);
    } else {
        fuzz_refused(err.msg);
    }
    tensor_scope_end();
    storage_cache_clear(); // models of every size come and go: keep no blocks between inputs
    return 0;
}

FUZZ_ENTRY(fuzz_checkpoint)
