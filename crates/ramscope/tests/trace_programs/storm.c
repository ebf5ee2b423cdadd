/* A malloc storm for the tracer's overhead and thread safety: 16 threads, each doing N rounds
 * of malloc/realloc/free of sizes from 8 B to 256 KiB (most of them small, as in real programs)
 * on its own table of live blocks. Every thread's choices come from its own deterministic
 * PRNG, and each block is read back, so the printed checksum is the same traced or not.
 *
 *   storm N        N rounds per thread (default 200000)
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define THREADS 16
#define SLOTS 512
#define MAX_SIZE (256 * 1024)

struct worker {
    pthread_t thread;
    unsigned index;
    long rounds;
    uint64_t checksum;
    int failed;
};

/* xorshift64*: small, fast, and the same everywhere. */
static uint64_t next(uint64_t *s) {
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1DULL;
}

/* 8 B to 256 KiB, log-uniform: each power of two is as likely as the next. */
static size_t size_of(uint64_t r) {
    unsigned shift = 3 + (unsigned)(r % 16); /* 2^3 .. 2^18 */
    size_t lo = (size_t)1 << shift;
    size_t s = lo + (size_t)((r >> 8) % lo);
    return s > MAX_SIZE ? MAX_SIZE : s;
}

struct block {
    unsigned char *p;
    size_t n;
};

static void fill(struct block *b, uint64_t tag) {
    b->p[0] = (unsigned char)tag;
    b->p[b->n - 1] = (unsigned char)(tag >> 8);
}

static uint64_t read_back(const struct block *b) {
    return (uint64_t)b->p[0] * 31 + b->p[b->n - 1] + b->n;
}

static void *run(void *arg) {
    struct worker *w = arg;
    struct block slots[SLOTS] = {{0}};
    uint64_t s = 0x9E3779B97F4A7C15ULL * (w->index + 1);
    uint64_t sum = 0;
    for (long i = 0; i < w->rounds; i++) {
        uint64_t r = next(&s);
        struct block *b = &slots[r % SLOTS];
        size_t n = size_of(next(&s));
        unsigned what = (unsigned)(r >> 32) % 8;
        if (b->p && what == 0) {
            /* Grow or shrink in place (or move): the contents up to the smaller size stay. */
            unsigned char first = b->p[0];
            unsigned char *p = realloc(b->p, n);
            if (!p) {
                w->failed = 1;
                return NULL;
            }
            if (p[0] != first) {
                w->failed = 1;
                return NULL;
            }
            b->p = p;
            b->n = n;
        } else {
            if (b->p) {
                sum += read_back(b);
                free(b->p);
            }
            b->p = malloc(n);
            if (!b->p) {
                w->failed = 1;
                return NULL;
            }
            b->n = n;
        }
        fill(b, r);
        sum += read_back(b);
    }
    for (int i = 0; i < SLOTS; i++) {
        if (slots[i].p) {
            sum += read_back(&slots[i]);
            free(slots[i].p);
        }
    }
    w->checksum = sum;
    return NULL;
}

int main(int argc, char **argv) {
    long rounds = 200000;
    if (argc > 1) {
        char *end;
        rounds = strtol(argv[1], &end, 10);
        if (*end != 0 || rounds < 0) {
            fprintf(stderr, "usage: storm [ROUNDS]\n");
            return 2;
        }
    }
    struct worker w[THREADS];
    memset(w, 0, sizeof w);
    for (unsigned i = 0; i < THREADS; i++) {
        w[i].index = i;
        w[i].rounds = rounds;
        if (pthread_create(&w[i].thread, NULL, run, &w[i]) != 0) {
            fprintf(stderr, "storm: pthread_create failed\n");
            return 1;
        }
    }
    uint64_t total = 0;
    for (unsigned i = 0; i < THREADS; i++) {
        pthread_join(w[i].thread, NULL);
        if (w[i].failed) {
            fprintf(stderr, "storm: thread %u failed\n", i);
            return 1;
        }
        total = total * 1000003 + w[i].checksum;
    }
    printf("storm: %d threads x %ld rounds, checksum %016llx\n", THREADS, rounds,
           (unsigned long long)total);
    return 0;
}
