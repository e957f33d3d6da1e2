/*
 * The library's allocation functions: every allocation of src/ goes through these, so that
 * dg_set_allocator() (include/dagrad.h) can route memory to a user's allocator, and tests can
 * fail the k-th allocation. Same contracts as the C library's functions, plus: every block is
 * aligned to DG__ALLOC_ALIGN bytes (so one free serves aligned and plain blocks), and a size
 * whose header would overflow gives NULL. dg__free(NULL) is a no-op.
 */
#ifndef DG_GRAPH_ALLOC_H
#define DG_GRAPH_ALLOC_H

#include <stddef.h>

#define DG__ALLOC_ALIGN 64

void *dg__malloc(size_t size);
void *dg__calloc(size_t count, size_t size);
void *dg__realloc(void *ptr, size_t size);
void dg__free(void *ptr);
/* alignment must be a power of two <= DG__ALLOC_ALIGN (every block already is). */
void *dg__aligned_alloc(size_t alignment, size_t size);
/* A copy of the string, or NULL. */
char *dg__strdup(const char *text);

#endif
