// The few pieces a self-contained HTML page needs: escaped text, and files embedded as
// data: URIs (base64) so the page reads with no network and nothing beside it.
#pragma once

#include <stdbool.h>
#include <stdio.h>

// text with &, <, >, " escaped
void html_text(FILE *out, const char *text);

// base64 of n bytes (RFC 4648, with padding)
void html_base64(FILE *out, const unsigned char *data, size_t n);

// <img src="data:image/png;base64,..." alt="alt"> of the PNG file at path -> true; false (and
// nothing written) when it cannot be read or is not a PNG.
bool html_png(FILE *out, const char *path, const char *alt);
