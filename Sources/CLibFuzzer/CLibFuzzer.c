// Only the header matters: the symbol comes from libFuzzer in fuzz builds.
#include "CLibFuzzer.h"
