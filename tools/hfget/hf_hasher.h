/* The verification thread: hashes each download's temp file as its contiguous prefix grows
 * (reading the bytes back from the page cache), so SHA-256 runs beside the network instead of
 * after it, and parallel ranges need no buffering.  Invariant: a job's digest covers exactly
 * bytes [0, size) of its file as they were when read; a reset starts it over. */
#ifndef HF_HASHER_H
#define HF_HASHER_H

#include <openssl/evp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct hf_hashjob {
	/* set before hf_hasher_add, then owned by the hasher until hf_hasher_remove */
	int fd;         /* read descriptor of the temp file */
	bool git_sha1;  /* git blob sha1 ("blob <size>\0" + content), else sha256 */
	uint64_t size;
	/* under the hasher's mutex */
	uint64_t ready;  /* bytes [0, ready) are final in the file */
	uint64_t hashed;
	unsigned gen;    /* bumped by hf_hasher_reset */
	bool finished;
	int read_errno;  /* a read failure ends the job with finished set and no digest */
	char hex[65];
	/* private to the thread */
	unsigned ctx_gen;
	uint64_t flushed; /* writeback started for [0, flushed) */
	EVP_MD_CTX *ctx;
	struct hf_hashjob *next;
};

struct hf_hasher {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t work, idle;
	bool stop, started;
	struct hf_hashjob *jobs;
	struct hf_hashjob *busy; /* the job being read or hashed outside the lock */
	void (*wake)(void *arg); /* called (without the lock) when a job finishes */
	void *wake_arg;
};

int hf_hasher_start(struct hf_hasher *h, void (*wake)(void *), void *wake_arg);
void hf_hasher_stop(struct hf_hasher *h);
/* Registers a job (fd, git_sha1, size set; ready = bytes already present). */
int hf_hasher_add(struct hf_hasher *h, struct hf_hashjob *j, uint64_t ready);
/* Unregisters a job, waiting if the thread is using it; frees its context. */
void hf_hasher_remove(struct hf_hasher *h, struct hf_hashjob *j);
void hf_hasher_set_ready(struct hf_hasher *h, struct hf_hashjob *j, uint64_t ready);
/* The file was truncated: start over from offset 0 with ready bytes present. */
void hf_hasher_reset(struct hf_hasher *h, struct hf_hashjob *j, uint64_t ready);
/* True once the job has hashed size bytes (hex set) or failed to read (read_errno set). */
bool hf_hasher_finished(struct hf_hasher *h, struct hf_hashjob *j);

#endif
