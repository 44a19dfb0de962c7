#pragma once

/* glibc malloc settings for a process that moves large buffers between threads.
 *
 * By default glibc returns freed memory to the kernel as soon as the top of a heap holds more
 * than a dynamic threshold, and serves requests above another dynamic threshold with mmap.
 * Under load strata frees and reallocates hundreds of KiB per request (receive buffers, batch
 * wire bytes freed on gRPC's threads), so every request page-faulted fresh memory back in:
 * measured with ./bench/run.sh, flat-out cost went from ~1 to ~3.2 µs/span, most of it in page
 * faults under recvmsg and memmove. Instead: keep freed memory while busy (fixed, high
 * thresholds), and give what is free back every few seconds (st_malloc_release, from the main
 * loop), so that idle RSS stays low: one re-fault of the free memory per period, not per request.
 *
 * A user's own GLIBC_TUNABLES glibc.malloc.* settings win: then this does nothing. */
void st_malloc_configure(void);

/* Returns free heap memory to the kernel (malloc_trim). Cheap when little is free. */
void st_malloc_release(void);
