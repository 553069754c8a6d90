/* The echo worker without its 100 ms sleep, for benchmarks: answers the sender at once. */
#define ECHO_WORKER_SLEEP_MS 0
#include "../echo_worker/app.c"
