// The `bifrost` binary: server and client in one; all the work is in cli/.
#include "cli/cli.h"

int main(int argc, char** argv) { return bifrost::cli::Main(argc, argv); }
