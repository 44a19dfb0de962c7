#pragma once
#include <stddef.h>

/* Unmaps strata's start-up-only code once the service has settled, and again every few
 * seconds (agent/main.c), much as the kernel frees its __init sections after boot.
 * cmake/hot_text.ld gathers that code (what a profile saw run only while strata started: gRPC's
 * plugin registrations, config parsing, component creation) into .text.strata_init, 64 KiB
 * aligned. The pages stay in the page cache; if any of that code runs again (a channel rebuilt,
 * a reload), it faults back in until the next call.
 * Returns the bytes unmapped (0 in builds without the section), or a negative errno. */
int st_init_text_release(size_t *ret_bytes);
