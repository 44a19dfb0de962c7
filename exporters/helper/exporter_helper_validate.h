/* What the config maps cannot say about retry_on_failure and sending_queue (ranges between
 * fields), for an exporter's validate(). Not in exporter_helper.h because that header is the
 * team's contract; this is an addition proposed for it. */
#pragma once
#include "exporter_helper.h"

/* Reports each problem at "retry_on_failure.<key>" / "sending_queue.<key>" of ctx; returns
 * -EINVAL when there was any. st_exporter_helper_new() refuses the same configurations. */
int st_exporter_helper_validate(const struct st_retry_config *retry, const struct st_queue_config *queue,
                                struct st_cfg_ctx *ctx);
