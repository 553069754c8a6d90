/* The echo worker (worker.lua) in C: spawned once per message, answers the sender directly
 * with the data upper-cased and its own pid. */

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "wasmhost.h"

/* The seed's worker sleeps 100 ms; the benchmark's (fast_worker.wasm, built from this file
 * with -DECHO_WORKER_SLEEP_MS=0 by guests/wasmhost.toml) does not. */
#ifndef ECHO_WORKER_SLEEP_MS
#define ECHO_WORKER_SLEEP_MS 100
#endif

bool wh_main(const wh_payload *args, size_t n, uint8_t *result, size_t cap, size_t *len,
             char *error, size_t error_cap) {
    char sender_text[300], data[4096];
    wh_pid sender;
    if (n != 2 || !wh_arg_text(args[0], sender_text, sizeof sender_text) ||
        !wh_arg_text(args[1], data, sizeof data) ||
        !wh_pid_parse(sender_text, strlen(sender_text), &sender)) {
        snprintf(error, error_cap, "expected a sender pid and a text");
        return false;
    }
    if (ECHO_WORKER_SLEEP_MS > 0) wh_sleep_ms(ECHO_WORKER_SLEEP_MS);
    for (char *c = data; *c; c++) *c = (char)toupper((unsigned char)*c);

    uint8_t buf[4500];
    CborEncoder encoder, map;
    cbor_encoder_init(&encoder, buf, sizeof buf, 0);
    cbor_encoder_create_map(&encoder, &map, 2);
    cbor_encode_text_stringz(&map, "data");
    cbor_encode_text_stringz(&map, data);
    cbor_encode_text_stringz(&map, "worker");
    wh_pid self = wh_pid_self();
    wh_encode_pid(&map, &self);
    cbor_encoder_close_container(&encoder, &map);
    wh_payload response = {buf, cbor_encoder_get_buffer_size(&encoder, buf)};
    wh_send_pid(&sender, "echo_response", response, NULL);
    wh_pid_free(&self);
    wh_pid_free(&sender);

    cbor_encoder_init(&encoder, result, cap, 0);
    cbor_encode_int(&encoder, 0);
    *len = cbor_encoder_get_buffer_size(&encoder, result);
    return true;
}
