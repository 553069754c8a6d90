/* wasmhost for C: the process API over the bindings `wit-bindgen c` generates (guest.h),
 * with payloads built and read by TinyCBOR (cbor.h).
 *
 * A process defines `wh_main`: it gets the spawn arguments, one CBOR payload each, and
 * writes its result as CBOR (`wh_result_*` help), or returns false with an error message
 * (an abnormal exit). Inside a payload a pid is its text, `{app:processes|0x00004}`, or
 * `{b.7@app:processes|0x00004}` on node `b` (incarnation 7) of a cluster (`wh_encode_pid`
 * writes it, `wh_pid_parse` reads it), as wit/wasmhost.wit documents.
 * Nothing blocks unless it says so. Strings a function returns are owned by the caller,
 * who frees them with the matching `*_free`. */
#ifndef WASMHOST_H
#define WASMHOST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cbor.h"

/* A process identifier: the node of a cluster it runs on (`node` owned, NULL outside a
 * cluster, with its `incarnation`), the host entry it runs on (owned) and its node-wide id. */
typedef struct {
    char *node;
    uint64_t incarnation;
    char *host;
    uint64_t id;
} wh_pid;

/* This process's pid (the seed's `process.pid()`; `self-pid` in the WIT). */
wh_pid wh_pid_self(void);
/* Reads `{app:processes|0x00004}` or `{b.7@app:processes|0x00004}`; false if `text` is
 * not a pid. */
bool wh_pid_parse(const char *text, size_t len, wh_pid *out);
/* Writes the pid's text into `buf` (as snprintf: returns the length it needs). */
int wh_pid_format(const wh_pid *pid, char *buf, size_t cap);
bool wh_pid_equal(const wh_pid *a, const wh_pid *b);
CborError wh_encode_pid(CborEncoder *encoder, const wh_pid *pid);
void wh_pid_free(wh_pid *pid);

/* A payload: CBOR bytes. */
typedef struct {
    const uint8_t *data;
    size_t len;
} wh_payload;

/* Why the host refused something: `kind` names the case (`unknown_name`, `too_large`,
 * `mailbox_full`, `unknown_entry`, `unknown_host`, `limit`, `denied`, `taken`, `invalid`,
 * `reserved`), `message` says it. */
typedef struct {
    const char *kind;
    char message[256];
} wh_error;

/* Sends `payload` to the process registered as `name`, or to `pid`. */
bool wh_send_name(const char *name, const char *topic, wh_payload payload, wh_error *err);
bool wh_send_pid(const wh_pid *pid, const char *topic, wh_payload payload, wh_error *err);

/* A received message (owned; wh_message_free). */
typedef struct {
    char *topic;
    bool has_from;
    wh_pid from;
    uint8_t *payload;
    size_t len;
} wh_message;

/* Blocks until a message comes (true) or `timeout_ms` passes (false; -1 waits forever). */
bool wh_receive(int64_t timeout_ms, wh_message *out);
void wh_message_free(wh_message *message);

/* What `wh_select` found first. */
typedef enum { WH_TIMEOUT, WH_MESSAGE, WH_EVENT } wh_ready;

/* Blocks until a message or an event waits, or `timeout_ms` passes (-1 waits forever): the
 * seed's select over the mailbox, events and a timer. Take what it found with `wh_receive(0, …)`
 * or `wh_next_event(0, …)`. */
wh_ready wh_select(int64_t timeout_ms);

typedef enum { WH_EXIT, WH_LINK_DOWN, WH_CANCEL, WH_UPGRADE } wh_event_kind;

/* A lifecycle event (owned; wh_event_free). For an exit: `from`, whether it was `normal`,
 * the `value` it returned (CBOR) or the reason's `kind` (`error`, `trap`, `limit`,
 * `killed`, `cancelled`, `link_down`, `no_process`, `no_connection`) and `text`. For a cancel: `text`.
 * An upgrade (`wasmhost upgrade`) has neither: answer it with `wh_hand_over`. */
typedef struct {
    wh_event_kind kind;
    wh_pid from;
    bool normal;
    const char *reason;
    char *text;
    uint8_t *value;
    size_t value_len;
} wh_event;

/* Blocks until an event comes (true) or `timeout_ms` passes (false; -1 waits forever). */
bool wh_next_event(int64_t timeout_ms, wh_event *out);
void wh_event_free(wh_event *event);

/* Spawns `entry` on `host` with `args` (CBOR each), monitored: its exit comes as an event. */
bool wh_spawn_monitored(const char *entry, const char *host, const wh_payload *args,
                        size_t n, wh_pid *out, wh_error *err);
bool wh_register(const char *name, wh_error *err);

void wh_sleep_ms(uint64_t ms);

/* Logs through the host; each field a name and a CBOR value. */
typedef struct {
    const char *name;
    wh_payload value;
} wh_field;

typedef enum { WH_TRACE, WH_DEBUG, WH_INFO, WH_WARN, WH_ERROR } wh_level;
void wh_log(wh_level level, const char *message, const wh_field *fields, size_t n);

/* Prints `text` and a newline on the terminal (module `io`; a process not bound to the
 * terminal prints into the log). */
void wh_print(const char *text);

/* Hibernates with `state` (a CBOR value): the instance ends here, and the next message or
 * event (or `wake_after_ms`, if it is not negative) starts a new one, which calls `wh_main`
 * again with the spawn arguments; there `wh_resumed` gives `state`. Timers and handles end
 * with the instance; the mailbox, events, names, links and monitors stay. Messages taken
 * from the host and not read yet are kept, and come first. Returns only if refused (the
 * state is over the process's `message_size`, or its `host_memory` or the node's budget
 * cannot hold it), with why in `err` (`limit`). */
void wh_hibernate(wh_payload state, int64_t wake_after_ms, wh_error *err);

/* Hands over to the new component when the node upgrades this process's entry (on a
 * WH_UPGRADE event): hibernates with `state`, and an instance of the new component starts at
 * once, with the same pid, names, links, monitors and mailbox; there `wh_resumed` gives
 * `state`. Returns only if refused, as `wh_hibernate`. */
void wh_hand_over(wh_payload state, wh_error *err);
/* The state this instance woke with (see `wh_hibernate`; the library owns it); false in the
 * instance the spawn made. */
bool wh_resumed(wh_payload *state);

/* Reads argument `arg` as text into `buf` (NUL-terminated); false if it is not text or
 * does not fit. */
bool wh_arg_text(wh_payload arg, char *buf, size_t cap);

/* The entry point each C process defines. `result` is a buffer of `cap` bytes for the
 * CBOR result; set `*len` to its length. Return false with a message in `error` (of
 * `error_cap` bytes) for an abnormal exit. */
bool wh_main(const wh_payload *args, size_t n, uint8_t *result, size_t cap, size_t *len,
             char *error, size_t error_cap);

#endif
