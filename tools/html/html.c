#include "tools/html/html.h"

#include <stdlib.h>
#include <string.h>

#define PNG_MAX_BYTES (64 << 20) // a sample grid is tens of KB; a bigger file is not one

void html_text(FILE *out, const char *text) {
    for (const char *p = text; *p; p++) {
        switch (*p) {
        case '&': fputs("&amp;", out); break;
        case '<': fputs("&lt;", out); break;
        case '>': fputs("&gt;", out); break;
        case '"': fputs("&quot;", out); break;
        default: fputc(*p, out);
        }
    }
}

void html_base64(FILE *out, const unsigned char *data, size_t n) {
    static const char digits[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < n; i += 3) {
        // 3 bytes -> 24 bits -> 4 digits; a short last group is padded with '='
        unsigned v = (unsigned)data[i] << 16;
        if (i + 1 < n) v |= (unsigned)data[i + 1] << 8;
        if (i + 2 < n) v |= data[i + 2];
        char quad[4] = {digits[v >> 18 & 63], digits[v >> 12 & 63],
                        i + 1 < n ? digits[v >> 6 & 63] : '=', i + 2 < n ? digits[v & 63] : '='};
        fwrite(quad, 1, 4, out);
    }
}

bool html_png(FILE *out, const char *path, const char *alt) {
    FILE *f = fopen(path, "rb");
    if (!f) return false;
    bool ok = false;
    unsigned char *data = NULL;
    long size = -1;
    if (fseek(f, 0, SEEK_END) == 0) size = ftell(f);
    if (size >= 8 && size <= PNG_MAX_BYTES && fseek(f, 0, SEEK_SET) == 0 &&
        (data = malloc((size_t)size)) && fread(data, 1, (size_t)size, f) == (size_t)size &&
        memcmp(data, "\x89PNG\r\n\x1a\n", 8) == 0) {
        fputs("<img src=\"data:image/png;base64,", out);
        html_base64(out, data, (size_t)size);
        fputs("\" alt=\"", out);
        html_text(out, alt);
        fputs("\">", out);
        ok = true;
    }
    free(data);
    fclose(f);
    return ok;
}
