/* `strata doctor`: what this host lets strata collect, layer by layer, and why not. Each
 * component that depends on the host answers for itself through its factory's doctor
 * callback; the API endpoints that no component owns yet are probed here. */
#pragma once
#include "buf.h"

/* One finding: "  <what>  <yes|no>: <detail>". */
void st_doctor_line(st_buf *out, const char *what, int ok, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

int st_doctor(st_buf *out); /* the whole report */
