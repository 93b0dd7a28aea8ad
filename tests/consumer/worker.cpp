// shop-worker: hosts the actors compiled into it (actors.cpp).
#include "troupe/worker.hpp"

int main(int argc, char** argv) { return troupe::worker_main(argc, argv); }
