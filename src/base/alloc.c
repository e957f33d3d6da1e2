/*
 * The allocator hook (dg_set_allocator) and the dg__ allocation functions of base/alloc.h.
 *
 * Each block is the user's (or the C library's) block of size + DG__ALLOC_ALIGN bytes; the
 * pointer handed out is the first DG__ALLOC_ALIGN-aligned address at least one byte into it,
 * and the byte just before it holds that offset (1 .. DG__ALLOC_ALIGN). So dg__free needs no
 * size, aligned and plain blocks are freed alike, and a user allocator only has to return
 * memory aligned like malloc's.
 *
 * Like SQLite's sqlite3_config(SQLITE_CONFIG_MALLOC), the allocator is process-wide and set
 * while no dagrad object is alive: a count of live blocks refuses a change otherwise.
 */
#include "alloc.h"

#include "dagrad.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void *libc_malloc(size_t size, void *user)
{
    (void)user;
    return malloc(size);
}

static void *libc_realloc(void *ptr, size_t size, void *user)
{
    (void)user;
    return realloc(ptr, size);
}

static void libc_free(void *ptr, void *user)
{
    (void)user;
    free(ptr);
}

static dg_allocator current = {libc_malloc, libc_realloc, libc_free, NULL};
static long live_blocks; /* updated atomically: kernels may allocate from several threads */

dg_status dg_set_allocator(const dg_allocator *allocator)
{
    if (allocator != NULL &&
        (allocator->malloc == NULL || allocator->realloc == NULL || allocator->free == NULL))
        return DG_ERR_INVALID_ARG;
    if (__atomic_load_n(&live_blocks, __ATOMIC_SEQ_CST) != 0)
        return DG_ERR_STATE;
    if (allocator == NULL)
        current = (dg_allocator){libc_malloc, libc_realloc, libc_free, NULL};
    else
        current = *allocator;
    return DG_OK;
}

/* The aligned user pointer inside a raw block (1 .. DG__ALLOC_ALIGN bytes into it). */
static unsigned char *aligned_in(unsigned char *raw)
{
    uintptr_t address = (uintptr_t)raw + 1;
    address = (address + DG__ALLOC_ALIGN - 1) & ~(uintptr_t)(DG__ALLOC_ALIGN - 1);
    return (unsigned char *)address;
}

/* Records the offset before the user pointer and returns it. */
static void *place(unsigned char *raw, unsigned char *user)
{
    user[-1] = (unsigned char)(user - raw);
    return user;
}

static unsigned char *raw_of(void *ptr)
{
    unsigned char *user = ptr;
    return user - user[-1];
}

void *dg__malloc(size_t size)
{
    if (size > SIZE_MAX - DG__ALLOC_ALIGN)
        return NULL;
    unsigned char *raw = current.malloc(size + DG__ALLOC_ALIGN, current.user);
    if (raw == NULL)
        return NULL;
    __atomic_add_fetch(&live_blocks, 1, __ATOMIC_RELAXED);
    return place(raw, aligned_in(raw));
}

void *dg__calloc(size_t count, size_t size)
{
    size_t bytes;
    if (__builtin_mul_overflow(count, size, &bytes))
        return NULL;
    void *ptr = dg__malloc(bytes);
    if (ptr != NULL)
        memset(ptr, 0, bytes);
    return ptr;
}

void *dg__realloc(void *ptr, size_t size)
{
    if (ptr == NULL)
        return dg__malloc(size);
    if (size > SIZE_MAX - DG__ALLOC_ALIGN)
        return NULL;
    unsigned char *old_raw = raw_of(ptr);
    size_t old_offset = (size_t)((unsigned char *)ptr - old_raw);
    unsigned char *raw = current.realloc(old_raw, size + DG__ALLOC_ALIGN, current.user);
    if (raw == NULL)
        return NULL; /* the old block is untouched, as realloc's */
    unsigned char *user = aligned_in(raw);
    /* The new block may sit at another alignment: move the data to the new offset (before
     * writing the offset byte, which may lie inside the data's old place). */
    if ((size_t)(user - raw) != old_offset)
        memmove(user, raw + old_offset, size);
    return place(raw, user);
}

void dg__free(void *ptr)
{
    if (ptr == NULL)
        return;
    __atomic_sub_fetch(&live_blocks, 1, __ATOMIC_RELAXED);
    current.free(raw_of(ptr), current.user);
}

void *dg__aligned_alloc(size_t alignment, size_t size)
{
    if (alignment == 0 || alignment > DG__ALLOC_ALIGN || (alignment & (alignment - 1)) != 0)
        return NULL;
    return dg__malloc(size);
}

char *dg__strdup(const char *text)
{
    size_t len = strlen(text) + 1;
    char *copy = dg__malloc(len);
    if (copy != NULL)
        memcpy(copy, text, len);
    return copy;
}
