/*
 * Per-call cost of hotsync_table_upsert from C. The same loop in Rust, on
 * the same table sizing and keys, is crates/ffi/examples/upsert_cost.rs;
 * `make -C examples/c bench` runs both.
 *
 * Table: 2^21 sessions in 64 shards, pre-faulted. Keys: N distinct
 * sessions built up front (argument 1, default 2^20; a small N keeps the
 * working set in cache and shows the call overhead more plainly). Round 0 inserts them; rounds 1..R replace them
 * (a new entry each time). Prints ns per call: the insert round and the
 * fastest replace round (the least disturbed by other work on the machine).
 * Time is the thread's CPU time, so a busy machine's scheduling does not
 * count (its cache pressure still does).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hotsync.h"

#define N (1u << 20)
#define ROUNDS 7

static double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

/* Must match key(i) in upsert_cost.rs. */
static void make_key(uint32_t i, hotsync_session_key *k) {
    memset(k, 0, sizeof *k);
    k->family = HOTSYNC_FAMILY_IPV4;
    k->protocol = 6;
    k->src_addr[0] = 10;
    k->src_addr[1] = (uint8_t)(i >> 16);
    k->src_addr[2] = (uint8_t)(i >> 8);
    k->src_addr[3] = (uint8_t)i;
    k->dst_addr[0] = 192;
    k->dst_addr[2] = 2;
    k->dst_addr[3] = (uint8_t)(1 + i % 200);
    k->src_port = (uint16_t)(1024 + i % 50000);
    k->dst_port = 443;
}

static void bump(hotsync_session_entry *e, void *ctx) {
    (void)ctx;
    e->packets[1] += 1;
}

/* ns per call of one pass of `op` over the first n keys, best of 3. */
#define TIME_PASS(result, n, call)                                              \
    do {                                                                        \
        result = 1e30;                                                          \
        for (int pass = 0; pass < 3; pass++) {                                  \
            double t0_ = now_ns();                                              \
            for (uint32_t i = 0; i < (n); i++)                                  \
                if ((call) != HOTSYNC_STATUS_OK) return 1;                      \
            double r_ = (now_ns() - t0_) / (n);                                 \
            if (r_ < result) result = r_;                                       \
        }                                                                       \
    } while (0)

int main(int argc, char **argv) {
    uint32_t n = argc > 1 ? (uint32_t)strtoul(argv[1], NULL, 10) : N;
    if (n == 0 || n > N) return 2;
    hotsync_node_options opts = {.max_sessions = 1u << 21, .shards = 64};
    hotsync_table *t = NULL;
    if (hotsync_table_new(&opts, &t) != HOTSYNC_STATUS_OK) {
        fprintf(stderr, "table: %s\n", hotsync_last_error());
        return 1;
    }
    hotsync_session_key *keys = malloc(sizeof *keys * n);
    if (!keys) return 1;
    for (uint32_t i = 0; i < n; i++) make_key(i, &keys[i]);
    hotsync_session_entry e;
    memset(&e, 0, sizeof e);
    e.timeout = 600;
    e.state = HOTSYNC_STATE_ESTABLISHED;
    e.flags = HOTSYNC_FLAG_BACKUP;

    double insert = 0, best = 1e30;
    for (int r = 0; r <= ROUNDS; r++) {
        double t0 = now_ns();
        for (uint32_t i = 0; i < n; i++) {
            e.packets[0] = (uint64_t)r << 32 | i;
            if (hotsync_table_upsert(t, &keys[i], &e, NULL) != HOTSYNC_STATUS_OK) {
                fprintf(stderr, "upsert: %s\n", hotsync_last_error());
                return 1;
            }
        }
        double per_call = (now_ns() - t0) / n;
        if (r == 0)
            insert = per_call;
        else if (per_call < best)
            best = per_call;
    }
    uint64_t len = 0;
    if (hotsync_table_len(t, &len) != HOTSYNC_STATUS_OK || len != n) return 1;
    printf("C    upsert: insert %.1f ns/call, replace %.1f ns/call (best of %d rounds of %u)\n",
           insert, best, ROUNDS, n);
    double lookup, update, removal;
    hotsync_session_entry out;
    TIME_PASS(lookup, n, hotsync_table_lookup(t, &keys[i], &out));
    TIME_PASS(update, n, hotsync_table_update(t, &keys[i], bump, NULL));
    /* The same lookups in bursts of 32, as a vector of packets would come. */
    double burst = 1e30;
    {
        hotsync_session_entry outs[32];
        uint8_t found[32];
        for (int pass = 0; pass < 3; pass++) {
            double t0_ = now_ns();
            for (uint32_t i = 0; i < n; i += 32) {
                size_t m = n - i < 32 ? n - i : 32;
                if (hotsync_table_lookup_burst(t, &keys[i], m, outs, found) != HOTSYNC_STATUS_OK)
                    return 1;
                for (size_t j = 0; j < m; j++)
                    if (!found[j]) return 1;
            }
            double r_ = (now_ns() - t0_) / n;
            if (r_ < burst) burst = r_;
        }
    }
    double t0 = now_ns();
    for (uint32_t i = 0; i < n; i++)
        if (hotsync_table_remove(t, &keys[i], NULL) != HOTSYNC_STATUS_OK) return 1;
    removal = (now_ns() - t0) / n;
    printf("C    lookup %.1f, update %.1f, remove %.1f ns/call; lookup in bursts of 32 %.1f ns/key\n",
           lookup, update, removal, burst);
    hotsync_table_free(t);
    free(keys);
    return 0;
}
