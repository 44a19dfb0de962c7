/* abseil's Mutex, which gRPC core uses everywhere, set up for an agent: see absl_mutex.cc. */
#pragma once
#ifdef __cplusplus
extern "C" {
#endif

/* Turns off abseil's lock-order deadlock detection. Call before grpc_init(). */
void st_absl_mutex_setup(void);

#ifdef __cplusplus
}
#endif
