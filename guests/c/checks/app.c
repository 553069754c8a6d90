/* The C library, exercised: each mode runs one check and returns what it saw, for
 * tests/it/languages.rs to assert on (the checks of guests/python/checks, in C). */

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "wasmhost.h"

typedef struct {
    CborEncoder encoder;
    char *error;
    size_t error_cap;
} out_t;

static bool failed(out_t *out, const char *message) {
    snprintf(out->error, out->error_cap, "%s", message);
    return false;
}

static bool send_by_name(out_t *out) {
    wh_error err;
    if (!wh_register("c-checks", &err)) return failed(out, err.message);
    uint8_t buf[400];
    CborEncoder e, map;
    cbor_encoder_init(&e, buf, sizeof buf, 0);
    cbor_encoder_create_map(&e, &map, 2);
    cbor_encode_text_stringz(&map, "n");
    cbor_encode_int(&map, 1);
    cbor_encode_text_stringz(&map, "pid");
    wh_pid self = wh_pid_self();
    wh_encode_pid(&map, &self);
    cbor_encoder_close_container(&e, &map);
    wh_payload payload = {buf, cbor_encoder_get_buffer_size(&e, buf)};
    if (!wh_send_name("c-checks", "greeting", payload, &err)) return failed(out, err.message);
    wh_message message;
    if (!wh_receive(10000, &message)) return failed(out, "no message");
    /* [topic, payload, from == self]: the payload is copied back as the map it is. */
    CborEncoder array, copy;
    cbor_encoder_create_array(&out->encoder, &array, 3);
    cbor_encode_text_stringz(&array, message.topic);
    cbor_encoder_create_map(&array, &copy, 2);
    cbor_encode_text_stringz(&copy, "n");
    cbor_encode_int(&copy, 1);
    cbor_encode_text_stringz(&copy, "pid");
    CborParser parser;
    CborValue value, field;
    char pid_text[300];
    size_t pid_len = sizeof pid_text;
    cbor_parser_init(message.payload, message.len, 0, &parser, &value);
    if (cbor_value_map_find_value(&value, "pid", &field) != CborNoError ||
        cbor_value_copy_text_string(&field, pid_text, &pid_len, NULL) != CborNoError)
        return failed(out, "no pid in the payload");
    cbor_encode_text_string(&copy, pid_text, pid_len);
    cbor_encoder_close_container(&array, &copy);
    cbor_encode_boolean(&array, message.has_from && wh_pid_equal(&message.from, &self));
    cbor_encoder_close_container(&out->encoder, &array);
    wh_message_free(&message);
    wh_pid_free(&self);
    return true;
}

/* A pid's text read and written back (null if it is not a pid), and whether it equals itself
 * read again. */
static bool pid_read(out_t *out, const char *text) {
    wh_pid pid, again;
    if (!wh_pid_parse(text, strlen(text), &pid)) {
        cbor_encode_null(&out->encoder);
        return true;
    }
    char shown[400];
    int len = wh_pid_format(&pid, shown, sizeof shown);
    bool same = len > 0 && (size_t)len < sizeof shown &&
                wh_pid_parse(shown, (size_t)len, &again);
    if (same) {
        same = wh_pid_equal(&pid, &again);
        wh_pid_free(&again);
    }
    CborEncoder array;
    cbor_encoder_create_array(&out->encoder, &array, 2);
    cbor_encode_text_stringz(&array, shown);
    cbor_encode_boolean(&array, same);
    cbor_encoder_close_container(&out->encoder, &array);
    wh_pid_free(&pid);
    return true;
}

static bool unknown_name(out_t *out) {
    wh_error err;
    uint8_t hi[] = {0x62, 'h', 'i'};
    wh_payload payload = {hi, sizeof hi};
    if (wh_send_name("nobody", "greeting", payload, &err)) {
        cbor_encode_text_stringz(&out->encoder, "sent");
        return true;
    }
    CborEncoder array;
    cbor_encoder_create_array(&out->encoder, &array, 2);
    cbor_encode_text_stringz(&array, err.kind);
    cbor_encode_text_stringz(&array, err.message);
    cbor_encoder_close_container(&out->encoder, &array);
    return true;
}

static bool select_timeout(out_t *out) {
    /* Nothing comes within 20 ms; then a message to itself is what select finds. */
    wh_ready first = wh_select(20);
    uint8_t hi[] = {0x62, 'h', 'i'};
    wh_pid self = wh_pid_self();
    wh_send_pid(&self, "note", (wh_payload){hi, sizeof hi}, NULL);
    wh_pid_free(&self);
    wh_ready second = wh_select(10000);
    wh_message message;
    bool taken = second == WH_MESSAGE && wh_receive(0, &message);
    if (taken) wh_message_free(&message);
    CborEncoder array;
    cbor_encoder_create_array(&out->encoder, &array, 3);
    if (first == WH_TIMEOUT) cbor_encode_null(&array); else cbor_encode_text_stringz(&array, "found");
    cbor_encode_boolean(&array, second == WH_MESSAGE);
    cbor_encode_boolean(&array, taken);
    cbor_encoder_close_container(&out->encoder, &array);
    return true;
}

/* The number a message carries (its payload is one CBOR integer). */
static int64_t number_of(const wh_message *message) {
    CborParser parser;
    CborValue value;
    int64_t n = -1;
    if (cbor_parser_init(message->payload, message->len, 0, &parser, &value) == CborNoError)
        cbor_value_get_int64_checked(&value, &n);
    return n;
}

/* Sends itself `count` numbers, then takes them back every way there is: a blocking
 * `wh_receive` (which takes a run at once), `wh_select` then `wh_receive(0)`, and
 * `wh_receive` with a timeout. Returns [numbers, whether nothing was left]. */
/* Sends itself the numbers 0 to `count` - 1 (topic `n`); false if one is refused. */
static bool send_numbers(out_t *out, int64_t count) {
    wh_pid self = wh_pid_self();
    for (int64_t i = 0; i < count; i++) {
        uint8_t buf[16];
        CborEncoder e;
        cbor_encoder_init(&e, buf, sizeof buf, 0);
        cbor_encode_int(&e, i);
        wh_payload payload = {buf, cbor_encoder_get_buffer_size(&e, buf)};
        wh_error err;
        if (!wh_send_pid(&self, "n", payload, &err)) {
            wh_pid_free(&self);
            return failed(out, err.message);
        }
    }
    wh_pid_free(&self);
    return true;
}

static bool fifo(out_t *out, int64_t count) {
    if (!send_numbers(out, count)) return false;
    CborEncoder array, numbers;
    cbor_encoder_create_array(&out->encoder, &array, 2);
    cbor_encoder_create_array(&array, &numbers, CborIndefiniteLength);
    for (int64_t seen = 0; seen < count; seen++) {
        wh_message message;
        bool got;
        if (seen == 0) {
            got = wh_receive(-1, &message);
        } else if (seen % 2 == 1) {
            got = wh_select(10000) == WH_MESSAGE && wh_receive(0, &message);
        } else {
            got = wh_receive(10000, &message);
        }
        if (!got) return failed(out, "a message went missing");
        cbor_encode_int(&numbers, number_of(&message));
        wh_message_free(&message);
    }
    cbor_encoder_close_container(&array, &numbers);
    wh_message extra;
    bool left = wh_receive(0, &extra);
    if (left) wh_message_free(&extra);
    cbor_encode_boolean(&array, !left);
    cbor_encoder_close_container(&out->encoder, &array);
    return true;
}

/* Hibernates with `state` (`n` numbers, as a CBOR array); returns only if refused. */
static bool hibernate_with(out_t *out, const int64_t *state, size_t n, int64_t wake_after_ms) {
    uint8_t buf[512];
    CborEncoder e, array;
    cbor_encoder_init(&e, buf, sizeof buf, 0);
    cbor_encoder_create_array(&e, &array, n);
    for (size_t i = 0; i < n; i++) cbor_encode_int(&array, state[i]);
    cbor_encoder_close_container(&e, &array);
    wh_payload payload = {buf, cbor_encoder_get_buffer_size(&e, buf)};
    wh_error err;
    wh_hibernate(payload, wake_after_ms, &err);
    return failed(out, err.message);
}

/* Sends itself `count` numbers and reads one (the library takes the run at once), then
 * hibernates: the unread ones are kept and wake it at once. Reads the rest there and
 * hibernates again, woken by its timer this time; returns [count, what it read, whether
 * nothing was left]. Its state is [step, numbers read]. */
static bool hibernate(out_t *out, int64_t count) {
    int64_t state[33];
    size_t kept = 0;
    wh_payload resumed;
    if (wh_resumed(&resumed)) {
        CborParser parser;
        CborValue value, item;
        if (cbor_parser_init(resumed.data, resumed.len, 0, &parser, &value) != CborNoError ||
            cbor_value_enter_container(&value, &item) != CborNoError)
            return failed(out, "the state is not readable");
        while (!cbor_value_at_end(&item) && kept < 33) {
            if (cbor_value_get_int64_checked(&item, &state[kept++]) != CborNoError ||
                cbor_value_advance(&item) != CborNoError)
                return failed(out, "the state is not readable");
        }
    }
    wh_message message;
    if (kept == 0) {
        if (!send_numbers(out, count)) return false;
        if (!wh_receive(-1, &message)) return failed(out, "a message went missing");
        state[0] = 1;
        state[1] = number_of(&message);
        wh_message_free(&message);
        return hibernate_with(out, state, 2, 10000);
    }
    if (state[0] == 1) {
        while ((int64_t)kept - 1 < count) {
            if (!wh_receive(10000, &message)) return failed(out, "a message went missing");
            state[kept++] = number_of(&message);
            wh_message_free(&message);
        }
        state[0] = 2;
        return hibernate_with(out, state, kept, 1);
    }
    CborEncoder array, numbers;
    cbor_encoder_create_array(&out->encoder, &array, 3);
    cbor_encode_int(&array, count);
    cbor_encoder_create_array(&array, &numbers, kept - 1);
    for (size_t i = 1; i < kept; i++) cbor_encode_int(&numbers, state[i]);
    cbor_encoder_close_container(&array, &numbers);
    bool left = wh_receive(0, &message);
    if (left) wh_message_free(&message);
    cbor_encode_boolean(&array, !left);
    cbor_encoder_close_container(&out->encoder, &array);
    return true;
}

/* Sends itself 7, waits for the upgrade and hands `answer` (a CBOR integer) over; the new
 * instance returns [answer, the number], which waited in the mailbox meanwhile. */
static bool upgrade(out_t *out, wh_payload answer) {
    wh_payload resumed;
    if (!wh_resumed(&resumed)) {
        wh_pid self = wh_pid_self();
        uint8_t seven[] = {0x07};
        wh_payload payload = {seven, sizeof seven};
        wh_error err;
        bool sent = wh_send_pid(&self, "n", payload, &err);
        wh_pid_free(&self);
        if (!sent) return failed(out, err.message);
        wh_event event;
        if (!wh_next_event(10000, &event)) return failed(out, "no upgrade within 10 s");
        bool upgrading = event.kind == WH_UPGRADE;
        wh_event_free(&event);
        if (!upgrading) return failed(out, "not an upgrade");
        wh_hand_over(answer, &err);
        return failed(out, err.message);
    }
    CborParser parser;
    CborValue value;
    int64_t state = -1;
    if (cbor_parser_init(resumed.data, resumed.len, 0, &parser, &value) != CborNoError ||
        cbor_value_get_int64_checked(&value, &state) != CborNoError)
        return failed(out, "the state is not readable");
    wh_message message;
    if (!wh_receive(10000, &message)) return failed(out, "the message went missing");
    CborEncoder array;
    cbor_encoder_create_array(&out->encoder, &array, 2);
    cbor_encode_int(&array, state);
    cbor_encode_int(&array, number_of(&message));
    wh_message_free(&message);
    cbor_encoder_close_container(&out->encoder, &array);
    return true;
}

static bool monitor(out_t *out, const char *entry) {
    uint8_t buf[2][64];
    wh_payload args[2][2];
    CborEncoder e, map;
    /* ("return", {answer: 42}) and ("fail", "on purpose") */
    cbor_encoder_init(&e, buf[0], sizeof buf[0], 0);
    cbor_encode_text_stringz(&e, "return");
    size_t mode_len = cbor_encoder_get_buffer_size(&e, buf[0]);
    cbor_encoder_create_map(&e, &map, 1);
    cbor_encode_text_stringz(&map, "answer");
    cbor_encode_int(&map, 42);
    cbor_encoder_close_container(&e, &map);
    args[0][0] = (wh_payload){buf[0], mode_len};
    args[0][1] = (wh_payload){buf[0] + mode_len, cbor_encoder_get_buffer_size(&e, buf[0]) - mode_len};
    cbor_encoder_init(&e, buf[1], sizeof buf[1], 0);
    cbor_encode_text_stringz(&e, "fail");
    mode_len = cbor_encoder_get_buffer_size(&e, buf[1]);
    cbor_encode_text_stringz(&e, "on purpose");
    args[1][0] = (wh_payload){buf[1], mode_len};
    args[1][1] = (wh_payload){buf[1] + mode_len, cbor_encoder_get_buffer_size(&e, buf[1]) - mode_len};

    CborEncoder seen;
    cbor_encoder_create_array(&out->encoder, &seen, 2);
    for (int i = 0; i < 2; i++) {
        wh_pid child;
        wh_error err;
        if (!wh_spawn_monitored(entry, "app:processes", args[i], 2, &child, &err))
            return failed(out, err.message);
        wh_event event;
        if (!wh_next_event(10000, &event) || event.kind != WH_EXIT) return failed(out, "no exit");
        CborEncoder row;
        cbor_encoder_create_array(&seen, &row, 5);
        cbor_encode_boolean(&row, wh_pid_equal(&event.from, &child));
        cbor_encode_text_stringz(&row, event.reason);
        if (event.normal) {
            /* The value, {answer: 42}, read and written again. */
            CborParser parser;
            CborValue value, answer;
            int64_t n = 0;
            cbor_parser_init(event.value, event.value_len, 0, &parser, &value);
            cbor_value_map_find_value(&value, "answer", &answer);
            cbor_value_get_int64(&answer, &n);
            CborEncoder m;
            cbor_encoder_create_map(&row, &m, 1);
            cbor_encode_text_stringz(&m, "answer");
            cbor_encode_int(&m, n);
            cbor_encoder_close_container(&row, &m);
            cbor_encode_text_stringz(&row, "");
            cbor_encode_text_stringz(&row, "returned");
        } else {
            char shown[300];
            snprintf(shown, sizeof shown, "%s: %s", event.reason, event.text ? event.text : "");
            cbor_encode_null(&row);
            cbor_encode_text_stringz(&row, event.text ? event.text : "");
            cbor_encode_text_stringz(&row, shown);
        }
        cbor_encoder_close_container(&seen, &row);
        wh_event_free(&event);
        wh_pid_free(&child);
    }
    cbor_encoder_close_container(&out->encoder, &seen);
    return true;
}

static bool log_fields(out_t *out) {
    uint8_t count[] = {0x03}, name[] = {0x61, 'c'}, items[] = {0x82, 0x01, 0x02};
    uint8_t pid[320];
    CborEncoder e;
    cbor_encoder_init(&e, pid, sizeof pid, 0);
    wh_pid self = wh_pid_self();
    wh_encode_pid(&e, &self);
    wh_pid_free(&self);
    wh_field fields[] = {
        {"count", {count, sizeof count}},
        {"name", {name, sizeof name}},
        {"items", {items, sizeof items}},
        {"pid", {pid, cbor_encoder_get_buffer_size(&e, pid)}},
    };
    wh_log(WH_INFO, "checked", fields, 4);
    cbor_encode_int(&out->encoder, 0);
    return true;
}

static bool file(out_t *out) {
    FILE *f = fopen("/etc/passwd", "r");
    if (f) {
        fclose(f);
        cbor_encode_text_stringz(&out->encoder, "read");
        return true;
    }
    cbor_encode_text_stringz(&out->encoder, strerror(errno));
    return true;
}

static bool ungranted(out_t *out) {
    uint8_t note[] = {0x66, 'b', 'e', 'f', 'o', 'r', 'e'};
    wh_pid self = wh_pid_self();
    wh_send_pid(&self, "note", (wh_payload){note, sizeof note}, NULL);
    wh_pid_free(&self);
    wh_sleep_ms(1);
    cbor_encode_text_stringz(&out->encoder, "slept");
    return true;
}

static bool wait_for_cancel(out_t *out) {
    for (;;) {
        wh_event event;
        if (!wh_next_event(-1, &event)) continue;
        if (event.kind == WH_CANCEL) {
            cbor_encode_text_stringz(&out->encoder, event.text ? event.text : "");
            wh_event_free(&event);
            return true;
        }
        wh_event_free(&event);
    }
}

bool wh_main(const wh_payload *args, size_t n, uint8_t *result, size_t cap, size_t *len,
             char *error, size_t error_cap) {
    out_t out = {.error = error, .error_cap = error_cap};
    cbor_encoder_init(&out.encoder, result, cap, 0);
    char mode[64], text[256];
    if (n < 1 || !wh_arg_text(args[0], mode, sizeof mode)) return failed(&out, "no mode");
    bool ok;
    if (strcmp(mode, "return") == 0 && n == 2 && args[1].len <= cap) {
        memcpy(result, args[1].data, args[1].len);
        *len = args[1].len;
        return true;
    } else if (strcmp(mode, "fail") == 0) {
        return failed(&out, n == 2 && wh_arg_text(args[1], text, sizeof text) ? text : "failed");
    } else if (strcmp(mode, "pid") == 0) {
        ok = pid_read(&out, n == 2 && wh_arg_text(args[1], text, sizeof text) ? text : "");
    } else if (strcmp(mode, "send-by-name") == 0) {
        ok = send_by_name(&out);
    } else if (strcmp(mode, "unknown-name") == 0) {
        ok = unknown_name(&out);
    } else if (strcmp(mode, "fifo") == 0 && n == 2) {
        CborParser parser;
        CborValue value;
        int64_t count = 0;
        if (cbor_parser_init(args[1].data, args[1].len, 0, &parser, &value) != CborNoError ||
            cbor_value_get_int64_checked(&value, &count) != CborNoError || count < 1)
            return failed(&out, "fifo takes a count");
        ok = fifo(&out, count);
    } else if (strcmp(mode, "hibernate") == 0 && n == 2) {
        CborParser parser;
        CborValue value;
        int64_t count = 0;
        if (cbor_parser_init(args[1].data, args[1].len, 0, &parser, &value) != CborNoError ||
            cbor_value_get_int64_checked(&value, &count) != CborNoError || count < 1 ||
            count > 32)
            return failed(&out, "hibernate takes a count of 1 to 32");
        ok = hibernate(&out, count);
    } else if (strcmp(mode, "upgrade") == 0 && n == 2) {
        ok = upgrade(&out, args[1]);
    } else if (strcmp(mode, "select-timeout") == 0) {
        ok = select_timeout(&out);
    } else if (strcmp(mode, "monitor") == 0 && n == 2 && wh_arg_text(args[1], text, sizeof text)) {
        ok = monitor(&out, text);
    } else if (strcmp(mode, "log") == 0) {
        ok = log_fields(&out);
    } else if (strcmp(mode, "file") == 0) {
        ok = file(&out);
    } else if (strcmp(mode, "ungranted") == 0) {
        ok = ungranted(&out);
    } else if (strcmp(mode, "wait") == 0) {
        ok = wait_for_cancel(&out);
    } else {
        snprintf(error, error_cap, "unknown mode %s", mode);
        return false;
    }
    *len = cbor_encoder_get_buffer_size(&out.encoder, result);
    return ok;
}
