// Fuzz target: safetensors_load (tensor/safetensors.c) on any file. Covers the 8-byte header
// length, the JSON header (dtypes, shapes, data_offsets, overlaps, duplicate names,
// __metadata__) and the F32/F16/BF16/I32 data reads. A loaded file is then read whole: every
// tensor found by name and summed, every metadata value looked up.
#include <string.h>

#include "tensor/safetensors.h"
#include "test/fuzz/fuzz.h"

int fuzz_safetensors(const uint8_t *data, size_t size) {
    char path[4096];
    fuzz_write_file(fuzz_path(path, sizeof path, "in.safetensors"), data, size);
    tensor_scope_begin();
    Safetensors st;
    Error err = {{0}};
    if (safetensors_load(path, &st, &err) == 0) {
        double sum = 0;
        for (int i = 0; i < st.count; i++) {
            Tensor *t = safetensors_find(&st, st.names[i]);
            if (t != st.tensors[i])
                fuzz_fail("safetensors_find returns the named tensor", st.names[i]);
            int64_t n = tensor_numel(t);
            if (t->dtype == DTYPE_F32)
                for (int64_t k = 0; k < n; k++) sum += tensor_f32(t)[k];
            else
                for (int64_t k = 0; k < n; k++) sum += tensor_i32(t)[k];
        }
        for (int i = 0; i < st.metadata_count; i++)
            if (safetensors_metadata(&st, st.metadata_keys[i]) == NULL)
                fuzz_fail("safetensors_metadata finds every key", st.metadata_keys[i]);
        (void)sum;
        safetensors_free(&st);
    } else {
        fuzz_refused(err.msg);
    }
    tensor_scope_end();
    return 0;
}

FUZZ_ENTRY(fuzz_safetensors)
