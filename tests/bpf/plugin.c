/* A shared object for the code-load tests to dlopen: its path is the ground truth. */
int strata_test_plugin_answer(void);
int strata_test_plugin_answer(void) { return 42; }
