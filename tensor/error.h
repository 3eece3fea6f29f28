// Errors caused by external input (a file, a flag, a config value) are values: the function
// returns -1 and fills an Error whose message names the file, the field and what was expected.
#pragma once

typedef struct {
    char msg[1024];
} Error;

// Formats the message into err (if not NULL) and returns -1, so callers can write
// `return error_set(err, "%s: ...", path);`.
int error_set(Error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
