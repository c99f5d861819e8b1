/*
 * A small C data plane on hotsync's C API: two nodes of a pair in one
 * process, sessions written from two threads, a batch sync, incremental
 * updates, and the two table digests compared. Ends with `digests equal`.
 *
 *   make -C examples/c run        (or: sanitize)
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "hotsync.h"

/* Sessions each writer thread creates before the relationship forms, and
 * adds once it is up. */
#define PER_THREAD 50000
#define ADDED_PER_THREAD 5000
#define THREADS 2

static void check(hotsync_status s, const char *what) {
    if (s != HOTSYNC_STATUS_OK) {
        fprintf(stderr, "%s: %s: %s\n", what, hotsync_status_name(s), hotsync_last_error());
        exit(1);
    }
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void sleep_ms(long ms) {
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}

/* A free port p with p + 1 free too (session and configuration channel).
 * The sockets are closed before the node binds: a small race remains. */
static unsigned port_pair(void) {
    for (int attempt = 0; attempt < 200; attempt++) {
        int a = socket(AF_INET, SOCK_STREAM, 0), b = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof sa;
        unsigned port = 0;
        if (bind(a, (struct sockaddr *)&sa, sizeof sa) == 0 &&
            getsockname(a, (struct sockaddr *)&sa, &len) == 0) {
            port = ntohs(sa.sin_port);
            sa.sin_port = htons((uint16_t)(port + 1));
            if (port >= 65000 || bind(b, (struct sockaddr *)&sa, sizeof sa) != 0) port = 0;
        }
        close(a);
        close(b);
        if (port) return port;
    }
    fprintf(stderr, "no free port pair\n");
    exit(1);
}

/* Node configuration text: the format of `hotsync node --config`. Node A
 * has the shared configuration (policies, address sets) that `hrp sync
 * config` carries to B. */
static char *node_config(int id, unsigned listen, unsigned peer, int with_policy) {
    static const char policy[] =
        "ip address-set web-servers type object\n"
        " address 0 10.1.1.10 mask 32\n"
        " address 1 10.1.1.11 mask 32\n"
        "#\n"
        "security-policy\n"
        " rule name allow-web\n"
        "  source-zone untrust\n"
        "  destination-zone trust\n"
        "  destination-address address-set web-servers\n"
        "  service https\n"
        "  action permit\n"
        "#\n";
    char *text = malloc(4096);
    if (!text) exit(1);
    snprintf(text, 4096,
             "#\n"
             " sysname FW-%c\n"
             " hrp enable\n"
             " hrp node-id %d\n"
             " hrp local-address 127.0.0.1 port %u\n"
             " hrp remote-address 127.0.0.1 port %u\n"
             " hrp priority %d\n"
             " hrp timer hello 100\n"
             " hrp dead-count 5\n"
             " hrp authentication-key c-example-key\n"
             "#\n"
             "%s"
             "return\n",
             'A' + id - 1, id, listen, peer, id == 1 ? 120 : 100, with_policy ? policy : "");
    return text;
}

/* Session i: 10.x.y.z:port -> 192.0.2.n:443, TCP, root system. */
static void make_key(uint32_t i, hotsync_session_key *k) {
    memset(k, 0, sizeof *k);
    k->family = HOTSYNC_FAMILY_IPV4;
    k->protocol = 6;
    k->src_addr[0] = 10;
    k->src_addr[1] = (uint8_t)(i >> 16);
    k->src_addr[2] = (uint8_t)(i >> 8);
    k->src_addr[3] = (uint8_t)i;
    k->dst_addr[0] = 192;
    k->dst_addr[1] = 0;
    k->dst_addr[2] = 2;
    k->dst_addr[3] = (uint8_t)(1 + i % 200);
    k->src_port = (uint16_t)(1024 + i % 50000);
    k->dst_port = 443;
}

static void make_entry(uint32_t i, uint32_t now, hotsync_session_entry *e) {
    memset(e, 0, sizeof *e);
    e->packets[0] = 3;
    e->packets[1] = 2;
    e->bytes[0] = 180 + i % 1000;
    e->bytes[1] = 120;
    e->policy_id = 1;
    e->created = now;
    e->last_seen = now;
    e->timeout = 600;
    e->state = HOTSYNC_STATE_ESTABLISHED;
    /* Every 16th session is local-only (B11): never sent, not in digests. */
    e->flags = (i % 16 == 15) ? 0 : HOTSYNC_FLAG_BACKUP;
}

struct writer {
    hotsync_table *table; /* this thread's own handle */
    uint32_t first, count, added_first;
    int phase; /* 0: create; 1: update, remove, add */
};

/* The update callback: runs under the shard lock, so the read-modify-write
 * of the counters loses nothing to the other thread. */
static void count_packet(hotsync_session_entry *e, void *ctx) {
    uint32_t now = *(const uint32_t *)ctx;
    e->packets[0] += 1;
    e->bytes[0] += 1400;
    e->last_seen = now;
}

static void *write_sessions(void *arg) {
    struct writer *w = arg;
    uint32_t now = (uint32_t)time(NULL);
    hotsync_session_key k;
    hotsync_session_entry e;
    if (w->phase == 0) {
        for (uint32_t i = w->first; i < w->first + w->count; i++) {
            make_key(i, &k);
            make_entry(i, now, &e);
            check(hotsync_table_upsert(w->table, &k, &e, NULL), "upsert");
        }
        return NULL;
    }
    for (uint32_t i = w->first; i < w->first + w->count; i++) {
        make_key(i, &k);
        if (i % 10 == 0) {
            check(hotsync_table_remove(w->table, &k, NULL), "remove");
        } else if (i % 3 == 0) {
            check(hotsync_table_update(w->table, &k, count_packet, &now), "update");
        }
    }
    for (uint32_t i = w->added_first; i < w->added_first + ADDED_PER_THREAD; i++) {
        make_key(i, &k);
        make_entry(i, now, &e);
        bool inserted = false;
        check(hotsync_table_upsert(w->table, &k, &e, &inserted), "upsert");
        if (!inserted) {
            fprintf(stderr, "session %u existed already\n", i);
            exit(1);
        }
    }
    return NULL;
}

/* Runs the two writer threads, each with its own table handle. */
static void run_writers(hotsync_node *node, int phase) {
    pthread_t threads[THREADS];
    struct writer w[THREADS];
    for (int t = 0; t < THREADS; t++) {
        w[t] = (struct writer){
            .first = (uint32_t)t * PER_THREAD,
            .count = PER_THREAD,
            .added_first = THREADS * PER_THREAD + (uint32_t)t * ADDED_PER_THREAD,
            .phase = phase,
        };
        check(hotsync_node_table(node, &w[t].table), "table handle");
        if (pthread_create(&threads[t], NULL, write_sessions, &w[t]) != 0) exit(1);
    }
    for (int t = 0; t < THREADS; t++) {
        pthread_join(threads[t], NULL);
        hotsync_table_free(w[t].table);
    }
}

/* Polls a job until it ends, printing progress; fails unless DONE. */
static hotsync_job_status follow_job(hotsync_node *node, uint64_t id, const char *name) {
    hotsync_job_status j;
    double deadline = now_s() + 60;
    for (;;) {
        check(hotsync_node_job_status(node, id, &j), "job status");
        printf("  %s job %llu: %llu/%llu acknowledged%s\n", name, (unsigned long long)j.id,
               (unsigned long long)j.acked, (unsigned long long)j.total,
               j.state == HOTSYNC_JOB_STATE_RUNNING ? "" : ", finished");
        if (j.state != HOTSYNC_JOB_STATE_RUNNING) break;
        if (now_s() > deadline) {
            fprintf(stderr, "%s: still running after 60 s\n", name);
            exit(1);
        }
        sleep_ms(100);
    }
    if (j.state != HOTSYNC_JOB_STATE_DONE) {
        fprintf(stderr, "%s failed: %s\n", name, j.message);
        exit(1);
    }
    return j;
}

static hotsync_digest digest_of(hotsync_table *t) {
    hotsync_digest d;
    check(hotsync_table_digest(t, &d), "digest");
    return d;
}

static int wait_digests_equal(hotsync_table *a, hotsync_table *b, double timeout_s) {
    double deadline = now_s() + timeout_s;
    for (;;) {
        hotsync_digest da = digest_of(a), db = digest_of(b);
        if (da.combined == db.combined && da.entries == db.entries) return 1;
        if (now_s() > deadline) {
            fprintf(stderr, "digests differ: %llu vs %llu entries\n",
                    (unsigned long long)da.entries, (unsigned long long)db.entries);
            return 0;
        }
        sleep_ms(20);
    }
}

static const char *role_name(hotsync_role r) {
    return r == HOTSYNC_ROLE_ACTIVE ? "active" : r == HOTSYNC_ROLE_STANDBY ? "standby" : "initial";
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (hotsync_abi_version() != HOTSYNC_ABI_VERSION) {
        fprintf(stderr, "libhotsync ABI %u, header %u\n", hotsync_abi_version(), HOTSYNC_ABI_VERSION);
        return 1;
    }
    printf("libhotsync %s, ABI %u\n", hotsync_version(), hotsync_abi_version());

    unsigned pa = port_pair(), pb = port_pair();
    char *ca = node_config(1, pa, pb, 1), *cb = node_config(2, pb, pa, 0);
    hotsync_node_options opts = {.max_sessions = 1u << 18, .shards = 16};
    hotsync_node *a = NULL, *b = NULL;
    check(hotsync_node_start(ca, &opts, &a), "start A");
    check(hotsync_node_start(cb, &opts, &b), "start B");
    free(ca);
    free(cb);
    printf("nodes A (127.0.0.1:%u) and B (127.0.0.1:%u) started\n", pa, pb);

    /* Sessions written before the relationship forms wait for a batch
     * sync (B4). */
    double t0 = now_s();
    run_writers(a, 0);
    printf("A: %d sessions written from %d threads in %.1f ms\n", THREADS * PER_THREAD, THREADS,
           (now_s() - t0) * 1e3);

    for (double deadline = now_s() + 20;;) {
        bool ea = false, eb = false;
        check(hotsync_node_is_established(a, &ea), "established");
        check(hotsync_node_is_established(b, &eb), "established");
        if (ea && eb) break;
        if (now_s() > deadline) {
            fprintf(stderr, "the relationship did not form within 20 s\n");
            return 1;
        }
        sleep_ms(20);
    }
    hotsync_node_state sa, sb;
    check(hotsync_node_get_state(a, &sa), "state");
    check(hotsync_node_get_state(b, &sb), "state");
    printf("relationship established: A %s, B %s, authenticated %s\n", role_name(sa.role),
           role_name(sb.role), sa.authenticated ? "yes" : "no");

    hotsync_table *ta = NULL, *tb = NULL;
    check(hotsync_node_table(a, &ta), "table A");
    check(hotsync_node_table(b, &tb), "table B");

    uint64_t job;
    printf("hrp sync connection-status\n");
    check(hotsync_node_sync_connection_status(a, &job), "sync connection-status");
    hotsync_job_status js = follow_job(a, job, "connection-status");
    printf("  %llu sessions in %llu ms\n", (unsigned long long)js.acked,
           (unsigned long long)js.elapsed_ms);

    printf("hrp sync config\n");
    check(hotsync_node_sync_config(a, &job), "sync config");
    js = follow_job(a, job, "config");
    printf("  B added %llu items, had %llu, %llu conflicts, %llu rejected\n",
           (unsigned long long)js.config_added, (unsigned long long)js.config_equal,
           (unsigned long long)js.config_conflicts, (unsigned long long)js.config_rejected);

    if (!wait_digests_equal(ta, tb, 20)) return 1;
    hotsync_digest d = digest_of(ta);
    printf("after the batch sync: %llu backup sessions on both, digest %016llx\n",
           (unsigned long long)d.entries, (unsigned long long)d.combined);

    /* Incremental: updates, removals and new sessions from both threads,
     * replicated as they happen (B3). */
    t0 = now_s();
    run_writers(a, 1);
    printf("A: updates, removals and %d new sessions from %d threads in %.1f ms\n",
           THREADS * ADDED_PER_THREAD, THREADS, (now_s() - t0) * 1e3);
    if (!wait_digests_equal(ta, tb, 20)) return 1;
    printf("incremental changes replicated in %.1f ms\n", (now_s() - t0) * 1e3);

    /* Spot checks on B: an updated session carries A's counters, a removed
     * one is gone, a local-only one never arrived. */
    hotsync_session_key k;
    hotsync_session_entry ea, eb;
    make_key(3, &k);
    check(hotsync_table_lookup(ta, &k, &ea), "lookup A");
    check(hotsync_table_lookup(tb, &k, &eb), "lookup B");
    if (memcmp(&ea, &eb, sizeof ea) != 0 || eb.packets[0] != 4) {
        fprintf(stderr, "session 3 differs on B\n");
        return 1;
    }
    make_key(10, &k);
    if (hotsync_table_lookup(tb, &k, &eb) != HOTSYNC_STATUS_NOT_FOUND) {
        fprintf(stderr, "removed session 10 still on B\n");
        return 1;
    }
    make_key(15, &k);
    if (hotsync_table_lookup(tb, &k, &eb) != HOTSYNC_STATUS_NOT_FOUND ||
        hotsync_table_lookup(ta, &k, &ea) != HOTSYNC_STATUS_OK) {
        fprintf(stderr, "local-only session 15 crossed to B\n");
        return 1;
    }

    hotsync_stats st;
    check(hotsync_node_stats(a, &st), "stats");
    printf("A: %llu sessions, %llu records and %llu deletions sent in %llu batches, %llu resyncs, "
           "%llu errors\n",
           (unsigned long long)st.sessions, (unsigned long long)st.records_tx,
           (unsigned long long)st.deletes_tx, (unsigned long long)st.batches_tx,
           (unsigned long long)st.shards_resynced, (unsigned long long)st.errors);
    hotsync_digest da = digest_of(ta), db = digest_of(tb);
    printf("digest A %016llx (%llu), B %016llx (%llu)\n", (unsigned long long)da.combined,
           (unsigned long long)da.entries, (unsigned long long)db.combined,
           (unsigned long long)db.entries);

    hotsync_table_free(ta);
    hotsync_table_free(tb);
    check(hotsync_node_stop(a), "stop A");
    hotsync_node_free(a);
    hotsync_node_free(b);
    if (da.combined != db.combined || da.entries != db.entries) return 1;
    printf("digests equal\n");
    return 0;
}
