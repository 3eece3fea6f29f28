#include "kernels/backend.h"

const Backend *backend_get(Device device) {
    switch (device) {
    case DEVICE_CPU: return &cpu_backend;
    default: return NULL; // no other backend is compiled into this build
    }
}

const char *device_name(Device device) {
    switch (device) {
    case DEVICE_CPU: return "cpu";
    case DEVICE_CUDA: return "cuda";
    default: return "unknown";
    }
}
