// troupe-examples-worker: hosts squares, vectorize, counter and echo.
#include "troupe/worker.hpp"

int main(int argc, char** argv) { return troupe::worker_main(argc, argv); }
