/* A wasmhost process: prints a greeting with its pid on the terminal, and ends. */

#include <stdio.h>

#include "wasmhost.h"

bool wh_main(const wh_payload *args, size_t n, uint8_t *result, size_t cap, size_t *len,
             char *error, size_t error_cap) {
    (void)args, (void)n, (void)error, (void)error_cap;
    char pid[300], line[400];
    wh_pid self = wh_pid_self();
    wh_pid_format(&self, pid, sizeof pid);
    wh_pid_free(&self);
    snprintf(line, sizeof line, "Hello from C! I am %s.", pid);
    wh_print(line);

    /* The result: 0, `wasmhost run`'s exit code. */
    CborEncoder encoder;
    cbor_encoder_init(&encoder, result, cap, 0);
    cbor_encode_int(&encoder, 0);
    *len = cbor_encoder_get_buffer_size(&encoder, result);
    return true;
}
