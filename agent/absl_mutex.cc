// The one C++ file of strata: abseil's settings have no C API.
//
// gRPC core locks absl::Mutex everywhere. Debian builds abseil without NDEBUG, so every Lock()
// also records the lock order in a global graph (GraphCycles, under a global lock), and on a
// cycle it suspects it aborts the process: OnDeadlockCycle::kAbort is the debug default. An
// agent must not die on a suspicion, nor pay for the bookkeeping on every lock (about 1.5% of
// strata's CPU at 10k spans/s), so strata turns it off.
#include "absl_mutex.h"

#include <absl/synchronization/mutex.h>

extern "C" void st_absl_mutex_setup(void) {
        absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
}
