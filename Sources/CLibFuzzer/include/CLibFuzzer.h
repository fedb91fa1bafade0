// libFuzzer's driver entry point (in the runtime that -sanitize=fuzzer links): meshd-fuzz calls it
// from its own main, which SwiftPM names and links itself.
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));
