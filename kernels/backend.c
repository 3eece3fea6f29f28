#include "kernels/backend.h"

#include "dmdr_config.h"

#ifdef DMDR_HAVE_CUDA
#include "kernels/cuda/cuda_kernels.h"
#endif

const Backend *backend_get(Device device) {
    switch (device) {
    case DEVICE_CPU: return &cpu_backend;
#ifdef DMDR_HAVE_CUDA
    case DEVICE_CUDA: return cuda_backend(); // compiled in; NULL without a usable GPU
#endif
    default: return NULL; // not compiled into this build
    }
}

const char *device_name(Device device) {
    switch (device) {
    case DEVICE_CPU: return "cpu";
    case DEVICE_CUDA: return "cuda";
    default: return "unknown";
    }
}

const char *precision_name(Precision precision) {
    switch (precision) {
    case PRECISION_FP32: return "fp32";
    case PRECISION_BF16: return "bf16";
    default: return "unknown";
    }
}
