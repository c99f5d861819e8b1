/*
 * Per-call cost of hotsync_table_upsert from C. The same loop in Rust, on
 * the same table sizing and keys, is crates/ffi/examples/upsert_cost.rs;
 * `make -C examples/c bench` runs both.
 *
 * Table: 2^21 sessions in 64 shards, pre-faulted. Keys: N distinct
 * sessions built up front. Round 0 inserts them; rounds 1..R replace them
 * (a new entry each time). Prints ns per call: the insert round and the
 * fastest replace round (the least disturbed by other work on the machine).
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
    clock_gettime(CLOCK_MONOTONIC, &t);
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

int main(void) {
    hotsync_node_options opts = {.max_sessions = 1u << 21, .shards = 64};
    hotsync_table *t = NULL;
    if (hotsync_table_new(&opts, &t) != HOTSYNC_STATUS_OK) {
        fprintf(stderr, "table: %s\n", hotsync_last_error());
        return 1;
    }
    hotsync_session_key *keys = malloc(sizeof *keys * N);
    if (!keys) return 1;
    for (uint32_t i = 0; i < N; i++) make_key(i, &keys[i]);
    hotsync_session_entry e;
    memset(&e, 0, sizeof e);
    e.timeout = 600;
    e.state = HOTSYNC_STATE_ESTABLISHED;
    e.flags = HOTSYNC_FLAG_BACKUP;

    double insert = 0, best = 1e30;
    for (int r = 0; r <= ROUNDS; r++) {
        double t0 = now_ns();
        for (uint32_t i = 0; i < N; i++) {
            e.packets[0] = (uint64_t)r << 32 | i;
            if (hotsync_table_upsert(t, &keys[i], &e, NULL) != HOTSYNC_STATUS_OK) {
                fprintf(stderr, "upsert: %s\n", hotsync_last_error());
                return 1;
            }
        }
        double per_call = (now_ns() - t0) / N;
        if (r == 0)
            insert = per_call;
        else if (per_call < best)
            best = per_call;
    }
    uint64_t len = 0;
    if (hotsync_table_len(t, &len) != HOTSYNC_STATUS_OK || len != N) return 1;
    printf("C    upsert: insert %.1f ns/call, replace %.1f ns/call (best of %d rounds of %u)\n",
           insert, best, ROUNDS, N);
    hotsync_table_free(t);
    free(keys);
    return 0;
}
