/* wasmhost for C: see wasmhost.h. */

#include "wasmhost.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "guest.h"

/* --- strings and pids ------------------------------------------------------------------ */

static guest_string_t borrowed(const char *text) {
    guest_string_t s;
    guest_string_set(&s, text);
    return s;
}

static char *owned_text(const guest_string_t *s) {
    char *text = malloc(s->len + 1);
    if (text) {
        memcpy(text, s->ptr, s->len);
        text[s->len] = 0;
    }
    return text;
}

static wh_pid pid_of(const wasmhost_abi_types_pid_t *wit) {
    wh_pid pid = {NULL, 0, owned_text(&wit->host), wit->id};
    if (wit->node.is_some) {
        pid.node = owned_text(&wit->node.val.name);
        pid.incarnation = wit->node.val.incarnation;
    }
    return pid;
}

static wasmhost_abi_types_pid_t wit_of(const wh_pid *pid) {
    wasmhost_abi_types_pid_t wit = {{false}, borrowed(pid->host), pid->id};
    if (pid->node) {
        wit.node.is_some = true;
        wit.node.val.name = borrowed(pid->node);
        wit.node.val.incarnation = pid->incarnation;
    }
    return wit;
}

wh_pid wh_pid_self(void) {
    wasmhost_abi_types_pid_t wit;
    wasmhost_abi_process_self_pid(&wit);
    wh_pid pid = pid_of(&wit);
    wasmhost_abi_types_pid_free(&wit);
    return pid;
}

/* The node part of `{b.7@…`: `name` up to the last `.` before `@`, the incarnation after. */
static bool node_of(const char *start, const char *at, wh_pid *out) {
    const char *dot = NULL;
    for (const char *c = start; c < at; c++) {
        bool fine = (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-' || *c == '_';
        if (*c == '.') dot = c;
        else if (!fine) return false;
    }
    if (!dot || dot == start || dot - start > 63 || dot + 1 == at || *start == '-' || *start == '_')
        return false;
    for (const char *c = start; c < dot; c++)
        if (*c == '.') return false;
    uint64_t incarnation = 0;
    for (const char *c = dot + 1; c < at; c++) {
        if (*c < '0' || *c > '9') return false;
        uint64_t digit = (uint64_t)(*c - '0');
        if (incarnation > (UINT64_MAX - digit) / 10) return false;
        incarnation = incarnation * 10 + digit;
    }
    size_t name_len = (size_t)(dot - start);
    out->node = malloc(name_len + 1);
    if (!out->node) return false;
    memcpy(out->node, start, name_len);
    out->node[name_len] = 0;
    out->incarnation = incarnation;
    return true;
}

bool wh_pid_parse(const char *text, size_t len, wh_pid *out) {
    if (len < 6 || text[0] != '{' || text[len - 1] != '}') return false;
    const char *bar = memchr(text, '|', len);
    if (!bar || bar == text + 1 || (size_t)(text + len - bar) < 5 || bar[1] != '0' || bar[2] != 'x')
        return false;
    /* A host entry has no `@`: one before the host names the node. */
    const char *host = text + 1;
    out->node = NULL;
    out->incarnation = 0;
    const char *at = memchr(host, '@', (size_t)(bar - host));
    if (at) {
        if (at + 1 == bar || !node_of(host, at, out)) return false;
        host = at + 1;
    }
    uint64_t id = 0;
    for (const char *c = bar + 3; c < text + len - 1; c++) {
        int digit = (*c >= '0' && *c <= '9') ? *c - '0'
                    : (*c >= 'a' && *c <= 'f') ? *c - 'a' + 10
                    : (*c >= 'A' && *c <= 'F') ? *c - 'A' + 10 : -1;
        if (digit < 0 || id > UINT64_MAX / 16) {
            free(out->node);
            out->node = NULL;
            return false;
        }
        id = id * 16 + (uint64_t)digit;
    }
    size_t host_len = (size_t)(bar - host);
    out->host = malloc(host_len + 1);
    if (!out->host) {
        free(out->node);
        out->node = NULL;
        return false;
    }
    memcpy(out->host, host, host_len);
    out->host[host_len] = 0;
    out->id = id;
    return true;
}

int wh_pid_format(const wh_pid *pid, char *buf, size_t cap) {
    if (pid->node)
        return snprintf(buf, cap, "{%s.%llu@%s|0x%05llx}", pid->node,
                        (unsigned long long)pid->incarnation, pid->host,
                        (unsigned long long)pid->id);
    return snprintf(buf, cap, "{%s|0x%05llx}", pid->host, (unsigned long long)pid->id);
}

bool wh_pid_equal(const wh_pid *a, const wh_pid *b) {
    bool same_node = (!a->node && !b->node) ||
                     (a->node && b->node && a->incarnation == b->incarnation &&
                      strcmp(a->node, b->node) == 0);
    return same_node && a->id == b->id && strcmp(a->host, b->host) == 0;
}

CborError wh_encode_pid(CborEncoder *encoder, const wh_pid *pid) {
    char text[400];
    int len = wh_pid_format(pid, text, sizeof text);
    if (len < 0 || (size_t)len >= sizeof text) return CborErrorInternalError;
    return cbor_encode_text_string(encoder, text, (size_t)len);
}

void wh_pid_free(wh_pid *pid) {
    free(pid->node);
    pid->node = NULL;
    free(pid->host);
    pid->host = NULL;
}

/* --- errors ---------------------------------------------------------------------------- */

static void fail(wh_error *err, const char *kind, const char *format, const guest_string_t *text) {
    if (!err) return;
    err->kind = kind;
    snprintf(err->message, sizeof err->message, format, (int)(text ? text->len : 0),
             text ? (const char *)text->ptr : "");
}

/* --- sending --------------------------------------------------------------------------- */

static bool send(wasmhost_abi_process_destination_t *to, const char *topic, wh_payload payload,
                 wh_error *err) {
    guest_string_t t = borrowed(topic);
    wasmhost_abi_process_payload_t p = {(uint8_t *)payload.data, payload.len};
    wasmhost_abi_process_send_error_t e;
    if (wasmhost_abi_process_send(to, &t, &p, &e)) return true;
    switch (e.tag) {
    case WASMHOST_ABI_PROCESS_SEND_ERROR_UNKNOWN_NAME:
        fail(err, "unknown_name", "no process is registered as \"%.*s\"", &e.val.unknown_name);
        break;
    case WASMHOST_ABI_PROCESS_SEND_ERROR_TOO_LARGE:
        if (err) {
            err->kind = "too_large";
            snprintf(err->message, sizeof err->message,
                     "the message is larger than the receiver's limit of %llu bytes",
                     (unsigned long long)e.val.too_large);
        }
        break;
    case WASMHOST_ABI_PROCESS_SEND_ERROR_LIMIT:
        fail(err, "limit", "limit: %.*s", &e.val.limit);
        break;
    default:
        fail(err, "mailbox_full", "the receiver's mailbox is full%.*s", NULL);
    }
    wasmhost_abi_process_send_error_free(&e);
    return false;
}

bool wh_send_name(const char *name, const char *topic, wh_payload payload, wh_error *err) {
    wasmhost_abi_process_destination_t to = {.tag = WASMHOST_ABI_PROCESS_DESTINATION_NAME};
    to.val.name = borrowed(name);
    return send(&to, topic, payload, err);
}

bool wh_send_pid(const wh_pid *pid, const char *topic, wh_payload payload, wh_error *err) {
    wasmhost_abi_process_destination_t to = {.tag = WASMHOST_ABI_PROCESS_DESTINATION_PID};
    to.val.pid = wit_of(pid);
    return send(&to, topic, payload, err);
}

/* --- waiting --------------------------------------------------------------------------- */

static bool have_mailbox, have_events;
/* Messages taken from the host in one call (`try-receive-many`, `receive-many`) and not
 * handed out yet: the rest of a run of waiting messages costs no host call. */
#define WH_TAKE_AT_ONCE 32
static wasmhost_abi_process_list_message_t taken;
static size_t taken_next;
static wasmhost_abi_process_own_mailbox_t the_mailbox;
static wasmhost_abi_process_own_events_t events;

/* Polls `source` (and a timer when `timeout_ms` >= 0) until `source` may be ready; false
 * once the timer fires first. */
static bool wait_for(wasi_io_poll_own_pollable_t source, int64_t timeout_ms,
                     wasmhost_abi_time_own_timer_t *timer, bool *have_timer) {
    wasi_io_poll_borrow_pollable_t pollables[2];
    pollables[0] = wasi_io_poll_borrow_pollable(source);
    size_t n = 1;
    wasi_io_poll_own_pollable_t timer_pollable;
    if (timeout_ms >= 0) {
        if (!*have_timer) {
            *timer = wasmhost_abi_time_constructor_timer((uint64_t)timeout_ms * 1000000u);
            *have_timer = true;
        }
        timer_pollable = wasmhost_abi_time_method_timer_subscribe(
            wasmhost_abi_time_borrow_timer(*timer));
        pollables[n++] = wasi_io_poll_borrow_pollable(timer_pollable);
    }
    wasi_io_poll_list_borrow_pollable_t list = {pollables, n};
    guest_list_u32_t ready;
    wasi_io_poll_poll(&list, &ready);
    guest_list_u32_free(&ready);
    wasi_io_poll_pollable_drop_own(source);
    if (timeout_ms >= 0) wasi_io_poll_pollable_drop_own(timer_pollable);
    return !(timeout_ms >= 0 &&
             wasmhost_abi_time_method_timer_fired(wasmhost_abi_time_borrow_timer(*timer)));
}

static void open_mailbox(void) {
    if (!have_mailbox) {
        the_mailbox = wasmhost_abi_process_constructor_mailbox();
        have_mailbox = true;
    }
}

static void open_events(void) {
    if (!have_events) {
        events = wasmhost_abi_process_constructor_events();
        have_events = true;
    }
}

wh_ready wh_select(int64_t timeout_ms) {
    open_mailbox();
    open_events();
    if (taken_next < taken.len) return WH_MESSAGE;
    wasmhost_abi_time_own_timer_t timer;
    wasi_io_poll_own_pollable_t own[3];
    own[0] = wasmhost_abi_process_method_mailbox_subscribe(wasmhost_abi_process_borrow_mailbox(the_mailbox));
    own[1] = wasmhost_abi_process_method_events_subscribe(
        wasmhost_abi_process_borrow_events(events));
    size_t n = 2;
    if (timeout_ms >= 0) {
        timer = wasmhost_abi_time_constructor_timer((uint64_t)timeout_ms * 1000000u);
        own[n++] = wasmhost_abi_time_method_timer_subscribe(wasmhost_abi_time_borrow_timer(timer));
    }
    wasi_io_poll_borrow_pollable_t borrowed_pollables[3];
    for (size_t i = 0; i < n; i++) borrowed_pollables[i] = wasi_io_poll_borrow_pollable(own[i]);
    wasi_io_poll_list_borrow_pollable_t list = {borrowed_pollables, n};
    /* `poll` returns once at least one is ready, and names each that is. */
    guest_list_u32_t ready;
    wasi_io_poll_poll(&list, &ready);
    bool message = false, event = false;
    for (size_t i = 0; i < ready.len; i++) {
        message |= ready.ptr[i] == 0;
        event |= ready.ptr[i] == 1;
    }
    guest_list_u32_free(&ready);
    for (size_t i = 0; i < n; i++) wasi_io_poll_pollable_drop_own(own[i]);
    if (timeout_ms >= 0) wasmhost_abi_time_timer_drop_own(timer);
    return message ? WH_MESSAGE : event ? WH_EVENT : WH_TIMEOUT;
}

/* Hands out the next taken message, if one is left. */
static bool next_taken(wh_message *out) {
    if (taken_next >= taken.len) return false;
    wasmhost_abi_process_message_t *m = &taken.ptr[taken_next++];
    out->topic = owned_text(&m->topic);
    out->has_from = m->from.is_some;
    if (m->from.is_some) out->from = pid_of(&m->from.val);
    out->payload = malloc(m->payload.len ? m->payload.len : 1);
    if (out->payload) memcpy(out->payload, m->payload.ptr, m->payload.len);
    out->len = m->payload.len;
    wasmhost_abi_process_message_free(m);
    if (taken_next == taken.len) {
        free(taken.ptr);
        taken.ptr = NULL;
        taken.len = 0;
        taken_next = 0;
    }
    return true;
}

bool wh_receive(int64_t timeout_ms, wh_message *out) {
    open_mailbox();
    if (next_taken(out)) return true;
    wasmhost_abi_process_borrow_mailbox_t mailbox = wasmhost_abi_process_borrow_mailbox(the_mailbox);
    if (timeout_ms < 0) {
        /* Nothing but a message ends the wait: one host call waits and takes. */
        wasmhost_abi_process_method_mailbox_receive_many(mailbox, WH_TAKE_AT_ONCE, &taken);
        return next_taken(out);
    }
    wasmhost_abi_time_own_timer_t timer;
    bool have_timer = false, got = false;
    for (;;) {
        wasmhost_abi_process_method_mailbox_try_receive_many(mailbox, WH_TAKE_AT_ONCE, &taken);
        if (next_taken(out)) {
            got = true;
            break;
        }
        wasi_io_poll_own_pollable_t ready = wasmhost_abi_process_method_mailbox_subscribe(mailbox);
        if (!wait_for(ready, timeout_ms, &timer, &have_timer)) break;
    }
    if (have_timer) wasmhost_abi_time_timer_drop_own(timer);
    return got;
}

void wh_message_free(wh_message *message) {
    free(message->topic);
    free(message->payload);
    if (message->has_from) wh_pid_free(&message->from);
}

static void reason_of(wasmhost_abi_types_exit_reason_t *r, wh_event *out) {
    static const char *kinds[] = {"normal", "error", "trap", "limit", "killed",
                                  "cancelled", "link_down", "no_process", "no_connection"};
    out->normal = r->tag == WASMHOST_ABI_TYPES_EXIT_REASON_NORMAL;
    out->reason = r->tag < 9 ? kinds[r->tag] : "error";
    out->text = NULL;
    out->value = NULL;
    out->value_len = 0;
    switch (r->tag) {
    case WASMHOST_ABI_TYPES_EXIT_REASON_NORMAL:
        out->value = malloc(r->val.normal.len ? r->val.normal.len : 1);
        if (out->value) memcpy(out->value, r->val.normal.ptr, r->val.normal.len);
        out->value_len = r->val.normal.len;
        break;
    case WASMHOST_ABI_TYPES_EXIT_REASON_LINK_DOWN: {
        wh_pid pid = pid_of(&r->val.link_down);
        char text[400];
        wh_pid_format(&pid, text, sizeof text);
        out->text = strdup(text);
        wh_pid_free(&pid);
        break;
    }
    case WASMHOST_ABI_TYPES_EXIT_REASON_NO_PROCESS:
        break;
    default: /* error, trap, limit, killed, cancelled, no_connection: each a string */
        out->text = owned_text(&r->val.error);
    }
}

bool wh_next_event(int64_t timeout_ms, wh_event *out) {
    open_events();
    wasmhost_abi_time_own_timer_t timer;
    bool have_timer = false, got = false;
    for (;;) {
        wasmhost_abi_process_event_t e;
        if (wasmhost_abi_process_method_events_try_receive(
                wasmhost_abi_process_borrow_events(events), &e)) {
            memset(out, 0, sizeof *out);
            if (e.tag == WASMHOST_ABI_TYPES_EVENT_CANCEL) {
                out->kind = WH_CANCEL;
                out->text = owned_text(&e.val.cancel);
            } else if (e.tag == WASMHOST_ABI_TYPES_EVENT_UPGRADE) {
                out->kind = WH_UPGRADE;
            } else {
                out->kind = e.tag == WASMHOST_ABI_TYPES_EVENT_EXIT ? WH_EXIT : WH_LINK_DOWN;
                out->from = pid_of(&e.val.exit.from);
                reason_of(&e.val.exit.reason, out);
            }
            wasmhost_abi_process_event_free(&e);
            got = true;
            break;
        }
        wasi_io_poll_own_pollable_t ready = wasmhost_abi_process_method_events_subscribe(
            wasmhost_abi_process_borrow_events(events));
        if (!wait_for(ready, timeout_ms, &timer, &have_timer)) break;
    }
    if (have_timer) wasmhost_abi_time_timer_drop_own(timer);
    return got;
}

void wh_event_free(wh_event *event) {
    if (event->kind == WH_EXIT || event->kind == WH_LINK_DOWN) wh_pid_free(&event->from);
    free(event->text);
    free(event->value);
}

/* --- spawning, names, time, logs ------------------------------------------------------- */

bool wh_spawn_monitored(const char *entry, const char *host, const wh_payload *args,
                        size_t n, wh_pid *out, wh_error *err) {
    guest_string_t e = borrowed(entry), h = borrowed(host);
    wasmhost_abi_process_payload_t *list = calloc(n ? n : 1, sizeof *list);
    if (!list) return false;
    for (size_t i = 0; i < n; i++) {
        list[i].ptr = (uint8_t *)args[i].data;
        list[i].len = args[i].len;
    }
    wasmhost_abi_process_list_payload_t a = {list, n};
    wasmhost_abi_process_pid_t pid;
    wasmhost_abi_process_spawn_error_t failure;
    bool ok = wasmhost_abi_process_spawn_monitored(&e, &h, &a, &pid, &failure);
    free(list);
    if (ok) {
        *out = pid_of(&pid);
        wasmhost_abi_process_pid_free(&pid);
        return true;
    }
    static const char *kinds[] = {"unknown_entry", "unknown_host", "limit", "denied"};
    fail(err, failure.tag < 4 ? kinds[failure.tag] : "limit", "%.*s", &failure.val.unknown_entry);
    wasmhost_abi_process_spawn_error_free(&failure);
    return false;
}

bool wh_register(const char *name, wh_error *err) {
    guest_string_t n = borrowed(name);
    wasmhost_abi_process_register_error_t failure;
    if (wasmhost_abi_process_register(&n, &failure)) return true;
    if (failure.tag == WASMHOST_ABI_PROCESS_REGISTER_ERROR_TAKEN) {
        fail(err, "taken", "the name is taken%.*s", NULL);
    } else {
        static const char *kinds[] = {"taken", "invalid", "reserved", "limit"};
        fail(err, failure.tag < 4 ? kinds[failure.tag] : "invalid", "%.*s", &failure.val.invalid);
    }
    wasmhost_abi_process_register_error_free(&failure);
    return false;
}

void wh_sleep_ms(uint64_t ms) { wasmhost_abi_time_sleep(ms * 1000000u); }

void wh_log(wh_level level, const char *message, const wh_field *fields, size_t n) {
    guest_string_t m = borrowed(message);
    wasmhost_abi_logger_tuple2_string_payload_t *list = calloc(n ? n : 1, sizeof *list);
    if (!list) return;
    for (size_t i = 0; i < n; i++) {
        list[i].f0 = borrowed(fields[i].name);
        list[i].f1.ptr = (uint8_t *)fields[i].value.data;
        list[i].f1.len = fields[i].value.len;
    }
    wasmhost_abi_logger_list_tuple2_string_payload_t l = {list, n};
    wasmhost_abi_logger_log((wasmhost_abi_logger_level_t)level, &m, &l);
    free(list);
}

void wh_print(const char *text) {
    guest_string_t t = borrowed(text);
    wasmhost_abi_io_print(&t);
}

bool wh_arg_text(wh_payload arg, char *buf, size_t cap) {
    CborParser parser;
    CborValue value;
    if (cbor_parser_init(arg.data, arg.len, 0, &parser, &value) != CborNoError ||
        !cbor_value_is_text_string(&value))
        return false;
    size_t len = cap;
    return cbor_value_copy_text_string(&value, buf, &len, NULL) == CborNoError;
}

/* --- hibernation ----------------------------------------------------------------------- */

/* The spawn arguments, kept for `wh_hibernate`: [args, state, unread messages] is what the
 * host keeps, as the other libraries keep it. */
static const guest_list_payload_t *entry_args;
/* The state this instance woke with, and the arguments and messages kept with it. */
static uint8_t *resumed_state;
static size_t resumed_len;
static guest_list_payload_t woken_args;

void wh_hibernate(wh_payload state, int64_t wake_after_ms, wh_error *err) {
    size_t unread = taken.len - taken_next;
    size_t cap = state.len + 64;
    for (size_t i = 0; entry_args && i < entry_args->len; i++) cap += entry_args->ptr[i].len + 16;
    for (size_t i = taken_next; i < taken.len; i++)
        cap += taken.ptr[i].topic.len + taken.ptr[i].payload.len + 600;
    uint8_t *kept = malloc(cap);
    if (!kept) abort();
    CborEncoder encoder, whole, list, message;
    cbor_encoder_init(&encoder, kept, cap, 0);
    cbor_encoder_create_array(&encoder, &whole, 3);
    size_t n = entry_args ? entry_args->len : 0;
    cbor_encoder_create_array(&whole, &list, n);
    for (size_t i = 0; i < n; i++)
        cbor_encode_byte_string(&list, entry_args->ptr[i].ptr, entry_args->ptr[i].len);
    cbor_encoder_close_container(&whole, &list);
    cbor_encode_byte_string(&whole, state.data, state.len);
    cbor_encoder_create_array(&whole, &list, unread);
    for (size_t i = taken_next; i < taken.len; i++) {
        wasmhost_abi_process_message_t *m = &taken.ptr[i];
        cbor_encoder_create_array(&list, &message, 3);
        cbor_encode_text_string(&message, (const char *)m->topic.ptr, m->topic.len);
        if (m->from.is_some) {
            wh_pid from = pid_of(&m->from.val);
            wh_encode_pid(&message, &from);
            wh_pid_free(&from);
        } else {
            cbor_encode_null(&message);
        }
        cbor_encode_byte_string(&message, m->payload.ptr, m->payload.len);
        cbor_encoder_close_container(&list, &message);
    }
    cbor_encoder_close_container(&whole, &list);
    if (cbor_encoder_close_container(&encoder, &whole) != CborNoError) abort();
    wasmhost_abi_process_payload_t payload = {kept, cbor_encoder_get_buffer_size(&encoder, kept)};
    /* Unread messages wake it at once, as messages waiting in the mailbox would. */
    uint64_t after = unread ? 0 : (uint64_t)wake_after_ms * 1000000u;
    guest_string_t refused;
    wasmhost_abi_process_hibernate(&payload, unread || wake_after_ms >= 0 ? &after : NULL,
                                   &refused);
    free(kept);
    fail(err, "limit", "%.*s", &refused);
    guest_string_free(&refused);
}

void wh_hand_over(wh_payload state, wh_error *err) { wh_hibernate(state, 0, err); }

bool wh_resumed(wh_payload *state) {
    if (!resumed_state) return false;
    state->data = resumed_state;
    state->len = resumed_len;
    return true;
}

/* Reads what the host kept for an instance that wakes from hibernation: the spawn arguments
 * (into `woken_args`), the state, and the unread messages (back into `taken`). */
static bool wake(const wasmhost_abi_process_payload_t *kept) {
    CborParser parser;
    CborValue whole, list, message;
    if (cbor_parser_init(kept->ptr, kept->len, 0, &parser, &whole) != CborNoError ||
        !cbor_value_is_array(&whole) || cbor_value_enter_container(&whole, &list) != CborNoError)
        return false;
    size_t n = 0;
    if (!cbor_value_is_array(&list) || cbor_value_get_array_length(&list, &n) != CborNoError)
        return false;
    woken_args.ptr = calloc(n ? n : 1, sizeof *woken_args.ptr);
    woken_args.len = n;
    CborValue arg;
    if (!woken_args.ptr || cbor_value_enter_container(&list, &arg) != CborNoError) return false;
    for (size_t i = 0; i < n; i++) {
        if (cbor_value_dup_byte_string(&arg, &woken_args.ptr[i].ptr, &woken_args.ptr[i].len,
                                       &arg) != CborNoError)
            return false;
    }
    if (cbor_value_leave_container(&list, &arg) != CborNoError ||
        cbor_value_dup_byte_string(&list, &resumed_state, &resumed_len, &list) != CborNoError ||
        cbor_value_get_array_length(&list, &n) != CborNoError)
        return false;
    taken.ptr = calloc(n ? n : 1, sizeof *taken.ptr);
    taken.len = n;
    taken_next = 0;
    if (!taken.ptr || cbor_value_enter_container(&list, &message) != CborNoError) return false;
    for (size_t i = 0; i < n; i++) {
        wasmhost_abi_process_message_t *m = &taken.ptr[i];
        CborValue field;
        char *topic = NULL;
        size_t len = 0;
        if (cbor_value_enter_container(&message, &field) != CborNoError ||
            cbor_value_dup_text_string(&field, &topic, &len, &field) != CborNoError)
            return false;
        m->topic.ptr = (uint8_t *)topic;
        m->topic.len = len;
        if (cbor_value_is_text_string(&field)) {
            char *text = NULL;
            wh_pid from;
            if (cbor_value_dup_text_string(&field, &text, &len, &field) != CborNoError ||
                !wh_pid_parse(text, len, &from))
                return false;
            free(text);
            m->from.is_some = true;
            m->from.val.node.is_some = from.node != NULL;
            if (from.node) {
                guest_string_dup(&m->from.val.node.val.name, from.node);
                m->from.val.node.val.incarnation = from.incarnation;
            }
            guest_string_dup(&m->from.val.host, from.host);
            m->from.val.id = from.id;
            wh_pid_free(&from);
        } else if (cbor_value_advance(&field) != CborNoError) {
            return false;
        }
        if (cbor_value_dup_byte_string(&field, &m->payload.ptr, &m->payload.len, &field) !=
                CborNoError ||
            cbor_value_leave_container(&message, &field) != CborNoError)
            return false;
    }
    return true;
}

/* --- the entry point ------------------------------------------------------------------- */

bool exports_guest_main(guest_list_payload_t *args, guest_payload_t *ret, guest_string_t *err) {
    wasmhost_abi_process_payload_t kept;
    /* The host calls a woken instance with no arguments: a spawn with some asks nothing. */
    if (args->len == 0 && wasmhost_abi_process_resumed(&kept)) {
        if (!wake(&kept)) {
            guest_string_dup(err, "waking from hibernation: what was kept is not readable");
            return false;
        }
        guest_list_payload_free(args);
        *args = woken_args;
        wasmhost_abi_process_payload_free(&kept);
    }
    entry_args = args;
    wh_payload *list = calloc(args->len ? args->len : 1, sizeof *list);
    size_t cap = 64 * 1024, len = 0;
    uint8_t *result = malloc(cap);
    char *error = calloc(1, 1024);
    if (!list || !result || !error) abort();
    for (size_t i = 0; i < args->len; i++) {
        list[i].data = args->ptr[i].ptr;
        list[i].len = args->ptr[i].len;
    }
    bool ok = wh_main(list, args->len, result, cap, &len, error, 1024);
    free(list);
    guest_list_payload_free(args);
    if (ok) {
        ret->ptr = result;
        ret->len = len;
        free(error);
    } else {
        free(result);
        guest_string_dup(err, error);
        free(error);
    }
    return ok;
}
