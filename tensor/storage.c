#include "tensor/storage.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "kernels/check.h"

// Blocks are rounded up to a size class and kept on a per-device free list when released.
// A training step allocates the same sizes every iteration, so from the second iteration on
// every request is served from the list: no malloc/cudaMalloc in the steady state.
typedef struct {
    void *ptr;
    size_t nbytes;
} CachedBlock;

typedef struct {
    CachedBlock *blocks;
    int count, capacity;
    StorageStats stats;
} DeviceCache;

static DeviceCache caches[DEVICE_COUNT];

// 256-byte granularity below 1 MiB, 1/8 power-of-two steps above: few classes, little waste.
static size_t size_class(size_t nbytes) {
    if (nbytes <= ((size_t)1 << 20)) return (nbytes + 255) & ~(size_t)255;
    size_t step = (size_t)1 << 17;
    while (step * 8 < nbytes) step <<= 1;
    return (nbytes + step - 1) / step * step;
}

static void *cache_take(DeviceCache *c, size_t nbytes) {
    for (int i = c->count - 1; i >= 0; i--) {
        if (c->blocks[i].nbytes == nbytes) {
            void *p = c->blocks[i].ptr;
            c->blocks[i] = c->blocks[--c->count];
            c->stats.bytes_cached -= nbytes;
            return p;
        }
    }
    return NULL;
}

static void cache_clear_device(Device d) {
    DeviceCache *c = &caches[d];
    const Backend *be = backend_get(d);
    for (int i = 0; i < c->count; i++) be->free(be, c->blocks[i].ptr);
    c->count = 0;
    c->stats.bytes_cached = 0;
}

Storage *storage_new(Device device, size_t nbytes) {
    const Backend *be = backend_get(device);
    DMDR_CHECK(be != NULL, "device %s is not available", device_name(device));
    DeviceCache *c = &caches[device];
    size_t cls = size_class(nbytes);
    void *p = cache_take(c, cls);
    if (!p) {
        p = be->alloc(be, cls);
        if (!p) {
            cache_clear_device(device);
            p = be->alloc(be, cls);
        }
        DMDR_CHECK(p != NULL, "out of %s memory allocating %zu bytes (%zu in use)",
                   device_name(device), cls, c->stats.bytes_in_use);
        c->stats.allocations++;
    }
    c->stats.bytes_in_use += cls;
    if (c->stats.bytes_in_use > c->stats.peak_bytes) c->stats.peak_bytes = c->stats.bytes_in_use;
    Storage *s = malloc(sizeof *s);
    DMDR_CHECK(s != NULL, "out of host memory");
    s->data = p;
    s->nbytes = cls;
    s->device = device;
    s->refcount = 1;
    return s;
}

void storage_retain(Storage *s) { s->refcount++; }

void storage_release(Storage *s) {
    if (!s || --s->refcount > 0) return;
    DeviceCache *c = &caches[s->device];
    if (c->count == c->capacity) {
        c->capacity = c->capacity ? 2 * c->capacity : 64;
        c->blocks = realloc(c->blocks, (size_t)c->capacity * sizeof *c->blocks);
        DMDR_CHECK(c->blocks != NULL, "out of host memory");
    }
    c->blocks[c->count++] = (CachedBlock){s->data, s->nbytes};
    c->stats.bytes_in_use -= s->nbytes;
    c->stats.bytes_cached += s->nbytes;
    free(s);
}

StorageStats storage_stats(Device device) { return caches[device].stats; }

void storage_reset_peak(Device device) {
    caches[device].stats.peak_bytes = caches[device].stats.bytes_in_use;
}

void storage_cache_clear(void) {
    for (int d = 0; d < DEVICE_COUNT; d++)
        if (caches[d].count) cache_clear_device((Device)d);
}

double host_memory_available(void) {
    FILE *f = fopen("/proc/meminfo", "r");
    if (f) {
        char line[128];
        unsigned long long kib;
        while (fgets(line, sizeof line, f))
            if (sscanf(line, "MemAvailable: %llu kB", &kib) == 1) {
                fclose(f);
                return (double)kib * 1024.0;
            }
        fclose(f);
    }
    return (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE);
}

const char *bytes_text(double bytes, char *buf, size_t n) {
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    int u = 0;
    while (bytes >= 1024.0 && u < 6) bytes /= 1024.0, u++;
    snprintf(buf, n, "%.1f %s", bytes, units[u]);
    return buf;
}
