/* File helpers.  Invariant: an output never carries its final name until it is complete: every
 * writer goes through struct bn_out (write "<path>.tmp", fsync, rename, fsync the directory), so
 * Ctrl+C, kill -9 or a full disk leave either the previous complete file or none. */
#ifndef BN_FILE_H
#define BN_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bn_err.h"

/* A read-only memory map of a whole file.  Empty files map to data == NULL, size == 0. */
struct bn_map {
	const uint8_t *data;
	size_t size;
};
int bn_map_open(struct bn_map *m, const char *path, struct bn_err *err);
void bn_map_close(struct bn_map *m);

/* An atomic output file. */
struct bn_out {
	int fd;
	char *path;      /* final name */
	char *tmp_path;  /* "<path>.tmp" while open */
	uint64_t offset; /* bytes written so far */
};
/* Creates "<path>.tmp" (truncating a stale one left by a killed run). */
int bn_out_open(struct bn_out *o, const char *path, struct bn_err *err);
/* Writes all n bytes; a full disk gives BN_ENOSPC with the byte counts in the message. */
int bn_out_write(struct bn_out *o, const void *buf, size_t n, struct bn_err *err);
/* Writes n zero bytes. */
int bn_out_zeros(struct bn_out *o, size_t n, struct bn_err *err);
/* Writes at an absolute offset without moving o->offset (to patch a header written earlier). */
int bn_out_pwrite(struct bn_out *o, const void *buf, size_t n, uint64_t off, struct bn_err *err);
/* fsync, rename over the final name, fsync the directory, free.  On failure the temp file is
 * removed. */
int bn_out_commit(struct bn_out *o, struct bn_err *err);
/* Removes the temp file and frees; safe to call on a committed or never-opened struct. */
void bn_out_abort(struct bn_out *o);

/* Writes buf to path atomically unless path already holds exactly these bytes (Kbuild's
 * filechk): an unchanged generated file keeps its mtime.  *changed (may be NULL) says which. */
int bn_write_if_changed(const char *path, const void *buf, size_t n, bool *changed,
			struct bn_err *err);

/* Reads a whole file (at most max_bytes, else BN_EFORMAT) into a NUL-terminated malloc'd
 * buffer; caller frees *buf. */
int bn_read_file(const char *path, size_t max_bytes, char **buf, size_t *len, struct bn_err *err);

/* mkdir -p. */
int bn_mkdir_p(const char *path, struct bn_err *err);

/* Free bytes available to an unprivileged user on the filesystem holding path (or its nearest
 * existing parent); UINT64_MAX if unknown. */
uint64_t bn_free_disk(const char *path);

/* Joins a directory and a relative name into a malloc'd string. NULL on allocation failure. */
char *bn_path_join(const char *dir, const char *name);

bool bn_file_exists(const char *path);

#endif
