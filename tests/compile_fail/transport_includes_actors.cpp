// Must NOT compile: transport code does not see actors/ headers. This file
// is built with the usage requirements of troupe::client and
// troupe::broker only, like any transport source; the build test
// `compile_fail_transport_includes_actors` expects the compiler to report
// that troupe/actor.hpp is not found.
#include "troupe/actor.hpp"   // actors/ headers are not
#include "troupe/broker.hpp"  // transport headers are visible,
#include "troupe/client.hpp"
